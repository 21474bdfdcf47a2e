# What runs on the hosts: the worker's and the reaper's env files and cloud-configs.
#
# This file holds only locals computed from variables (no resources), so the tests in
# tests/deploy/ evaluate it with `terraform console` offline and check the rendered output.

locals {
  cleanup_image = var.cleanup_docker_self_image != "" ? var.cleanup_docker_self_image : var.worker_docker_self_image

  # Provider (TRAVIS_WORKER_GCE_*) values are URL-unescaped by the worker,
  # so "+" in an image regex would become a space. urlencode() keeps them literal.
  worker_gce_env = {
    TRAVIS_WORKER_GCE_PROJECT_ID       = var.project
    TRAVIS_WORKER_GCE_REGION           = var.region
    TRAVIS_WORKER_GCE_NETWORK          = var.network
    TRAVIS_WORKER_GCE_SUBNETWORK       = var.subnetwork
    TRAVIS_WORKER_GCE_PUBLIC_IP        = tostring(var.job_vm_public_ip)
    TRAVIS_WORKER_GCE_MACHINE_TYPE     = var.job_machine_type
    TRAVIS_WORKER_GCE_DISK_SIZE        = tostring(var.job_disk_size)
    TRAVIS_WORKER_GCE_IMAGE_PROJECT_ID = var.job_image_project
    TRAVIS_WORKER_GCE_IMAGE_DEFAULT    = var.job_image_default
  }

  worker_general_env = {
    TRAVIS_WORKER_AMQP_URI               = var.amqp_uri
    TRAVIS_WORKER_BUILD_API_URI          = var.build_api_uri
    TRAVIS_WORKER_QUEUE_NAME             = var.queue_name
    TRAVIS_WORKER_POOL_SIZE              = tostring(var.worker_pool_size)
    TRAVIS_WORKER_HARD_TIMEOUT           = "${var.hard_timeout_minutes}m"
    TRAVIS_WORKER_TRAVIS_SITE            = var.travis_site
    TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR = "0.0.0.0:${var.remote_controller_port}"
    TRAVIS_WORKER_REMOTE_CONTROLLER_AUTH = var.remote_controller_auth
  }

  # Empty values are left out (the worker's defaults apply), and so is every setting that
  # comes from Secret Manager: its value must never reach instance metadata.
  worker_env = merge(
    {
      for key, value in local.worker_general_env : key => value
      if value != "" && !contains(keys(var.worker_secret_env), key)
    },
    {
      for key, value in local.worker_gce_env : key => urlencode(value)
      if value != "" && !contains(keys(var.worker_secret_env), key)
    },
    var.worker_env,
  )

  # Static lines first (worker.env), generated ones after: with docker --env-file the last
  # line of a key wins, so variables override worker.env.
  worker_env_file = join("", [
    file("${path.module}/worker.env"),
    "# generated from terraform variables\n",
    join("", [for key in sort(keys(local.worker_env)) : "${key}=${local.worker_env[key]}\n"]),
  ])

  worker_secret_pairs = [for key in sort(keys(var.worker_secret_env)) : "${key}=${var.worker_secret_env[key]}"]

  # A host is stopped for an update only after a drain: give running jobs the whole hard
  # timeout plus 5 minutes for boot, upload, the final state update and the VM delete.
  drain_seconds = var.hard_timeout_minutes * 60 + 300

  # docker-credential-gcr is configured only for Google registries; others must be public.
  image_registry = regex("^[^/]+", var.worker_docker_self_image)
  google_registry = (
    endswith(local.image_registry, ".pkg.dev") || local.image_registry == "gcr.io" || endswith(local.image_registry, ".gcr.io")
    ? local.image_registry : ""
  )
  cleanup_registry = regex("^[^/]+", local.cleanup_image)
  cleanup_google_registry = (
    endswith(local.cleanup_registry, ".pkg.dev") || local.cleanup_registry == "gcr.io" || endswith(local.cleanup_registry, ".gcr.io")
    ? local.cleanup_registry : ""
  )

  worker_cloud_config = templatefile("${path.module}/templates/cloud-config-worker.yaml.tftpl", {
    image                  = var.worker_docker_self_image
    registry               = local.google_registry
    env_file               = local.worker_env_file
    secret_pairs           = local.worker_secret_pairs
    project                = var.project
    stop_script            = file("${path.module}/templates/stop-container.sh")
    drain_seconds          = local.drain_seconds
    shutdown_drain_seconds = var.shutdown_drain_seconds
    honeycomb_dataset      = var.honeycomb_dataset
    honeycomb_writekey     = var.honeycomb_writekey
    honeycomb_sample_rate  = var.honeycomb_sample_rate
    honeytail_image        = var.honeytail_image
  })

  # The reaper reads TRAVIS_WORKER_CLEANUP_* (travis_worker/cleanup); see its --help.
  cleanup_env = {
    TRAVIS_WORKER_CLEANUP_PROJECT_ID           = var.project
    TRAVIS_WORKER_CLEANUP_INSTANCE_MAX_AGE     = var.cleanup_instance_max_age
    TRAVIS_WORKER_CLEANUP_LOOP_SLEEP           = var.cleanup_loop_sleep
    TRAVIS_WORKER_CLEANUP_DRY_RUN              = tostring(var.cleanup_dry_run)
    TRAVIS_WORKER_CLEANUP_RATE_LIMIT_MAX_CALLS = tostring(var.cleanup_rate_limit_max_calls)
    TRAVIS_WORKER_CLEANUP_RATE_LIMIT_DURATION  = var.cleanup_rate_limit_duration
    TRAVIS_WORKER_CLEANUP_LISTEN_ADDR          = "0.0.0.0:${var.cleanup_port}"
  }

  cleanup_env_file = join("", [for key in sort(keys(local.cleanup_env)) : "${key}=${local.cleanup_env[key]}\n"])

  cleanup_cloud_config = templatefile("${path.module}/templates/cloud-config-cleanup.yaml.tftpl", {
    image    = local.cleanup_image
    registry = local.cleanup_google_registry
    env_file = local.cleanup_env_file
    port     = var.cleanup_port
  })
}
