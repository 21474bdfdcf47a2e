"""Job payloads decoded the way Go's encoding/json decodes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.support.worker import example_payload
from travis_worker.compat.gojson import rfc3339, rfc3339_nano
from travis_worker.errors import PayloadError
from travis_worker.job import StartAttributes, StartDefaults, parse_job_body


def test_the_fixture_payload_parses():
    parsed = parse_job_body(json.dumps(example_payload(721270)).encode())
    payload = parsed.payload
    assert payload.job.id == 721270
    assert payload.job.queued_at == datetime(2018, 5, 14, 14, 26, 50, tzinfo=UTC)
    assert payload.timeouts.hard_limit == 3000 and payload.timeouts.log_silence == 0
    assert payload.repository.slug == "igorwwwwwwwwwwwwwwwwwwww/hello-world"
    assert parsed.raw["cache_settings"]["type"] == "s3"


def test_keys_match_case_insensitively_and_an_exact_match_wins():
    body = {"JOB": {"ID": 7}, "Repository": {"Slug": "o/r"}, "job": {"id": 8}}
    payload = parse_job_body(json.dumps(body).encode()).payload
    assert payload.job.id == 8
    assert payload.repository.slug == "o/r"


def test_nulls_are_zero_values():
    body = {"job": {"id": 1, "queued_at": None}, "timeouts": {"hard_limit": None}, "uuid": None}
    payload = parse_job_body(json.dumps(body).encode()).payload
    assert payload.job.queued_at is None and payload.timeouts.hard_limit == 0 and payload.uuid == ""


@pytest.mark.parametrize(
    "body",
    [{"job": {"id": "7"}}, {"job": {"id": 7}, "trace": "yes"}, {"job": {"id": 7, "number": 4}}],
)
def test_wrong_types_are_errors(body):
    with pytest.raises(PayloadError):
        parse_job_body(json.dumps(body).encode())


def test_start_attributes_take_defaults_and_reject_non_strings():
    payload = parse_job_body(
        json.dumps({"job": {"id": 1}, "config": {"os": "osx"}}).encode()
    ).payload
    attrs = StartAttributes.from_payload(payload, StartDefaults())
    assert (attrs.os, attrs.language, attrs.dist, attrs.group, attrs.arch, attrs.vm_type) == (
        "osx", "default", "xenial", "stable", "amd64", "default"
    )  # fmt: skip
    bad = parse_job_body(json.dumps({"job": {"id": 1}, "config": {"dist": 3}}).encode()).payload
    with pytest.raises(PayloadError, match="dist"):
        StartAttributes.from_payload(bad, StartDefaults())


def test_times_are_written_as_go_writes_them():
    moment = datetime(2017, 1, 12, 15, 0, 0, 120000, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2017-01-12T13:00:00Z"
    assert rfc3339_nano(moment) == "2017-01-12T15:00:00.12+02:00"
    assert rfc3339_nano(moment.astimezone(UTC)) == "2017-01-12T13:00:00.12Z"
    assert int(datetime(2017, 1, 12, 15, 0, 0, tzinfo=UTC).timestamp()) == 1484233200
