"""Go-style durations: `time.ParseDuration` input and `time.Duration.String()` output.

Operators carry their travis-ci/worker env files over unchanged, so `3m30s`, `1.5h` and
`500ms` must mean what they meant there, and `--echo-config` must print `50m0s`, not
`0:50:00`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_NANOS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> timedelta:
    """Parse a Go duration string such as `1h30m`, `1.5s` or `-2m`.

    A bare number is an error, except `0`, exactly as in Go.
    """
    original = text
    text = text.strip()
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return timedelta(0)
    if not text:
        raise ValueError(f"invalid duration {original!r}")
    nanos = 0
    position = 0
    while position < len(text):
        match = _COMPONENT.match(text, position)
        if match is None:
            raise ValueError(f"invalid duration {original!r}")
        number, unit = match.groups()
        whole, _, fraction = number.partition(".")
        scale = _NANOS_PER_UNIT[unit]
        nanos += int(whole or "0") * scale
        if fraction:
            nanos += int(fraction) * scale // 10 ** len(fraction)
        position = match.end()
    try:
        return timedelta(microseconds=sign * nanos / 1000)
    except OverflowError:
        raise ValueError(f"duration {original!r} is out of range") from None


def _trim_fraction(value: int, digits: int) -> str:
    """Render `value / 10**digits` without trailing zeros, as Go does."""
    whole, fraction = divmod(value, 10**digits)
    text = str(whole)
    fraction_text = str(fraction).rjust(digits, "0").rstrip("0")
    return f"{text}.{fraction_text}" if fraction_text else text


def format_go_duration(value: timedelta | float) -> str:
    """Render like Go's `time.Duration.String()`: `0s`, `500ms`, `42.17s`, `1h0m0s`."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    nanos = round(seconds * 1_000_000_000)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_trim_fraction(nanos, 3)}µs"
    if nanos < 1_000_000_000:
        return f"{sign}{_trim_fraction(nanos, 6)}ms"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = sign
    if hours:
        text += f"{hours}h"
    if hours or minutes:
        text += f"{minutes}m"
    return f"{text}{_trim_fraction(rest, 9)}s"


def truncate_to_millis(value: timedelta) -> timedelta:
    """Go's `d.Truncate(time.Millisecond)`, used in progress messages."""
    return timedelta(milliseconds=int(value / timedelta(milliseconds=1)))


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_go_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_go_duration, return_type=str),
]
"""A pydantic field type that accepts Go duration strings and serialises back to them."""
