"""Start and stop hook commands: no shell, a failure logged, a time limit kept."""

from __future__ import annotations

import asyncio
import stat

from travis_worker.app.hooks import run_hook


def executable(path, body: str):
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_hooks_run_without_a_shell(tmp_path):
    marker = tmp_path / "ran"
    assert await run_hook("start", f"touch {marker}")
    assert marker.exists()
    assert not await run_hook("stop", "false")
    assert not await run_hook("stop", str(tmp_path / "no-such-hook"))
    assert await run_hook("stop", "")


async def test_a_hook_that_runs_over_is_killed(tmp_path, monkeypatch):
    import travis_worker.app.hooks as hooks

    monkeypatch.setattr(hooks, "HOOK_TIMEOUT_SECONDS", 0.5)
    marker = tmp_path / "still-running"
    script = executable(tmp_path / "slow-hook", f"#!/bin/sh\nsleep 2\ntouch {marker}\n")
    assert not await run_hook("start", script)
    await asyncio.sleep(2.5)
    assert not marker.exists(), "the hook was left running"
