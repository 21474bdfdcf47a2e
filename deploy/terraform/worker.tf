# Worker hosts: service account and role, instance template, health check, regional MIG.

resource "google_service_account" "worker" {
  project      = var.project
  account_id   = var.name
  display_name = "travis-worker processes"
  description  = "Runs travis-worker on the ${var.name} hosts: boots, SSHes to and deletes job VMs."
}

# Exactly the Compute calls the GCE backend makes, and nothing else. The list is kept equal
# to the permission map in travis_worker/backends (tests/deploy/test_terraform.py checks it),
# so a new API call in the code fails the tests until its permission is added here.
resource "google_project_iam_custom_role" "worker" {
  project     = var.project
  role_id     = replace("${var.name}_worker", "-", "_")
  title       = "travis-worker (${var.name})"
  description = "Start, inspect and delete travis job VMs; export job traces."
  permissions = local.worker_permissions
}

resource "google_project_iam_member" "worker" {
  project = var.project
  role    = google_project_iam_custom_role.worker.id
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_project_iam_member" "worker_logging" {
  count = var.cloud_logging ? 1 : 0

  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Only the secrets the worker is configured to read, each on its own.
resource "google_secret_manager_secret_iam_member" "worker" {
  for_each = toset([for secret in values(var.worker_secret_env) : split("@", secret)[0]])

  project   = var.project
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.worker.email}"

  depends_on = [google_project_service.apis]
}

resource "google_compute_instance_template" "worker" {
  project      = var.project
  name_prefix  = "${var.name}-"
  description  = "travis-worker host running ${var.worker_docker_self_image}"
  machine_type = var.machine_type
  tags         = [local.worker_tag]
  labels       = merge(var.labels, { role = "travis-worker" })

  disk {
    boot         = true
    auto_delete  = true
    source_image = var.cos_image
    disk_type    = "pd-balanced"
    disk_size_gb = 20
  }

  network_interface {
    network    = var.subnetwork == "" ? data.google_compute_network.selected.self_link : null
    subnetwork = var.subnetwork == "" ? null : var.subnetwork

    dynamic "access_config" {
      for_each = var.host_public_ip ? [1] : []
      content {}
    }
  }

  metadata = {
    user-data              = local.worker_cloud_config
    google-logging-enabled = tostring(var.cloud_logging)
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  service_account {
    email  = google_service_account.worker.email
    scopes = local.host_scopes
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.amqp_uri != "" || contains(keys(var.worker_secret_env), "TRAVIS_WORKER_AMQP_URI")
      error_message = "Set amqp_uri, or name its secret in worker_secret_env.TRAVIS_WORKER_AMQP_URI."
    }
    precondition {
      condition     = var.build_api_uri != "" || contains(keys(var.worker_secret_env), "TRAVIS_WORKER_BUILD_API_URI")
      error_message = "Set build_api_uri, or name its secret in worker_secret_env.TRAVIS_WORKER_BUILD_API_URI."
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_compute_health_check" "worker" {
  project             = var.project
  name                = "${var.name}-healthz"
  description         = "GET /healthz on the worker's control endpoint."
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 6 # a minute of failures before a host is replaced

  http_health_check {
    port         = var.remote_controller_port
    request_path = "/healthz"
  }
}

resource "google_compute_region_instance_group_manager" "worker" {
  project            = var.project
  name               = var.name
  base_instance_name = var.name
  region             = var.region
  target_size        = var.worker_managed_instance_count

  distribution_policy_zones = local.zones

  version {
    name              = "primary"
    instance_template = google_compute_instance_template.worker.self_link_unique
  }

  # Replacing a host ends its running jobs unless it drained first (README: "Making
  # changes"). OPPORTUNISTIC lets `make roll` drain each host before it is replaced;
  # PROACTIVE replaces at once (surge first, so capacity never drops).
  update_policy {
    type                         = var.update_type
    minimal_action               = "REPLACE"
    replacement_method           = "SUBSTITUTE"
    max_surge_fixed              = length(local.zones)
    max_unavailable_fixed        = 0
    instance_redistribution_type = "NONE" # never delete a busy host just to rebalance zones
  }

  # A drained worker exits; its failing /healthz makes the group recreate the host, and
  # force_update_on_repair gives the new host the current template.
  instance_lifecycle_policy {
    force_update_on_repair = "YES"
  }

  auto_healing_policies {
    health_check      = google_compute_health_check.worker.id
    initial_delay_sec = var.autohealing_initial_delay_seconds
  }
}
