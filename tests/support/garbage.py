"""Hypothesis strategies for garbage: mutated job payloads, bytes a job may print, and
answers of the build API.

A mutated payload is the fixture payload with some fields set to odd values (wrong types,
huge strings, deep nesting, invalid UTF-8) or removed, serialised, and possibly cut or
spliced with random bytes. Each example says what it did, so a test can tell what the
worker must make of it without asking the code under test.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.build_api import Answer
from tests.support.worker import example_payload

# The payload fields the run needs (a wrong value errors the job) and the ones that only
# name or decorate it (a wrong value is ignored), as the README documents them.
NEEDED = (
    "timeouts",
    "timeouts.hard_limit",
    "timeouts.log_silence",
    "vm_type",
    "vm_size",
    "vm_config",
    "vm_config.gpu_count",
    "vm_config.gpu_type",
    "vm_config.zone",
)
DECORATIVE = (
    "type",
    "job.number",
    "job.queued_at",
    "source",
    "source.id",
    "source.number",
    "repository",
    "repository.id",
    "repository.slug",
    "uuid",
    "meta",
    "meta.state_update_count",
    "queue",
    "trace",
    "warmer",
)
# Only forwarded to the build API: no value of theirs may stop a job.
FORWARDED = ("env_vars", "ssh_key", "cache_settings", "job.commit", "config.env", "surprise")

# Spliced into the serialised body in place of a marker string.
DEEP = "\x00deep\x00"
RAW_BYTES = "\x00bytes\x00"

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
odd_values = (
    json_values
    | st.integers(min_value=256, max_value=2_000_000).map(lambda n: "x" * n)
    | st.sampled_from([DEEP, RAW_BYTES, "\u202e\x1b[31m\x00\ud800", 2**64, -1, 1.5, [], {}])
)


@dataclass
class MutatedPayload:
    body: bytes
    job_id_usable: bool
    """The body is JSON and its job.id is an integer from 1 to 2^64-1."""
    touched: set[str] = field(default_factory=set)
    """The paths that got an odd value or were removed."""
    wrong_typed: set[str] = field(default_factory=set)
    """NEEDED paths set to a value of a JSON type the field can never take."""
    too_deep: bool = False

    @property
    def must_run(self) -> bool:
        """Nothing the run needs was touched: the job must run, not be errored."""
        return self.job_id_usable and not self.too_deep and not (self.touched & set(NEEDED))


REMOVE = object()


def set_path(payload: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with REMOVE, delete) the value at a dotted path, making parents objects."""
    *parents, last = path.split(".")
    node = payload
    for name in parents:
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    if value is REMOVE:
        node.pop(last, None)
    else:
        node[last] = value


_job_ids = st.one_of(
    st.integers(min_value=1, max_value=2**64 - 1).map(lambda n: (n, True)),
    st.sampled_from(["7", 7.0, True, 0, -7, 2**64, None, [7], {"id": 7}]).map(lambda v: (v, False)),
)


@st.composite
def mutated_payloads(
    draw: st.DrawFn, job_id: int | None = None, path: str | None = None, max_depth: int = 1200
) -> MutatedPayload:
    """The fixture payload with up to five fields changed or removed, or with `path`
    exactly that one, nested values at most `max_depth` deep. With `job_id` that id is kept
    (and usable); without, the id itself may be odd too."""
    payload = copy.deepcopy(example_payload(job_id or 1))
    usable = True
    if job_id is None and draw(st.booleans()):
        value, usable = draw(_job_ids)
        set_path(payload, "job.id", REMOVE if value is None else value)
    result = MutatedPayload(b"", job_id_usable=usable)
    if path is None:
        # A shuffle, so every path is as likely to be picked (sampled_from favours the first).
        paths = draw(st.permutations(NEEDED + DECORATIVE + FORWARDED))
        paths = paths[: draw(st.integers(min_value=0, max_value=5))]
    else:
        paths = [path]
    for changed in paths:
        value = draw(odd_values | st.just(REMOVE))
        set_path(payload, changed, value)
        result.touched.add(changed)
        # Setting a path replaces what its parents or children held.
        result.wrong_typed = {p for p in result.wrong_typed if not _related(p, changed)}
        if changed in NEEDED and never_usable(changed, value):
            result.wrong_typed.add(changed)
    text = json.dumps(payload)
    depth = draw(st.integers(min_value=1, max_value=max_depth))
    result.too_deep = json.dumps(DEEP) in text and depth > 400  # past where parsing is certain
    text = text.replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    raw = bytes(draw(st.lists(st.integers(min_value=0x80, max_value=0xFF), min_size=1)))
    result.body = text.encode().replace(json.dumps(RAW_BYTES).encode(), b'"' + raw + b'"')
    return result


