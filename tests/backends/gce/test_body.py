"""Machine type, disk, GPUs, startup script, names and labels of a job VM."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.backends.gce.conftest import job_attrs
from travis_worker.backends.google.body import (
    deterministic_hostname,
    job_labels,
    label_value,
    linux_startup_script,
    plan_vm,
    random_instance_name,
    scheduling,
)
from travis_worker.backends.google.config import parse_gce_config
from travis_worker.job import VmConfig

CONFIG = parse_gce_config({})


def test_default_machine_and_disk():
    attrs = job_attrs()
    plan = plan_vm(attrs, CONFIG)
    assert (plan.machine_type, plan.disk_size_gb, plan.gpu_count) == ("n1-standard-2", 20, 0)
    assert attrs.vm_size == ""


def test_premium_and_sizes_rewrite_vm_size():
    premium = job_attrs(vm_type="premium", vm_size="large")
    assert plan_vm(premium, CONFIG).machine_type == "n1-standard-4"
    assert premium.vm_size == "premium"
    for size, machine in [("medium", "n2-standard-2"), ("2x-large", "n2-standard-16")]:
        attrs = job_attrs(vm_size=size)
        assert plan_vm(attrs, CONFIG).machine_type == machine
        assert attrs.vm_size == machine
    unknown = job_attrs(vm_size="huge")
    assert plan_vm(unknown, CONFIG).machine_type == "n1-standard-2"
    assert unknown.vm_size == "huge"


def test_gpu_sizes_get_a_gpu_and_a_big_disk():
    attrs = job_attrs(vm_size="gpu-xlarge")
    plan = plan_vm(attrs, CONFIG)
    assert (plan.machine_type, plan.disk_size_gb) == ("n1-standard-8", 300)
    assert (plan.gpu_count, plan.gpu_type, plan.gpu_vm_type) == (
        1,
        "nvidia-tesla-v100",
        "gpu-xlarge",
    )
    assert attrs.vm_size == "gpu-xlarge"


def test_gpus_from_vm_config_win_and_windows_disk():
    attrs = job_attrs(vm_config=VmConfig(gpu_count=2, gpu_type="nvidia-l4"), os="windows")
    plan = plan_vm(attrs, parse_gce_config({"DISK_SIZE_WINDOWS": "100"}))
    assert (plan.gpu_count, plan.gpu_type, plan.disk_size_gb) == (2, "nvidia-l4", 100)


def test_startup_script_is_byte_for_byte_the_go_workers():
    key = "ssh-ed25519 AAAAC3Nza worker\n"
    assert linux_startup_script(key, timedelta(minutes=50, seconds=59), True) == (
        "#!/usr/bin/env bash\n"
        "echo poweroff | at now + 60 minutes\n"
        "cat > ~travis/.ssh/authorized_keys <<EOF\n"
        "ssh-ed25519 AAAAC3Nza worker\n"
        "\n"
        "EOF\n"
        "chown -R travis:travis ~travis/.ssh/\n"
    )
    assert linux_startup_script(key, timedelta(hours=2), False).split("\n")[1] == ""


def test_hostnames():
    assert (
        deterministic_hostname("very-SiLlY.nAmE.wat/por-cu___-pine", 42)
        == "travis-job-very-silly-nam-por-cu-pine-42"
    )
    unknown = deterministic_hostname("", 0)
    assert unknown.startswith("travis-job-unk-unk-") and len(unknown.split("-")) == 9
    assert re.fullmatch(
        r"travis-job-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", random_instance_name()
    )


def test_labels_are_valid_gce_labels():
    labels = job_labels("Worker_1.Example.COM", 99, "Owner/" + "R" * 80)
    assert labels["created-by"] == "travis-worker"
    assert labels["travis-worker"] == "worker_1-example-com"
    assert labels["job-id"] == "99"
    assert labels["repo"] == "owner-" + "r" * 57
    assert all(re.fullmatch(r"[a-z0-9_-]{0,63}", value) for value in labels.values())
    assert label_value("..a..") == "a"


def test_scheduling():
    hour = timedelta(hours=1)
    assert scheduling(CONFIG, gpus=False, hard_timeout=hour) == {
        "preemptible": False,
        "automaticRestart": False,
        "onHostMaintenance": "MIGRATE",
        "maxRunDuration": {"seconds": "4200"},
        "instanceTerminationAction": "DELETE",
    }
    spot = parse_gce_config({"PREEMPTIBLE": "true", "MAX_RUN_MARGIN": "0"})
    assert scheduling(spot, gpus=False, hard_timeout=hour) == {
        "preemptible": True,
        "automaticRestart": False,
        "onHostMaintenance": "TERMINATE",
        "provisioningModel": "SPOT",
    }
    assert scheduling(CONFIG, gpus=True, hard_timeout=hour)["onHostMaintenance"] == "TERMINATE"
