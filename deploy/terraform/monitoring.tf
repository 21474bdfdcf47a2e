# Optional: the fleet dashboard in Cloud Monitoring (monitoring_dashboard = true). Its charts
# are PromQL, so they need the workers' and the reaper's /metrics ingested into Google Cloud
# Managed Service for Prometheus by a collector you run; this module does not deploy one.
# The same charts for Grafana, and the alert rules: ../monitoring/ (see the README).

resource "google_monitoring_dashboard" "worker" {
  count = var.monitoring_dashboard ? 1 : 0

  project        = var.project
  dashboard_json = file("${path.module}/../monitoring/cloud-monitoring-dashboard.json")

  depends_on = [google_project_service.apis]
}
