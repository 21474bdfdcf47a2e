"""Start and stop hooks (travis-ci/worker `cli.go`): a command split on spaces (no
shell), whose failure is logged with its output and never stops the worker."""

from __future__ import annotations

import logging

from travis_worker.util.subprocesses import HelperFailed, run_program

logger = logging.getLogger(__name__)

HOOK_TIMEOUT_SECONDS = 300.0


async def run_hook(name: str, command: str) -> bool:
    """Run the `name` hook's `command`; True when it exited 0 (or there is none)."""
    argv = [part for part in command.split(" ") if part]
    if not argv:
        return True
    try:
        finished = await run_program(argv, limit=HOOK_TIMEOUT_SECONDS, merge_stderr=True)
    except HelperFailed as exc:
        logger.error(f"{name} hook failed", extra={"fields": {"err": str(exc)}})
        return False
    if finished.exit_code != 0:
        output = finished.stdout.decode(errors="replace")
        fields = {"exit_code": finished.exit_code, "output": output}
        logger.error(f"{name} hook failed", extra={"fields": fields})
        return False
    return True
