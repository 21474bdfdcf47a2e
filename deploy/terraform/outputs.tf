output "worker_service_account_email" {
  description = "Service account of the worker hosts. Grant it roles/compute.imageUser on the project that holds the job images, and read access to the registry of the worker image."
  value       = google_service_account.worker.email
}

output "cleanup_service_account_email" {
  description = "Service account of the reaper host."
  value       = google_service_account.cleanup.email
}

output "worker_instance_group" {
  description = "Regional managed instance group of the worker hosts (for gcloud ... --region)."
  value       = google_compute_region_instance_group_manager.worker.name
}

output "cleanup_instance_group" {
  description = "Regional managed instance group of the reaper."
  value       = google_compute_region_instance_group_manager.cleanup.name
}

output "region" {
  description = "Region of both instance groups."
  value       = var.region
}

output "project" {
  description = "Project of the deployment (used by `make roll`)."
  value       = var.project
}
