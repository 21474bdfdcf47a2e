# The orphan-VM reaper: `travis-worker cleanup` on one small host.

resource "google_service_account" "cleanup" {
  project      = var.project
  account_id   = "${var.name}-cleanup"
  display_name = "travis-worker cleanup"
  description  = "Deletes orphaned travis job VMs (travis-worker cleanup)."
}

resource "google_project_iam_custom_role" "cleanup" {
  project     = var.project
  role_id     = replace("${var.name}_cleanup", "-", "_")
  title       = "travis-worker cleanup (${var.name})"
  description = "List and delete travis job VMs."
  permissions = local.cleanup_permissions
}

resource "google_project_iam_member" "cleanup" {
  project = var.project
  role    = google_project_iam_custom_role.cleanup.id
  member  = "serviceAccount:${google_service_account.cleanup.email}"
}

resource "google_project_iam_member" "cleanup_logging" {
  count = var.cloud_logging ? 1 : 0

  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.cleanup.email}"
}

resource "google_compute_instance_template" "cleanup" {
  project      = var.project
  name_prefix  = "${var.name}-cleanup-"
  description  = "travis-worker cleanup host running ${local.cleanup_image}"
  machine_type = var.machine_type
  tags         = [local.cleanup_tag]
  labels       = merge(var.labels, { role = "travis-worker-cleanup" })

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
    user-data              = local.cleanup_cloud_config
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
    email  = google_service_account.cleanup.email
    scopes = local.host_scopes
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.apis]
}

resource "google_compute_health_check" "cleanup" {
  project             = var.project
  name                = "${var.name}-cleanup-healthz"
  description         = "GET /healthz of travis-worker cleanup: fails when passes stop finishing."
  check_interval_sec  = 30
  timeout_sec         = 5
  healthy_threshold   = 1
  unhealthy_threshold = 10

  http_health_check {
    port         = var.cleanup_port
    request_path = "/healthz"
  }
}

resource "google_compute_region_instance_group_manager" "cleanup" {
  project            = var.project
  name               = "${var.name}-cleanup"
  base_instance_name = "${var.name}-cleanup"
  region             = var.region
  target_size        = var.cleanup_managed_instance_count

  distribution_policy_zones = local.zones

  version {
    name              = "primary"
    instance_template = google_compute_instance_template.cleanup.self_link_unique
  }

  # The reaper holds no work worth draining: replace it at once on a change.
  update_policy {
    type                         = "PROACTIVE"
    minimal_action               = "REPLACE"
    replacement_method           = "SUBSTITUTE"
    max_surge_fixed              = length(local.zones)
    max_unavailable_fixed        = 0
    instance_redistribution_type = "NONE"
  }

  auto_healing_policies {
    health_check      = google_compute_health_check.cleanup.id
    initial_delay_sec = var.autohealing_initial_delay_seconds
  }
}