@st.composite
def spliced(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    """A body cut somewhere and continued with random bytes."""
    body = draw(bodies)
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    return body[:cut] + draw(st.binary(max_size=20)) + body[cut + draw(st.integers(0, 20)) :]


def never_usable(path: str, value: Any) -> bool:
    """Whether `value` has a JSON type the needed field at `path` can never take."""
    if value is None or value is REMOVE:
        return False  # the zero value
    if path in ("timeouts", "vm_config"):
        return not isinstance(value, dict)
    return isinstance(value, dict | list) or value == DEEP


def _related(path: str, other: str) -> bool:
    return path == other or path.startswith(other + ".") or other.startswith(path + ".")


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples drawn from `strategy`, for tests that feed a running worker (one
    worker for many examples; hypothesis cannot drive an async test itself)."""
    drawn: list[Any] = []

    @settings(
        max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def draw(example: Any) -> None:
        drawn.append(example)

    draw()
    return drawn[:count]


# Pieces of output that trouble a log: invalid and cut UTF-8, NUL, ANSI, carriage returns,
# multi-byte characters that land across part boundaries.
_output_pieces = st.sampled_from(
    [
        *(b"\xff", b"\xc3", b"\xa9", b"\xe2\x82", b"\xac", b"\xf0\x9f\x98", b"\x80", b"\x00"),
        *(b"\x1b[31;1m", b"\x1b[0K", b"\r", b"\n", "é€😀".encode(), b"<&>", b"plain text "),
    ]
)
job_outputs = st.one_of(
    st.binary(max_size=5000),
    st.lists(_output_pieces, max_size=3000).map(b"".join),
    st.integers(min_value=1, max_value=1_200_000).map(lambda n: b"y" * n),  # one line, no \n
    st.integers(min_value=1, max_value=400_000).map(lambda n: "€".encode() * n),
)


def build_outcome(answers: list[Answer], max_script_bytes: int) -> str:
    """What the build API client must make of these answers (then good ones): `script`
    (it returns one) or `errored` (it gives up at once)."""
    for answer in answers:
        sent = len(gzip.compress(answer.body, 1)) if answer.gzip else len(answer.body)
        if answer.status >= 500:
            continue  # may do better next time
        if answer.status >= 400:
            return "errored"  # cannot do better, whatever its body does
        if (answer.cut_after is not None and answer.cut_after < sent) or (
            answer.chunk_delay and sent
        ):
            continue  # a body that breaks off or times out
        if len(answer.body) > max_script_bytes:
            return "errored"
        if answer.body and "html" not in answer.content_type:
            return "script"
    return "script"


def answer_sequences(
    bodies: st.SearchStrategy[bytes] | None = None, slow: float = 1.3
) -> st.SearchStrategy[list[Answer]]:
    """Up to three build API answers: any status, body (`bodies`, by default random bytes;
    or empty, or 2 MiB), content type, gzipped or not, slow (`slow` seconds before each
    chunk: make it longer than the client's time limit), cut off, echoing the request on
    errors."""
    bodies = st.binary(max_size=3000) if bodies is None else bodies
    return st.lists(
        st.builds(
            Answer,
            status=st.sampled_from([200, 200, 201, 400, 404, 500, 502, 503]),
            body=bodies | st.sampled_from([b"", b"\xff" * 2 * 1024 * 1024]),
            content_type=st.sampled_from(["application/x-sh", "text/plain", "text/html"]),
            gzip=st.booleans(),
            chunk_delay=st.sampled_from([0.0, 0.0, slow]),
            cut_after=st.none() | st.integers(min_value=0, max_value=2000),
            echo_request=st.booleans(),
        ).map(lambda a: dataclasses.replace(a, echo_request=a.echo_request and a.status >= 400)),
        max_size=3,
    )
