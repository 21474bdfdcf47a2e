# Firewall rules, the optional Cloud NAT, and sanity checks of the network choices.
#
# Job VMs run untrusted build scripts. Workers SSH to them over the internal network
# (TRAVIS_WORKER_GCE_PUBLIC_IP_CONNECT=false in worker.env), so tags can express the policy:
# only worker hosts may reach a job VM, and job VMs may not reach the hosts.

data "google_compute_network" "selected" {
  name    = var.network
  project = var.project
}

resource "google_compute_firewall" "job_vm_ssh_from_workers" {
  name        = "${var.name}-job-ssh-from-workers"
  project     = var.project
  network     = data.google_compute_network.selected.self_link
  description = "SSH to travis job VMs from travis-worker hosts only."
  direction   = "INGRESS"
  priority    = 900

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  source_tags = [local.worker_tag]
  target_tags = [local.job_vm_tag]
}

resource "google_compute_firewall" "job_vm_deny_ingress" {
  count = var.restrict_job_vm_ingress ? 1 : 0

  name        = "${var.name}-job-deny-ingress"
  project     = var.project
  network     = data.google_compute_network.selected.self_link
  description = "Nothing else reaches travis job VMs; overrides the default network's allow rules (priority 65534)."
  direction   = "INGRESS"
  priority    = 1000

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]
  target_tags   = [local.job_vm_tag]
}

resource "google_compute_firewall" "hosts_deny_from_job_vms" {
  count = var.restrict_job_vm_ingress ? 1 : 0

  name        = "${var.name}-hosts-deny-job-vms"
  project     = var.project
  network     = data.google_compute_network.selected.self_link
  description = "Job VMs may not reach the worker or reaper hosts (control endpoint, SSH)."
  direction   = "INGRESS"
  priority    = 900

  deny {
    protocol = "all"
  }

  source_tags = [local.job_vm_tag]
  target_tags = [local.worker_tag, local.cleanup_tag]
}

resource "google_compute_firewall" "health_checks" {
  name        = "${var.name}-health-checks"
  project     = var.project
  network     = data.google_compute_network.selected.self_link
  description = "Autohealing probes of /healthz on worker and reaper hosts."
  direction   = "INGRESS"
  priority    = 1000

  allow {
    protocol = "tcp"
    ports    = [tostring(var.remote_controller_port), tostring(var.cleanup_port)]
  }

  source_ranges = local.health_check_ranges
  target_tags   = [local.worker_tag, local.cleanup_tag]
}

resource "google_compute_firewall" "iap_ssh" {
  count = var.allow_iap_ssh ? 1 : 0

  name        = "${var.name}-iap-ssh"
  project     = var.project
  network     = data.google_compute_network.selected.self_link
  description = "gcloud compute ssh --tunnel-through-iap to worker and reaper hosts."
  direction   = "INGRESS"
  priority    = 1000

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  source_ranges = [local.iap_range]
  target_tags   = [local.worker_tag, local.cleanup_tag]
}

resource "google_compute_router" "nat" {
  count = var.cloud_nat ? 1 : 0

  name    = "${var.name}-nat"
  project = var.project
  region  = var.region
  network = data.google_compute_network.selected.self_link
}

resource "google_compute_router_nat" "nat" {
  count = var.cloud_nat ? 1 : 0

  name    = "${var.name}-nat"
  project = var.project
  region  = var.region
  router  = google_compute_router.nat[0].name

  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
  # A worker host opens dozens of connections per job VM (image pulls, package mirrors);
  # dynamic allocation avoids running out of NAT ports on busy VMs.
  enable_dynamic_port_allocation      = true
  min_ports_per_vm                    = 64
  max_ports_per_vm                    = 4096
  enable_endpoint_independent_mapping = false

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

check "private_vms_reach_the_internet" {
  assert {
    condition     = var.cloud_nat || (var.job_vm_public_ip && var.host_public_ip)
    error_message = "Hosts or job VMs without public IPs need Cloud NAT (cloud_nat = true) or another route to the internet: AMQP, image pulls and most builds need it."
  }
}
