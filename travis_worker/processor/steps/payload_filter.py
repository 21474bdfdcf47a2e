"""The optional payload filter (travis-ci/worker `step_transform_build_json.go`): an
executable that gets the job payload as JSON on stdin and prints the payload to use
instead. Any failure keeps the original."""

from __future__ import annotations

import json
import logging
from typing import Any

from travis_worker.util.subprocesses import HelperFailed, run_program

logger = logging.getLogger(__name__)

FILTER_TIMEOUT_SECONDS = 60.0


async def filter_payload(executable: str, raw_payload: dict[str, Any]) -> dict[str, Any]:
    if not executable:
        return raw_payload
    stdin = json.dumps(raw_payload).encode()
    try:
        finished = await run_program([executable], stdin=stdin, limit=FILTER_TIMEOUT_SECONDS)
    except HelperFailed as exc:
        logger.error("payload filter failed", extra={"fields": {"err": str(exc)}})
        return raw_payload
    if finished.exit_code != 0:
        stderr = finished.stderr.decode(errors="replace")
        fields = {"exit_code": finished.exit_code, "stderr": stderr}
        logger.error("payload filter failed", extra={"fields": fields})
        return raw_payload
    try:
        filtered = json.loads(finished.stdout)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.error("payload filter printed no JSON", extra={"fields": {"err": str(exc)}})
        return raw_payload
    if not isinstance(filtered, dict):
        logger.error("payload filter printed no JSON object")
        return raw_payload
    return filtered
