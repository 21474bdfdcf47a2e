"""The custom roles in deploy/terraform/permissions.tf grant what the code's Compute calls need,
and nothing they do not.

The worker's calls are read from the code itself: which `ComputeApi` methods the GCE backend
calls (backends/**/*.py), and which Compute API method each of them sends (the literal passed
to `self._call(...)` in backends/google/api.py). A new call therefore fails this test until its
permissions are in API_PERMISSIONS and in permissions.tf.
"""

from __future__ import annotations

import ast

from tests.deploy.support import REPO, TF_DIR, blocks, env_file_keys
from travis_worker.cleanup.compute import PERMISSIONS as CLEANUP_PERMISSIONS

BACKENDS = REPO / "travis_worker" / "backends"
GCE_API = BACKENDS / "google" / "api.py"

# IAM permissions of each Compute API method (cloud.google.com/compute/docs/reference/rest/v1,
# "IAM Permissions" of each method). instances.insert needs one per part of the body the
# GCE backend sends ("Required permissions" of creating a VM): boot disk from an image,
# network interface (VPC subnet or legacy network, public IP), metadata, labels, tags.
# Scheduling (maxRunDuration, preemptible) and guest accelerators need none of their own.
API_PERMISSIONS: dict[str, set[str]] = {
    "zones.get": {"compute.zones.get"},
    "zones.list": {"compute.zones.list"},
    "regions.get": {"compute.regions.get"},
    "networks.get": {"compute.networks.get"},
    "subnetworks.get": {"compute.subnetworks.get"},
    "machineTypes.get": {"compute.machineTypes.get"},
    "machineTypes.list": {"compute.machineTypes.list"},
    "images.list": {"compute.images.list"},
    "instances.insert": {
        "compute.instances.create",
        "compute.disks.create",
        "compute.images.useReadOnly",
        "compute.networks.use",
        "compute.subnetworks.use",
        "compute.subnetworks.useExternalIp",
        "compute.instances.setMetadata",
        "compute.instances.setLabels",
        "compute.instances.setTags",
    },
    "instances.get": {"compute.instances.get"},
    "instances.delete": {"compute.instances.delete"},
    "instances.aggregatedList": {"compute.instances.list"},
    "zoneOperations.get": {"compute.zoneOperations.get"},
    "zoneOperations.wait": {"compute.zoneOperations.get"},
    "globalOperations.aggregatedList": {"compute.globalOperations.list"},
}
TRACE_PERMISSION = "cloudtrace.traces.patch"


def api_methods_by_wrapper() -> dict[str, set[str]]:
    """ComputeApi method name → the Compute API methods it calls (`self._call("x", ...)`)."""
    tree = ast.parse(GCE_API.read_text())
    api = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ComputeApi"
    )
    found: dict[str, set[str]] = {}
    for method in api.body:
        if not isinstance(method, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        for node in ast.walk(method):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.setdefault(method.name, set()).add(str(node.args[0].value))
    return found


def wrappers_called_by_the_worker(wrappers: set[str]) -> set[str]:
    """ComputeApi methods called (`<x>.<method>(`) by backend modules other than the client."""
    called: set[str] = set()
    for path in sorted(BACKENDS.rglob("*.py")):
        if path in (GCE_API, GCE_API.with_name("api_types.py")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in wrappers:
                called.add(node.attr)
    return called


def permissions_of(api_methods: set[str]) -> set[str]:
    unknown = api_methods - set(API_PERMISSIONS)
    assert not unknown, f"add the IAM permissions of {sorted(unknown)} to API_PERMISSIONS"
    return set().union(*(API_PERMISSIONS[method] for method in api_methods))


def tracing_enabled() -> bool:
    lines = (TF_DIR / "worker.env").read_text().splitlines()
    return "TRAVIS_WORKER_OPENCENSUS_TRACING_ENABLED=true" in lines


def test_the_code_reading_finds_the_calls() -> None:
    wrappers = api_methods_by_wrapper()
    assert wrappers["insert_instance"] == {"instances.insert"}
    assert wrappers["delete_instance"] == {"instances.delete"}
    assert "insert_instance" in wrappers_called_by_the_worker(set(wrappers))
    assert "OPENCENSUS_TRACING_ENABLED" in "".join(
        env_file_keys((TF_DIR / "worker.env").read_text())
    )


def test_worker_role_is_exactly_what_the_gce_backend_calls_need() -> None:
    wrappers = api_methods_by_wrapper()
    used = wrappers_called_by_the_worker(set(wrappers))
    needed = permissions_of(set().union(*(wrappers[name] for name in used)))
    if tracing_enabled():
        needed.add(TRACE_PERMISSION)

    granted = set(blocks("locals")["worker_permissions"])

    assert needed - granted == set(), "the worker would be refused these"
    assert granted - needed == set(), "granted but no call needs them (least privilege)"


def test_cleanup_role_is_exactly_what_the_reaper_calls_need() -> None:
    wrappers = api_methods_by_wrapper()
    # The reaper calls these ComputeApi methods; each sends the API methods found above.
    sent = set().union(*(wrappers[name] for name in CLEANUP_PERMISSIONS))
    needed = permissions_of(sent)
    declared = set().union(*(set(perms) for perms in CLEANUP_PERMISSIONS.values()))

    granted = set(blocks("locals")["cleanup_permissions"])

    assert declared == needed, "cleanup/compute.py PERMISSIONS disagree with the API table"
    assert granted == needed


def test_the_reaper_calls_only_what_it_declares() -> None:
    cleanup = REPO / "travis_worker" / "cleanup"
    wrappers = set(api_methods_by_wrapper())
    called = {
        node.attr
        for path in cleanup.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in wrappers
    }
    assert called == set(CLEANUP_PERMISSIONS)


def test_role_permissions_are_plain_lists_without_repeats() -> None:
    for name in ("worker_permissions", "cleanup_permissions"):
        permissions = blocks("locals")[name]
        assert len(permissions) == len(set(permissions)), name
        assert all(isinstance(item, str) and item.count(".") >= 2 for item in permissions)


def test_permissions_file_comments_every_permission() -> None:
    for line in (TF_DIR / "permissions.tf").read_text().splitlines():
        if line.strip().startswith('"'):
            assert "#" in line, f"say which call needs it: {line.strip()}"
