"""Process logging: logrus-style logfmt lines (or JSON) with the job's context on each line.

`time="…" level=info msg="…" pid=42 job_id=7 repository=o/r processor=…` is what
`journalctl | honeytail` (keyval parser) reads in the reference deployment. Context fields
live in a contextvar, so every line logged while a job runs carries that job's fields,
including lines from library code called on its behalf.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "travis_worker_log_context", default=None
)
_BARE = re.compile(r"^[A-Za-z0-9\-._/@^+]+$")
_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (and tasks it starts)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current `log_context` block, for every task that shares it.

    Tasks copy the contextvar's value, a reference to the block's dict, when they are
    created. Updating that dict in place lets a job's tasks started earlier (its log
    flusher, its step tasks) name the instance that was bound after they started."""
    current = _context.get()
    if current is None:
        _context.set(dict(fields))
    else:
        current.update(fields)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as logrus writes them
    text = value if isinstance(value, str) else json.dumps(value) if value is None else str(value)
    if _BARE.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "level": _LEVELS.get(record.levelno, record.levelname.lower()),
        "msg": record.getMessage(),
        "pid": os.getpid(),
    }
    fields.update(_context.get() or {})
    fields.update(getattr(record, "fields", {}))
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = str(record.exc_info[1]) or type(record.exc_info[1]).__name__
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(
            f"{key}={_logfmt_value(value)}" for key, value in _record_fields(record).items()
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_record_fields(record), default=str)


def setup_logging(*, debug: bool = False, json_format: bool = False) -> None:
    """Send the `travis_worker` logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else LogfmtFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("travis_worker").setLevel(logging.DEBUG if debug else logging.INFO)


def fields(**values: Any) -> dict[str, Any]:
    """`logger.info("msg", extra=fields(state="passed"))` adds per-line fields."""
    return {"fields": values}
