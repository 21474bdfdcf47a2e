# Inputs. The first group keeps the names of travis-ci/worker-gcp-standalone so an existing
# config.auto.tfvars carries over; the rest are additions (network, drain, secrets, reaper).

# --- Project and placement ----------------------------------------------------------------

variable "project" {
  description = "Google Cloud project ID that holds the worker hosts, the job VMs and the reaper."
  type        = string
}

variable "region" {
  description = "Region of the instance groups, the subnetwork and the optional Cloud NAT."
  type        = string
  default     = "us-central1"
}

variable "zones" {
  description = "Zone suffixes in the region (a, b, ...) the worker hosts are spread over; each host starts job VMs in its own zone."
  type        = list(string)
  default     = ["a", "b", "c", "f"]

  validation {
    condition     = length(var.zones) > 0 && alltrue([for zone in var.zones : can(regex("^[a-z]$", zone))])
    error_message = "zones are single-letter suffixes such as \"a\", not full zone names."
  }
}

variable "name" {
  description = "Prefix of every resource name (service accounts, roles, groups, rules). Change it to run several deployments (e.g. one per queue) in one project."
  type        = string
  default     = "travis-worker"

  validation {
    # "-cleanup" is appended for the reaper's service account, whose id is limited to 30.
    condition     = can(regex("^[a-z][-a-z0-9]{4,20}[a-z0-9]$", var.name))
    error_message = "name must be 6-22 characters: lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "network" {
  description = "VPC network of the worker hosts and the job VMs."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork in the region for hosts and job VMs. Empty: the network's automatic subnetwork."
  type        = string
  default     = ""
}

variable "enable_apis" {
  description = "Enable the Google APIs this deployment uses (Compute, IAM, and Secret Manager when secrets are used). Never disabled on destroy."
  type        = bool
  default     = true
}

# --- Worker hosts ---------------------------------------------------------------------------

variable "worker_docker_self_image" {
  description = "travis-worker container image for the worker hosts, e.g. us-docker.pkg.dev/PROJECT/ci/travis-worker:0.1.0. Pin a version: changing it rolls the hosts (see README, Making changes)."
  type        = string
}

variable "worker_managed_instance_count" {
  description = "Number of worker hosts (target size of the worker instance group)."
  type        = number
  default     = 1
}

variable "machine_type" {
  description = "Machine type of the worker and reaper hosts (not of job VMs: see job_machine_type)."
  type        = string
  default     = "e2-standard-2"
}

variable "cos_image" {
  description = "Boot image of the hosts: Container-Optimized OS, which runs the container from cloud-init."
  type        = string
  default     = "cos-cloud/cos-stable"
}

variable "host_public_ip" {
  description = "Give worker and reaper hosts an ephemeral public IP. Set false with cloud_nat = true to keep hosts private."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to the hosts (not to job VMs, which the worker labels itself)."
  type        = map(string)
  default     = {}
}

variable "cloud_logging" {
  description = "Ship host and container logs to Cloud Logging (COS logging agent); grants roles/logging.logWriter to both service accounts."
  type        = bool
  default     = true
}

variable "monitoring_dashboard" {
  description = "Create the fleet dashboard in Cloud Monitoring (needs the metrics in Managed Service for Prometheus; see monitoring.tf)."
  type        = bool
  default     = false
}

# --- Worker settings (written into /etc/default/travis-worker) --------------------------------

variable "amqp_uri" {
  description = "RabbitMQ URI of the jobs queue (TRAVIS_WORKER_AMQP_URI). Leave empty when worker_secret_env provides it."
  type        = string
  default     = ""
  sensitive   = true
}

variable "build_api_uri" {
  description = "travis-build script API URL with the token as user info (TRAVIS_WORKER_BUILD_API_URI). Leave empty when worker_secret_env provides it."
  type        = string
  default     = ""
  sensitive   = true
}

variable "queue_name" {
  description = "AMQP queue the workers consume (TRAVIS_WORKER_QUEUE_NAME)."
  type        = string
  default     = "builds.trusty"
}

variable "worker_pool_size" {
  description = "Jobs each worker host runs at once (TRAVIS_WORKER_POOL_SIZE)."
  type        = number
  default     = 30
}

variable "hard_timeout_minutes" {
  description = "Longest a job may run, in minutes (TRAVIS_WORKER_HARD_TIMEOUT). Also the drain budget when a host is stopped for an update."
  type        = number
  default     = 50

  validation {
    condition     = var.hard_timeout_minutes >= 1 && floor(var.hard_timeout_minutes) == var.hard_timeout_minutes
    error_message = "hard_timeout_minutes must be a whole number of minutes, at least 1."
  }
}

variable "travis_site" {
  description = "\"org\" or \"com\" when one broker serves both sites (TRAVIS_WORKER_TRAVIS_SITE, also a network tag on job VMs). Empty: unset."
  type        = string
  default     = ""
}

variable "remote_controller_port" {
  description = "Port of the worker's control endpoint (/healthz, /ready, DELETE /worker) on each host; the autohealing probe uses it."
  type        = number
  default     = 6060
}

variable "remote_controller_auth" {
  description = "user:password for the control API routes other than /healthz and /ready (TRAVIS_WORKER_REMOTE_CONTROLLER_AUTH). Empty: unset."
  type        = string
  default     = ""
  sensitive   = true
}

variable "worker_env" {
  description = "Extra worker settings, written after the generated ones so they win, e.g. { TRAVIS_WORKER_GCE_PREEMPTIBLE = \"true\" }. Keys must be settings the worker knows."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.worker_env) : can(regex("^TRAVIS_WORKER_[A-Z0-9_]+$", key))])
    error_message = "worker_env keys are TRAVIS_WORKER_<SETTING> names."
  }
}

