"""What a job VM looks like: machine type, disk, GPUs, startup script, name, labels and the
instances.insert body (as travis-ci/worker `backend/gce.go` builds it). Pure functions, no
API calls."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from travis_worker.backends.google.config import GceConfig
from travis_worker.job import StartAttributes

# job-board's vm_size names → machine types (travis-ci/worker's gceVMSizeMapping).
VM_SIZE_MACHINE_TYPES = {
    "medium": "n2-standard-2",
    "large": "n2-standard-4",
    "x-large": "n2-standard-8",
    "2x-large": "n2-standard-16",
    "gpu-medium": "n1-standard-8",
    "gpu-xlarge": "n1-standard-8",
}
GPU_VM_SIZES = {"gpu-medium": "nvidia-tesla-t4", "gpu-xlarge": "nvidia-tesla-v100"}
GPU_DISK_SIZE_GB = 300  # GPU images carry the CUDA toolchains
API_ROOT = "https://www.googleapis.com/compute/v1"

CREATED_BY = "travis-worker"
"""Value of the `created-by` label on every job VM; the orphan reaper looks for it."""
LABEL_CREATED_BY = "created-by"
LABEL_WORKER = "travis-worker"
LABEL_JOB_ID = "job-id"
LABEL_REPO = "repo"


@dataclass(frozen=True)
class VmPlan:
    """What to boot for one job, whatever the zone."""

    machine_type: str
    disk_size_gb: int
    gpu_count: int = 0
    gpu_type: str = ""
    gpu_vm_type: str = ""
    """`gpu-medium`/`gpu-xlarge` when the job asked for a GPU size (the api selector uses it)."""


def plan_vm(attrs: StartAttributes, config: GceConfig) -> VmPlan:
    """Choose machine type, disk and GPUs. Rewrites `attrs.vm_size` as travis-ci/worker
    does: `premium`, or the machine type a size mapped to; later state updates carry it."""
    gpu_vm_type = attrs.vm_size if attrs.vm_size in GPU_VM_SIZES else ""
    machine_type = config.machine_type
    if attrs.vm_type == "premium":
        attrs.vm_size = "premium"
        machine_type = config.premium_machine_type
    elif attrs.vm_size in VM_SIZE_MACHINE_TYPES:
        machine_type = VM_SIZE_MACHINE_TYPES[attrs.vm_size]
        if not gpu_vm_type:
            attrs.vm_size = machine_type
    disk_size = config.disk_size_windows if attrs.os == "windows" else config.disk_size
    if gpu_vm_type:
        disk_size = GPU_DISK_SIZE_GB
    gpu_count, gpu_type = 0, ""
    if attrs.vm_config.gpu_count > 0:
        gpu_count, gpu_type = attrs.vm_config.gpu_count, attrs.vm_config.gpu_type
    elif gpu_vm_type:
        gpu_count, gpu_type = 1, GPU_VM_SIZES[gpu_vm_type]
    return VmPlan(machine_type, disk_size, gpu_count, gpu_type, gpu_vm_type)


def linux_startup_script(authorized_key: str, hard_timeout: timedelta, auto_implode: bool) -> str:
    """Authorizes the worker's key for `travis` and, unless AUTO_IMPLODE is off, schedules a
    poweroff at hard timeout + 10 minutes in case the worker never deletes the VM."""
    minutes = int(hard_timeout.total_seconds() // 60) + 10
    implode = f"echo poweroff | at now + {minutes} minutes" if auto_implode else ""
    return (
        "#!/usr/bin/env bash\n"
        f"{implode}\n"
        "cat > ~travis/.ssh/authorized_keys <<EOF\n"
        f"{authorized_key}\n"
        "EOF\n"
        "chown -R travis:travis ~travis/.ssh/\n"
    )


def random_instance_name() -> str:
    return f"travis-job-{uuid.uuid4()}"


def deterministic_hostname(repository: str, job_id: int) -> str:
    """`travis-job-<owner>-<repo>-<job id>`, each slug part cleaned and cut to 14 chars."""
    if not repository or not job_id:
        return f"travis-job-unk-unk-{uuid.uuid4()}"
    parts = [re.sub(r"[^a-zA-Z0-9-]+", "-", part)[:14] for part in repository.split("/")]
    return re.sub(r"-+", "-", "-".join(["travis-job", *parts, str(job_id)])).lower()


def label_value(text: str) -> str:
    """GCE label values: lower-case letters, digits, `-` and `_`, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63]


