"""The operator scripts: shellcheck-clean, and `make roll` (roll-workers.sh) driving a
stand-in `gcloud` that behaves like an instance group with autohealing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.deploy.support import DEPLOY, TF_DIR

ROLL = DEPLOY / "scripts" / "roll-workers.sh"

# An instance group as `gcloud` shows it. `compute ssh ... systemctl stop` drains a host;
# two listings later the group has recreated it on the current template (autohealing with
# force_update_on_repair).
FAKE_GCLOUD = textwrap.dedent(
    """\
    #!{python}
    import json, sys
    path = {state!r}
    state = json.load(open(path))
    argv = sys.argv[1:]
    state["calls"].append(argv)
    if "describe" in argv:
        print(state["template"])
    elif "list-instances" in argv:
        for host in state["hosts"]:
            if host.get("replace_in") is not None:
                host["replace_in"] -= 1
                host["status"] = "STOPPING"
                if host["replace_in"] == 0:
                    host.update(template=state["template"], status="RUNNING", replace_in=None)
            print(",".join([host["name"], host["zone"], host["template"], host["status"]]))
    elif argv[:2] == ["compute", "ssh"]:
        host = next(h for h in state["hosts"] if h["name"] == argv[2])
        host["replace_in"] = 2
    json.dump(state, open(path, "w"))
    """
)


def shellcheck() -> str:
    found = shutil.which("shellcheck")
    need(found is not None, "shellcheck (apt-get install shellcheck)")
    assert found is not None
    return found


@pytest.mark.parametrize("script", [ROLL, TF_DIR / "templates" / "stop-container.sh"])
def test_scripts_pass_shellcheck(script: Path) -> None:
    result = subprocess.run(
        [shellcheck(), str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def roll(tmp_path: Path, hosts: list[dict[str, Any]], *args: str) -> tuple[int, dict[str, Any]]:
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps({"template": "worker-new", "hosts": hosts, "calls": []}))
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable, state=str(state_path)))
    gcloud.chmod(0o755)
    result = subprocess.run(
        ["bash", str(ROLL), "--group", "workers", "--region", "us-central1", "--poll", "0", *args],
        env={"PATH": "/usr/bin:/bin", "GCLOUD": str(gcloud)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, json.loads(state_path.read_text())


def host(name: str, template: str = "worker-old") -> dict[str, Any]:
    return {"name": name, "zone": "us-central1-b", "template": template, "status": "RUNNING"}


def drained(state: dict[str, Any]) -> list[str]:
    return [call[2] for call in state["calls"] if call[:2] == ["compute", "ssh"]]


def test_drains_each_outdated_host_and_waits_for_its_replacement(tmp_path: Path) -> None:
    code, state = roll(
        tmp_path, [host("w-1"), host("w-2", template="worker-new"), host("w-3")], "--iap", "true"
    )

    assert code == 0
    assert drained(state) == ["w-1", "w-3"], "a host on the current template is left alone"
    assert all(h["template"] == "worker-new" for h in state["hosts"])
    ssh = next(call for call in state["calls"] if call[:2] == ["compute", "ssh"])
    assert "sudo systemctl stop --no-block travis-worker.service" in ssh
    assert "--tunnel-through-iap" in ssh and ssh[ssh.index("--zone") + 1] == "us-central1-b"


def test_one_host_at_a_time_unless_told_otherwise(tmp_path: Path) -> None:
    code, state = roll(tmp_path, [host("w-1"), host("w-2")])
    assert code == 0
    calls = [call[2] if call[:2] == ["compute", "ssh"] else call[3] for call in state["calls"]]
    # The second drain comes only after listings showed the first host replaced.
    assert calls.index("w-2") > calls.index("w-1") + 2

    code, state = roll(tmp_path, [host("w-1"), host("w-2")], "--parallel", "2")
    ssh_positions = [i for i, call in enumerate(state["calls"]) if call[:2] == ["compute", "ssh"]]
    assert code == 0 and ssh_positions[1] == ssh_positions[0] + 1


def test_gives_up_when_a_host_is_not_replaced(tmp_path: Path) -> None:
    stuck = host("w-1")
    stuck["zone"] = "us-central1-c"
    code, state = roll(tmp_path, [stuck], "--timeout", "0")
    assert code == 1
    assert drained(state) == ["w-1"]
