"""JSON encoded byte-for-byte as Go's `encoding/json` encodes it.

Consumers of our messages (travis-hub, travis-logs) were written against Go's output:
compact separators, raw UTF-8, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\\u003c` and
friends. That HTML escaping is also why a log part is at most 1653 bytes: six bytes of
JSON per `<` must still fit the 9918 bytes travis-logs can forward to Pusher.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
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


def _replace_surrogates(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "\ufffd".encode() * (error.end - error.start), error.end


# A JSON text may escape half of a surrogate pair (`"\ud800"`): Python decodes it to a lone
# surrogate, which UTF-8 cannot encode. Go decodes it to U+FFFD; so does dumps() here.
codecs.register_error("travis_worker.gojson.replace", _replace_surrogates)


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Encode like Go's `json.Marshal`. Go marshals maps with sorted keys, structs in field
    order: pass `sort_keys=True` for bodies Go built from a map."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    # Outside strings JSON holds none of these characters, so translating the whole text
    # only touches string contents.
    return text.translate(_GO_ESCAPES).encode(errors="travis_worker.gojson.replace")


# Python refuses to turn longer digit strings into ints (a denial-of-service guard).
_MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


def _bounded_int(digits: str) -> int | float:
    # An integer too long to convert reads as an out-of-range number: the body still parses,
    # so a job id next to it can be found, and whoever reads the value sees it is unusable.
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        return math.inf
    return int(digits)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# An escaped UTF-16 surrogate (`\ud83d`): half of a pair, or (rarely) all there is.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads(body: bytes) -> Any:
    """Parse a JSON body as Go's `json.Unmarshal` reads it: invalid UTF-8 and an escaped
    half of a surrogate pair become U+FFFD, `NaN` and `Infinity` are not JSON. A number
    beyond float range reads as infinity (Go fails to decode it into a number; callers
    check with `tree_trouble`). Raises ValueError for anything that is not JSON, including
    nesting deeper than Python's parser goes."""
    text = body.decode(errors="replace")
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
        if _SURROGATE_ESCAPE.search(text):
            # Python keeps a lone half as a lone surrogate, which no UTF-8 text can hold:
            # one more round through dumps(), which replaces it, leaves none anywhere.
            value = json.loads(dumps(value), parse_constant=float)
    except RecursionError as exc:
        raise ValueError("nested too deeply to parse") from exc
    return value


def tree_trouble(value: Any, max_depth: int) -> str | None:
    """Why a parsed JSON value cannot be encoded again, or None: nesting deeper than
    `max_depth` (the encoder recurses, like the parser) or a number out of float range.
    Walks without recursion, so any depth the parser took can be measured."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number out of range"
    return None


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
