"""The IAM permissions the worker's Compute calls need: one table, read by `travis-worker
doctor` (it asks Resource Manager whether the account holds them) and by
tests/deploy/test_permissions.py, which keeps it equal to the calls in `api.py` and to the
worker's role in deploy/terraform/permissions.tf.
"""

from __future__ import annotations

from collections.abc import Mapping

# IAM permissions of each Compute API method (cloud.google.com/compute/docs/reference/rest/v1,
# "IAM Permissions" of each method). instances.insert needs one per part of the body the GCE
# backend sends ("Required permissions" of creating a VM): boot disk from an image, network
# interface (VPC subnet or legacy network, public IP), metadata, labels, tags. Scheduling
# (maxRunDuration, preemptible) and guest accelerators need none of their own.
API_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "zones.get": ("compute.zones.get",),
    "zones.list": ("compute.zones.list",),
    "regions.get": ("compute.regions.get",),
    "networks.get": ("compute.networks.get",),
    "subnetworks.get": ("compute.subnetworks.get",),
    "machineTypes.get": ("compute.machineTypes.get",),
    "machineTypes.list": ("compute.machineTypes.list",),
    "images.list": ("compute.images.list",),
    "instances.insert": (
        "compute.instances.create",
        "compute.disks.create",
        "compute.images.useReadOnly",
        "compute.networks.use",
        "compute.subnetworks.use",
        "compute.subnetworks.useExternalIp",
        "compute.instances.setMetadata",
        "compute.instances.setLabels",
        "compute.instances.setTags",
    ),
    "instances.get": ("compute.instances.get",),
    "instances.delete": ("compute.instances.delete",),
    "instances.aggregatedList": ("compute.instances.list",),
    "zoneOperations.get": ("compute.zoneOperations.get",),
    "zoneOperations.wait": ("compute.zoneOperations.get",),
    "globalOperations.aggregatedList": ("compute.globalOperations.list",),
}

# The Compute API methods the GCE backend sends (setup, boot, run, delete, preemption check).
# The reaper's calls are declared beside it, in cleanup/compute.py.
WORKER_API_METHODS = frozenset(
    {
        "zones.get",
        "zones.list",
        "regions.get",
        "networks.get",
        "subnetworks.get",
        "machineTypes.list",
        "images.list",
        "instances.insert",
        "instances.get",
        "instances.delete",
        "zoneOperations.wait",
        "globalOperations.aggregatedList",
    }
)


def permissions_of(api_methods: frozenset[str] | set[str]) -> frozenset[str]:
    """Every permission the Compute API methods `api_methods` need (KeyError: not in the
    table, so nobody knows yet)."""
    return frozenset(name for method in api_methods for name in API_PERMISSIONS[method])


def worker_permissions() -> frozenset[str]:
    """What the worker's service account must hold on the project of its job VMs."""
    return permissions_of(WORKER_API_METHODS)