def job_labels(worker_host: str, job_id: int, repository: str) -> dict[str, str]:
    """Who made the VM and for which job, so an orphan can be traced and reaped."""
    return {
        LABEL_CREATED_BY: CREATED_BY,
        LABEL_WORKER: label_value(worker_host),
        LABEL_JOB_ID: str(job_id),
        LABEL_REPO: label_value(repository),
    }


@dataclass(frozen=True)
class Placement:
    """Where the VM goes and what it boots from: links resolved for one zone."""

    project: str
    zone: str
    machine_type_link: str
    image_link: str
    network_link: str
    subnetwork_link: str = ""


def insert_body(
    *,
    name: str,
    language: str,
    plan: VmPlan,
    place: Placement,
    config: GceConfig,
    startup_script: str,
    labels: dict[str, str],
    hard_timeout: timedelta,
) -> dict[str, Any]:
    """The instances.insert body of travis-ci/worker, plus labels and a GCE-enforced end."""
    zone = place.zone
    interface: dict[str, Any] = {"network": place.network_link}
    if place.subnetwork_link:
        interface["subnetwork"] = place.subnetwork_link
    tags = ["testing"]
    if config.public_ip:
        interface["accessConfigs"] = [
            {"name": "AccessConfig brought to you by travis-worker", "type": "ONE_TO_ONE_NAT"}
        ]
    else:
        tags.append("no-ip")
    if config.travis_site:
        tags.append(config.travis_site)
    accelerators = []
    if plan.gpu_count > 0:
        accelerators.append(
            {
                "acceleratorCount": plan.gpu_count,
                "acceleratorType": f"{API_ROOT}/projects/{place.project}/zones/{zone}"
                f"/acceleratorTypes/{plan.gpu_type}",
            }
        )
    return {
        "name": name,
        "description": f"Travis CI {language} test VM",
        "zone": zone,
        "machineType": place.machine_type_link,
        "disks": [
            {
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "boot": True,
                "autoDelete": True,
                "initializeParams": {
                    "sourceImage": place.image_link,
                    "diskType": f"zones/{zone}/diskTypes/pd-ssd",
                    "diskSizeGb": str(plan.disk_size_gb),
                },
            }
        ],
        "networkInterfaces": [interface],
        "tags": {"items": tags},
        "metadata": {"items": [{"key": "startup-script", "value": startup_script}]},
        "scheduling": scheduling(config, gpus=bool(accelerators), hard_timeout=hard_timeout),
        "guestAccelerators": accelerators,
        "labels": labels,
    }


def scheduling(config: GceConfig, *, gpus: bool, hard_timeout: timedelta) -> dict[str, Any]:
    # A VM with GPUs cannot live-migrate, and a spot VM must terminate on maintenance.
    result: dict[str, Any] = {
        "preemptible": config.preemptible,
        "automaticRestart": False,
        "onHostMaintenance": "TERMINATE" if gpus or config.preemptible else "MIGRATE",
    }
    if config.preemptible:
        result["provisioningModel"] = "SPOT"
    if config.max_run_margin > timedelta(0):
        # GCE deletes the VM itself once the job cannot be running any more, even when the
        # worker that made it died: no orphan outlives hard timeout + margin.
        seconds = int((hard_timeout + config.max_run_margin).total_seconds())
        result["maxRunDuration"] = {"seconds": str(seconds)}
        result["instanceTerminationAction"] = "DELETE"
    return result
