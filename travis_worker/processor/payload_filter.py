"""The optional payload filter (travis-ci/worker `step_transform_build_json.go`): an
executable that gets the job payload as JSON on stdin and prints the payload to use
instead. Any failure keeps the original."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

FILTER_TIMEOUT_SECONDS = 60.0


async def filter_payload(executable: str, raw_payload: dict[str, Any]) -> dict[str, Any]:
    if not executable:
        return raw_payload
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        logger.error("payload filter could not start", extra={"fields": {"err": str(exc)}})
        return raw_payload
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(json.dumps(raw_payload).encode()), FILTER_TIMEOUT_SECONDS
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        logger.error("payload filter timed out")
        return raw_payload
    if process.returncode != 0:
        logger.error(
            "payload filter failed",
            extra={
                "fields": {
                    "exit_code": process.returncode,
                    "stderr": stderr.decode(errors="replace"),
                }
            },
        )
        return raw_payload
    try:
        filtered = json.loads(stdout)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.error("payload filter printed no JSON", extra={"fields": {"err": str(exc)}})
        return raw_payload
    if not isinstance(filtered, dict):
        logger.error("payload filter printed no JSON object")
        return raw_payload
    return filtered