variable "worker_secret_env" {
  description = "Worker settings read from Secret Manager at container start instead of instance metadata: { TRAVIS_WORKER_AMQP_URI = \"secret-id\" }. A value may pin a version as \"secret-id@3\". The secrets must exist in the project; only these are readable by the worker."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for key, secret in var.worker_secret_env :
      can(regex("^TRAVIS_WORKER_[A-Z0-9_]+$", key)) && can(regex("^[A-Za-z0-9_-]+(@[0-9a-z]+)?$", secret))
    ])
    error_message = "worker_secret_env maps TRAVIS_WORKER_<SETTING> names to secret ids (optionally id@version)."
  }
}

# --- Job VMs (settings of the GCE backend, TRAVIS_WORKER_GCE_*) ---------------------------------

variable "job_machine_type" {
  description = "Machine type of job VMs (TRAVIS_WORKER_GCE_MACHINE_TYPE)."
  type        = string
  default     = "n2-standard-2"
}

variable "job_disk_size" {
  description = "Boot disk size of job VMs in GB (TRAVIS_WORKER_GCE_DISK_SIZE); at least the image size."
  type        = number
  default     = 20
}

variable "job_image_project" {
  description = "Project holding the job images (TRAVIS_WORKER_GCE_IMAGE_PROJECT_ID). Empty: this project. Another project must grant the worker service account roles/compute.imageUser."
  type        = string
  default     = ""
}

variable "job_image_default" {
  description = "Image name regex used when no language/dist image matches (TRAVIS_WORKER_GCE_IMAGE_DEFAULT). Empty: the worker's default."
  type        = string
  default     = ""
}

variable "job_vm_public_ip" {
  description = "Give job VMs an ephemeral public IP (TRAVIS_WORKER_GCE_PUBLIC_IP). Set false with cloud_nat = true so jobs reach the internet without public IPs."
  type        = bool
  default     = true
}

variable "cloud_nat" {
  description = "Create a Cloud Router and Cloud NAT for the region, so job VMs and hosts without public IPs can reach the internet."
  type        = bool
  default     = false
}

