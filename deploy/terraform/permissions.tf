# Permissions of the custom roles, each with the call that needs it.
#
# tests/deploy/test_permissions.py holds these lists equal to the maps the code declares next
# to its calls (travis_worker/backends/google/api.py for the worker, travis_worker/cleanup for
# the reaper): a new call without its permission here, or a permission no call needs, fails.

locals {
  worker_permissions = [
    "compute.zones.get",                 # setup: resolve each configured zone
    "compute.zones.list",                # setup: alternate zones in the region
    "compute.regions.get",               # region quotas: may a paused worker take jobs again?
    "compute.networks.get",              # setup: resolve the network
    "compute.subnetworks.get",           # setup: resolve the subnetwork
    "compute.machineTypes.list",         # setup: machine type self links per zone (one list)
    "compute.images.list",               # image selection by name pattern
    "compute.images.useReadOnly",        # instances.insert: boot disk from the job image
    "compute.instances.create",          # instances.insert
    "compute.disks.create",              # instances.insert: the boot disk
    "compute.instances.setMetadata",     # instances.insert: startup-script metadata
    "compute.instances.setLabels",       # instances.insert: travis-worker/job-id/repo labels
    "compute.instances.setTags",         # instances.insert: "testing", "no-ip", site tags
    "compute.networks.use",              # instances.insert: attach to a legacy network
    "compute.subnetworks.use",           # instances.insert: attach to the subnetwork
    "compute.subnetworks.useExternalIp", # instances.insert: public IP (PUBLIC_IP=true)
    "compute.instances.get",             # IP lookup of a job VM
    "compute.instances.delete",          # job VM deleted when the job ends
    "compute.zoneOperations.get",        # zoneOperations.get / wait: insert and delete done?
    "compute.globalOperations.list",     # globalOperations.aggregatedList: was it preempted?
    "cloudtrace.traces.patch",           # job traces (TRAVIS_WORKER_OPENCENSUS_TRACING_ENABLED)
  ]

  cleanup_permissions = [
    "compute.instances.list",   # instances.aggregatedList: find job VMs in every zone
    "compute.instances.delete", # instances.delete: remove an orphaned job VM
  ]
}
