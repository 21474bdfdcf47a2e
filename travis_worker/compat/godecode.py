"""JSON objects into pydantic models the way Go's encoding/json fills structs, except that a
wrong value spoils only its own field.

Go matches keys to fields case-insensitively (an exact match wins), ignores unknown keys and
reads `null` as the zero value; a wrong type anywhere fails the whole decode, so travis-ci/worker
dropped a whole job for one odd field. `decode_fields` keeps every field it can, leaves a
wrong one at its zero value and reports it, and the caller decides which fields a job cannot
do without (those marked NEEDED).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)

# How much of a wrong string value a report shows: enough to recognise it, never a flood.
SHOWN_CHARS = 40


class _Needed:
    def __repr__(self) -> str:
        return "NEEDED"


NEEDED: Final = _Needed()
"""`Annotated[T, NEEDED]`: the job cannot run without this field (and what it holds)."""


@dataclass(frozen=True)
class FieldProblem:
    """A field whose value was not used: `timeouts.hard_limit must be at least 0 (got -5)`."""

    path: str
    problem: str
    needed: bool

    def __str__(self) -> str:
        return f"{self.path} {self.problem}"


def go_fields(names: Iterable[str], data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that name a field, under the field's name, as Go matches them:
    an exact key wins over one that differs in case; `null` values are left out."""
    fields = set(names)
    by_lower = {name.lower(): name for name in fields}
    decoded: dict[str, Any] = {}
    for key, value in data.items():
        exact = key in fields
        name = key if exact else by_lower.get(key.lower())
        if name is None or value is None or (not exact and name in decoded):
            continue
        decoded[name] = value
    return decoded


def shown(value: Any) -> str:
    """A JSON value as a report may show it: short, one line, escapes visible."""
    if isinstance(value, str):
        quoted = json.dumps(value[:SHOWN_CHARS])
        if len(value) <= SHOWN_CHARS:
            return quoted
        return f'{quoted[:-1]}…" ({len(value)} characters)'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number out of range"
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= SHOWN_CHARS else f"a {len(text)}-digit number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else type(value).__name__


def _rule(error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return "must be a whole number"
    if kind == "string_type":
        return "must be a string"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long"
    if kind == "value_error":
        return str(ctx.get("error", "is not valid"))
    return error["msg"][:1].lower() + error["msg"][1:]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def decode_fields(
    model: type[M], data: Any, *, path: str = "", needed: bool = False
) -> tuple[M, list[FieldProblem]]:
    """`data` as `model`, field by field (nested models too), and the fields whose values
    were not used, in field order. Raises ValidationError only when a field without a
    default is missing or wrong."""
    if not isinstance(data, dict):
        problem = FieldProblem(path, f"must be an object (got {shown(data)})", needed)
        return _validated(model, {}, "", needed, {})[0], [problem]
    try:  # the usual case: all in one go; field by field only when something is wrong
        return model.model_validate(data), []
    except ValidationError:
        pass
    prefix = f"{path}." if path else ""
    values = go_fields(model.model_fields, data)
    found: dict[str, list[FieldProblem]] = {}
    for name, value in values.items():
        info = model.model_fields[name]
        if _is_model(info.annotation):
            values[name], found[name] = decode_fields(
                info.annotation,  # type: ignore[arg-type]
                value,
                path=prefix + name,
                needed=needed or NEEDED in info.metadata,
            )
    instance, found = _validated(model, values, prefix, needed, found)
    return instance, [problem for name in model.model_fields for problem in found.get(name, [])]


def _validated(
    model: type[M],
    values: dict[str, Any],
    prefix: str,
    needed: bool,
    found: dict[str, list[FieldProblem]],
) -> tuple[M, dict[str, list[FieldProblem]]]:
    """`model` from `values`, the fields with wrong values left out and added to `found`."""
    try:
        return model.model_validate(values), found
    except ValidationError as exc:
        errors = exc.errors()
    wrong = {str(error["loc"][0]): error for error in errors}
    for name, error in wrong.items():
        is_needed = needed or NEEDED in model.model_fields[name].metadata
        problem = f"{_rule(error)} (got {shown(values.pop(name, None))})"
        found[name] = [FieldProblem(prefix + name, problem, is_needed)]
    return model.model_validate(values), found
