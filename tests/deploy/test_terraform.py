"""The terraform module in deploy/terraform, read with python-hcl2 (and terraform, if present)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import (
    TF_DIR,
    blocks,
    env_file_keys,
    is_known_worker_key,
    known_cleanup_keys,
    parse,
    resources,
    terraform,
    tf_files,
)

_REFERENCE = re.compile(r"\b(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)")
# The reference module's inputs (travis-ci/worker-gcp-standalone): kept by name so an
# existing config.auto.tfvars carries over.
REFERENCE_VARIABLES = {
    "project", "region", "zones", "amqp_uri", "build_api_uri", "queue_name", "machine_type",
    "cos_image", "honeycomb_dataset", "honeycomb_writekey", "honeycomb_sample_rate",
    "worker_docker_self_image", "worker_managed_instance_count", "cleanup_docker_self_image",
    "cleanup_instance_max_age", "cleanup_loop_sleep", "cleanup_managed_instance_count",
}  # fmt: skip


def references(kind: str) -> set[str]:
    """Names used as `var.X` / `local.X` anywhere in the .tf files."""
    text = "\n".join(path.read_text() for path in tf_files())
    return {name for found_kind, name in _REFERENCE.findall(text) if found_kind == kind}


def test_every_tf_file_parses() -> None:
    assert {path.name for path in tf_files()} >= {"variables.tf", "worker.tf", "cleanup.tf"}
    for path in tf_files():
        assert isinstance(parse(path), dict), path.name


def test_every_variable_used_is_declared_documented_and_typed() -> None:
    declared = blocks("variable")
    assert references("var") <= set(declared), references("var") - set(declared)
    for name, body in declared.items():
        assert len(body.get("description", "")) > 15, f"variable {name} needs a description"
        assert "type" in body, f"variable {name} needs a type"


def test_every_declared_variable_is_used() -> None:
    unused = set(blocks("variable")) - references("var")
    assert not unused, f"declared but never used: {sorted(unused)}"


def test_the_reference_variables_keep_their_names() -> None:
    assert set(blocks("variable")) >= REFERENCE_VARIABLES


def test_every_local_used_is_defined() -> None:
    assert references("local") <= set(blocks("locals")), references("local") - set(blocks("locals"))


def test_worker_env_keys_are_settings_the_worker_reads() -> None:
    static = env_file_keys((TF_DIR / "worker.env").read_text())
    locals_ = blocks("locals")
    generated = list(locals_["worker_general_env"]) + list(locals_["worker_gce_env"])
    assert static and generated
    unknown = [key for key in static + generated if not is_known_worker_key(key)]
    assert not unknown, f"not worker settings: {unknown}"


def test_cleanup_env_keys_are_settings_the_reaper_reads() -> None:
    keys = set(blocks("locals")["cleanup_env"])
    assert keys and keys <= known_cleanup_keys(), keys - known_cleanup_keys()


def test_example_tfvars_only_sets_declared_variables() -> None:
    text = (TF_DIR / "config.auto.tfvars.example").read_text()
    assigned = set(re.findall(r"^#?\s*([a-z_]+)\s+=", text, re.MULTILINE))
    assert assigned >= {"project", "amqp_uri", "build_api_uri", "worker_docker_self_image"}
    assert assigned <= set(blocks("variable")), assigned - set(blocks("variable"))


def test_backend_example_is_gcs_with_an_encryption_key() -> None:
    text = (TF_DIR / "backend.tf.example").read_text()
    assert re.search(r'backend\s+"gcs"', text)
    assert re.search(r"^\s*encryption_key\s*=", text, re.MULTILINE)


def test_instance_groups_roll_safely_and_autoheal_on_healthz() -> None:
    groups = resources("google_compute_region_instance_group_manager")
    assert set(groups) == {"worker", "cleanup"}
    for group in groups.values():
        policy = group["update_policy"][0]
        assert policy["minimal_action"] == "REPLACE"
        assert policy["max_unavailable_fixed"] == 0, "never drop below capacity"
        assert policy["instance_redistribution_type"] == "NONE"
        assert group["auto_healing_policies"][0]["health_check"].endswith(".id}")
        assert group["distribution_policy_zones"] == "${local.zones}"
    assert groups["worker"]["update_policy"][0]["type"] == "${var.update_type}"
    assert groups["worker"]["instance_lifecycle_policy"][0]["force_update_on_repair"] == "YES"
    checks = resources("google_compute_health_check")
    assert checks["worker"]["http_health_check"][0] == {
        "port": "${var.remote_controller_port}",
        "request_path": "/healthz",
    }


def test_ssh_to_job_vms_only_from_worker_hosts() -> None:
    rules = resources("google_compute_firewall")
    ssh = rules["job_vm_ssh_from_workers"]
    assert ssh["allow"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert ssh["source_tags"] == ["${local.worker_tag}"]
    assert ssh["target_tags"] == ["${local.job_vm_tag}"]
    assert "source_ranges" not in ssh
    deny = rules["job_vm_deny_ingress"]
    assert deny["deny"] == [{"protocol": "all"}]
    assert deny["priority"] > ssh["priority"], "the allow rule must win over the deny rule"
    assert blocks("locals")["job_vm_tag"] == "testing"  # what the GCE backend tags VMs with


def test_cloud_nat_is_optional() -> None:
    for kind in ("google_compute_router", "google_compute_router_nat"):
        assert resources(kind)["nat"]["count"] == "${var.cloud_nat ? 1 : 0}"


def test_outputs_name_the_service_accounts() -> None:
    outputs = blocks("output")
    assert outputs["worker_service_account_email"]["value"].endswith("worker.email}")
    assert outputs["cleanup_service_account_email"]["value"].endswith("cleanup.email}")


def test_terraform_fmt_is_clean() -> None:
    result = subprocess.run(
        [terraform(), "fmt", "-check", "-diff", "-recursive", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_constraints() -> None:
    settings = parse(TF_DIR / "versions.tf")["terraform"][0]
    assert settings["required_version"] == ">= 1.5"
    assert settings["required_providers"][0]["google"]["version"] == ">= 5.0"


@pytest.mark.parametrize("path", sorted(TF_DIR.glob("templates/*.tftpl")), ids=lambda p: p.name)
def test_templates_only_use_values_env_tf_passes(path: Path) -> None:
    passed = {
        "cloud-config-worker.yaml.tftpl": "worker_cloud_config",
        "cloud-config-cleanup.yaml.tftpl": "cleanup_cloud_config",
    }[path.name]
    text = (TF_DIR / "env.tf").read_text()
    call = text[text.index(f"{passed} = templatefile(") :]
    given = set(re.findall(r"^\s{4}([a-z_]+)\s+=", call[: call.index("})")], re.MULTILINE))
    used = set(re.findall(r"\$\{\s*(?:base64encode\(|join\(\" \", )?([a-z_]+)", path.read_text()))
    used |= set(re.findall(r"%\{\s*if\s+(?:length\()?([a-z_]+)", path.read_text()))
    assert used <= given, used - given
