"""Request bodies decoded the way Go's `json.NewDecoder(body).Decode(&structValue)` does,
so clients see the same 400s: `EOF` for an empty body, `unexpected EOF` for a cut one, and
`json: cannot unmarshal …` for a value of the wrong type. Like Go, keys match the struct's
field names case-insensitively, unknown keys are ignored, `null` leaves a field unset, and
anything after the first JSON value is not read.
"""

from __future__ import annotations

import json
from typing import Any

GoType = str
"""`int`, `bool`, `string` or `[]T`: the Go type of a field, as error messages name it."""


class BodyError(Exception):
    """The body does not decode; the message is what Go's decoder would say."""


def decode_struct(raw: bytes, struct: str, fields: dict[str, GoType]) -> dict[str, Any]:
    """The known fields present in the body, under their canonical names."""
    text = raw.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise BodyError("EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise BodyError("unexpected EOF") from exc
        raise BodyError(f"invalid character {text[exc.pos]!r} ({exc.msg})") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BodyError(
            f"json: cannot unmarshal {_kind(value)} into Go value of type worker.{struct}"
        )
    by_lower = {name.lower(): name for name in fields}
    decoded: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in fields else by_lower.get(key.lower())
        if name is None or item is None:
            continue
        if not _fits(item, fields[name]):
            literal = f" {json.dumps(item)}" if _kind(item) == "number" else ""
            raise BodyError(
                f"json: cannot unmarshal {_kind(item)}{literal} into Go struct field "
                f"{struct}.{name} of type {fields[name]}"
            )
        decoded[name] = item
    return decoded


def _fits(value: Any, go_type: GoType) -> bool:
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type in ("int", "uint64"):
        return isinstance(value, int) and not isinstance(value, bool)
    if go_type == "string":
        return isinstance(value, str)
    if go_type.startswith("[]"):
        return isinstance(value, list)
    return True


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
