# Shared values and the APIs the deployment needs.

locals {
  zones = [for suffix in var.zones : "${var.region}-${suffix}"]

  # Network tags. "testing" (and "no-ip") are set on job VMs by the worker's GCE backend;
  # the firewall rules in network.tf are written against them.
  worker_tag  = var.name
  cleanup_tag = "${var.name}-cleanup"
  job_vm_tag  = "testing"

  # Ranges Google's health checkers probe from (autohealing).
  health_check_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
  # Range Identity-Aware Proxy TCP forwarding connects from.
  iap_range = "35.235.240.0/20"

  host_scopes = ["cloud-platform"] # access is limited by IAM roles, not by scopes

  apis = concat(
    ["compute.googleapis.com", "iam.googleapis.com", "cloudtrace.googleapis.com"],
    length(var.worker_secret_env) > 0 ? ["secretmanager.googleapis.com"] : [],
    var.cloud_logging ? ["logging.googleapis.com"] : [],
    var.monitoring_dashboard ? ["monitoring.googleapis.com"] : [],
  )
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
