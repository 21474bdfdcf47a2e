"""Garbage in: whatever a delivery holds, parsing it either finds a usable job (and says
which values it could not use) or rejects the body; it never fails any other way."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.garbage import (
    DECORATIVE,
    FORWARDED,
    NEEDED,
    MutatedPayload,
    mutated_payloads,
    spliced,
)
from travis_worker.compat import gojson, texts
from travis_worker.errors import PayloadError
from travis_worker.job import (
    MAX_PAYLOAD_DEPTH,
    UINT64_MAX,
    ParsedDelivery,
    StartAttributes,
    StartDefaults,
    parse_job_body,
)

# Some examples carry megabyte strings and thousand-level nesting: no per-example deadline,
# a bounded number of examples (the whole file runs in a few seconds).
GARBAGE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A reported problem echoes at most a short excerpt of the value.
MAX_PROBLEM_CHARS = 200


def parse(body: bytes) -> ParsedDelivery | None:
    """The parse result, or None when the body was rejected (PayloadError): any other
    exception fails the test."""
    try:
        return parse_job_body(body)
    except PayloadError:
        return None


def check_usable(parsed: ParsedDelivery) -> None:
    """What every job the worker goes on with satisfies."""
    payload = parsed.payload
    assert isinstance(payload.job.id, int) and 0 < payload.job.id <= UINT64_MAX
    for problem in parsed.problems:
        assert problem.needed and problem.path.split(".")[0] in {*NEEDED, "payload"}, problem
        assert len(str(problem)) <= MAX_PROBLEM_CHARS, problem
    for ignored in parsed.ignored:
        assert not ignored.needed and ignored.path in DECORATIVE, ignored
        assert len(str(ignored)) <= MAX_PROBLEM_CHARS, ignored
    # The text the job would be errored with is one bounded line.
    line = texts.payload_unusable(parsed.problems)
    assert "\n" not in line and len(line) < 100 + MAX_PROBLEM_CHARS * len(NEEDED)
    # A job that runs can be forwarded to the build API, and its typed values are sane.
    if not parsed.problems:
        assert json.loads(gojson.dumps(parsed.raw)) is not None
        assert payload.timeouts.hard_limit >= 0 and payload.timeouts.log_silence >= 0
    for text in (payload.repository.slug, payload.queue, payload.vm_size, payload.uuid):
        assert isinstance(text, str) and len(text) <= 255
        text.encode()  # valid UTF-8: no lone surrogate left, as Go leaves none
    assert isinstance(payload.trace, bool) and isinstance(payload.warmer, bool)
    # Numbers stay in the ranges of Go's types, which readers of our messages use.
    for unsigned in (payload.meta.state_update_count, payload.source.id, payload.repository.id):
        assert 0 <= unsigned <= UINT64_MAX
    assert -(2**63) <= payload.vm_config.gpu_count < 2**63


@GARBAGE
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark: Go rejects it too
@example(b'{"job": {"id": 1}, "n": 1' + b"0" * 5000 + b"}")
def test_random_bytes_are_rejected_or_a_usable_job(body):
    parsed = parse(body)
    if parsed is not None:
        check_usable(parsed)


@GARBAGE
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists))
def test_bodies_that_are_not_objects_are_rejected(value):
    assert parse(json.dumps(value).encode()) is None


@GARBAGE
@given(mutated_payloads())
def test_mutated_payloads(mutated: MutatedPayload):
    parsed = parse(mutated.body)
    if parsed is None:
        # Only a body without a usable job id (or that is not JSON) may be rejected.
        assert not mutated.job_id_usable or mutated.too_deep, mutated.body[:300]
        return
    check_usable(parsed)
    problems = {problem.path for problem in parsed.problems}
    if mutated.must_run:
        assert problems == set(), parsed.problems
    # A needed field holding an object or array can never be used, and is named.
    assert mutated.wrong_typed <= problems, (mutated.wrong_typed, parsed.problems)
    # The config check that follows never fails otherwise than with PayloadError.
    with contextlib.suppress(PayloadError):
        StartAttributes.from_payload(parsed.payload, StartDefaults())


@pytest.mark.parametrize("path", NEEDED + DECORATIVE + FORWARDED)
@settings(GARBAGE, max_examples=25)
@given(data=st.data())
def test_one_odd_field_at_a_time(path, data):
    mutated = data.draw(mutated_payloads(job_id=7, path=path))
    parsed = parse(mutated.body)
    assert parsed is not None, mutated.body[:300]
    check_usable(parsed)
    problems = {problem.path for problem in parsed.problems}
    if path in NEEDED:
        assert mutated.wrong_typed <= problems, parsed.problems
    elif not mutated.too_deep:
        assert problems == set(), parsed.problems


@GARBAGE
@given(spliced(mutated_payloads().map(lambda mutated: mutated.body)))
def test_cut_and_spliced_payloads_are_rejected_or_a_usable_job(body):
    parsed = parse(body)
    if parsed is not None:
        check_usable(parsed)


@pytest.mark.parametrize("depth", [1, 100, 499, 500, 501, 990, 1000, 3000, 100_000])
def test_nesting_at_any_depth_is_a_usable_job_with_a_problem_or_rejected(depth):
    body = b'{"job": {"id": 3}, "env": ' + b"[" * depth + b"]" * depth + b"}"
    parsed = parse(body)
    if depth < MAX_PAYLOAD_DEPTH:  # the payload object itself is one level more
        assert parsed is not None and parsed.problems == ()
    elif parsed is not None:
        check_usable(parsed)
        assert [p.path for p in parsed.problems] == ["payload"]
