"""JSON encoded byte-for-byte as Go's `encoding/json` encodes it.

Consumers of our messages (travis-hub, travis-logs) were written against Go's output:
compact separators, raw UTF-8, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\\u003c` and
friends. That HTML escaping is also why a log part is at most 1653 bytes: six bytes of
JSON per `<` must still fit the 9918 bytes travis-logs can forward to Pusher.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

_GO_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Encode like Go's `json.Marshal`. Go marshals maps with sorted keys, structs in field
    order: pass `sort_keys=True` for bodies Go built from a map."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    # Outside strings JSON holds none of these characters, so translating the whole text
    # only touches string contents.
    return text.translate(_GO_ESCAPES).encode()


def rfc3339(moment: datetime) -> str:
    """UTC, second precision: `2018-05-14T14:26:50Z` (Go's `time.RFC3339` after `.UTC()`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(moment: datetime) -> str:
    """Go's default time marshalling (`time.RFC3339Nano`): the time's own offset (`Z` for
    UTC) and a fraction without trailing zeros."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"