variable "restrict_job_vm_ingress" {
  description = "Add firewall rules that deny all ingress to job VMs (tag \"testing\") except SSH from worker hosts, and deny job VMs access to the hosts."
  type        = bool
  default     = true
}

variable "allow_iap_ssh" {
  description = "Allow SSH to worker and reaper hosts through Identity-Aware Proxy (gcloud compute ssh --tunnel-through-iap), needed when hosts have no public IP."
  type        = bool
  default     = true
}

# --- Rollouts and drain ----------------------------------------------------------------------

variable "update_type" {
  description = "OPPORTUNISTIC (default): a new template reaches a host only when the host is drained (make roll) or repaired, so no job is cut short. PROACTIVE: the group replaces hosts at once; running jobs get shutdown_drain_seconds, then are requeued."
  type        = string
  default     = "OPPORTUNISTIC"

  validation {
    condition     = contains(["OPPORTUNISTIC", "PROACTIVE"], var.update_type)
    error_message = "update_type is OPPORTUNISTIC or PROACTIVE."
  }
}

variable "shutdown_drain_seconds" {
  description = "When Compute Engine deletes or stops a host (scale-in, PROACTIVE update, repair) the guest gets about 120 s: drain this long, then requeue what still runs."
  type        = number
  default     = 60

  validation {
    condition     = var.shutdown_drain_seconds >= 0 && var.shutdown_drain_seconds <= 80
    error_message = "shutdown_drain_seconds must leave time to requeue inside the ~120 s shutdown window (0-80)."
  }
}

variable "autohealing_initial_delay_seconds" {
  description = "Grace period before autohealing probes a new host: boot, image pull and worker start-up."
  type        = number
  default     = 300
}

# --- Logs to Honeycomb (optional, as in the reference) ---------------------------------------

variable "honeycomb_dataset" {
  description = "Honeycomb dataset for the worker's logs. Empty: honeytail is not started."
  type        = string
  default     = ""
}

variable "honeycomb_writekey" {
  description = "Honeycomb write key."
  type        = string
  default     = ""
  sensitive   = true
}

variable "honeycomb_sample_rate" {
  description = "Honeytail sample rate: send one in N log lines."
  type        = number
  default     = 1
}

variable "honeytail_image" {
  description = "Container image of honeytail. Pin a tag in production."
  type        = string
  default     = "honeycombio/honeytail:latest"
}

# --- Orphan-VM reaper (travis-worker cleanup) ------------------------------------------------

variable "cleanup_docker_self_image" {
  description = "Image for the reaper hosts. Empty: the worker image (it contains `travis-worker cleanup`)."
  type        = string
  default     = ""
}

variable "cleanup_managed_instance_count" {
  description = "Number of reaper hosts: 1, or 0 when another deployment in the project already runs one."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.cleanup_managed_instance_count)
    error_message = "Run at most one reaper per project (0 or 1)."
  }
}

variable "cleanup_instance_max_age" {
  description = "Job VMs older than this (Go duration) are deleted, unless their own max run duration says the job may still run."
  type        = string
  default     = "3h"
}

variable "cleanup_loop_sleep" {
  description = "Pause between reaper passes (Go duration)."
  type        = string
  default     = "1m"
}

variable "cleanup_dry_run" {
  description = "Only log and count the job VMs the reaper would delete."
  type        = bool
  default     = false
}

variable "cleanup_rate_limit_max_calls" {
  description = "Most delete calls the reaper makes per cleanup_rate_limit_duration."
  type        = number
  default     = 10
}

variable "cleanup_rate_limit_duration" {
  description = "Window of the reaper's rate limit (Go duration)."
  type        = string
  default     = "1s"
}

variable "cleanup_port" {
  description = "Port of the reaper's /healthz and /metrics endpoint on its host."
  type        = number
  default     = 9090
}
