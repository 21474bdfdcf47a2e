"""Start and stop hooks (travis-ci/worker `cli.go`): a command split on spaces (no
shell), whose failure is logged with its output and never stops the worker."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

HOOK_TIMEOUT_SECONDS = 300.0


async def run_hook(name: str, command: str) -> bool:
    """Run the `name` hook's `command`; True when it exited 0 (or there is none)."""
    argv = [part for part in command.split(" ") if part]
    if not argv:
        return True
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(process.communicate(), HOOK_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        logger.error(f"{name} hook failed", extra={"fields": {"err": str(exc) or "timed out"}})
        return False
    if process.returncode != 0:
        logger.error(
            f"{name} hook failed",
            extra={
                "fields": {
                    "exit_code": process.returncode,
                    "output": output.decode(errors="replace"),
                }
            },
        )
        return False
    return True
