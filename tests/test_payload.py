"""Job payloads decoded the way Go's encoding/json decodes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.support.worker import example_payload
from travis_worker.compat import gojson
from travis_worker.compat.gojson import rfc3339, rfc3339_nano
from travis_worker.errors import PayloadError
from travis_worker.job import MAX_PAYLOAD_DEPTH, StartAttributes, StartDefaults, parse_job_body


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
    [
        b"{not json",
        b"[1]",
        b"NaN",
        b'{"type": "test"}',
        b'{"job": null}',
        b'{"job": "7"}',
        b'{"job": {"id": "7"}}',  # Go's uint64 takes no string, so no numeric string either
        b'{"job": {"id": 7.0}}',
        b'{"job": {"id": 7e0}}',
        b'{"job": {"id": true}}',
        b'{"job": {"id": 0}}',
        b'{"job": {"id": -7}}',
        b'{"job": {"id": 18446744073709551616}}',
        b'{"job": {"id": 7}, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_only_a_body_without_a_usable_job_id_is_an_error(body):
    with pytest.raises(PayloadError):
        parse_job_body(body)


def test_the_largest_go_job_id_is_usable():
    parsed = parse_job_body(b'{"job": {"id": 18446744073709551615}}')
    assert parsed.payload.job.id == 2**64 - 1 and parsed.problems == ()


def test_wrong_values_that_only_decorate_the_job_are_ignored():
    body = {
        "job": {"id": 7, "number": 4, "queued_at": "yesterday"},
        "repository": {"id": -1, "slug": "x" * 100_000},
        "source": "a string",
        "uuid": 5,
        "meta": {"state_update_count": -2},
        "queue": ["builds"],
        "trace": "yes",
        "type": None,
    }
    parsed = parse_job_body(json.dumps(body).encode())
    payload = parsed.payload
    assert parsed.problems == ()
    assert (payload.job.id, payload.job.number, payload.job.queued_at) == (7, "", None)
    assert (payload.repository.slug, payload.uuid, payload.queue, payload.trace) == (
        "",
        "",
        "",
        False,
    )
    assert payload.meta.state_update_count == 0
    assert [p.path for p in parsed.ignored] == [
        "job.number", "job.queued_at", "source", "repository.id", "repository.slug", "uuid",
        "meta.state_update_count", "queue", "trace",
    ]  # fmt: skip
    # What is echoed of a huge value stays short.
    [slug] = [str(p) for p in parsed.ignored if p.path == "repository.slug"]
    assert slug.endswith('(got "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" (100000 characters))')


def test_wrong_values_the_run_needs_are_problems_naming_the_field():
    body = {
        "job": {"id": 7},
        "timeouts": {"hard_limit": -5, "log_silence": 1.5},
        "vm_size": {"name": "big"},
        "vm_config": {"gpu_count": 2**70, "zone": "z" * 300},
    }
    parsed = parse_job_body(json.dumps(body).encode())
    assert parsed.ignored == ()
    zone = '"' + "z" * 40 + '…" (300 characters)'
    assert [str(p) for p in parsed.problems] == [
        "timeouts.hard_limit must be at least 0 (got -5)",
        "timeouts.log_silence must be a whole number (got 1.5)",
        "vm_size must be a string (got an object)",
        "vm_config.gpu_count must be at most 9223372036854775807 (got 1180591620717411303424)",
        f"vm_config.zone must be at most 255 characters long (got {zone})",
    ]
    timeouts_not_an_object = parse_job_body(b'{"job": {"id": 7}, "timeouts": 3000}')
    assert [str(p) for p in timeouts_not_an_object.problems] == [
        "timeouts must be an object (got 3000)"
    ]


def test_a_payload_that_cannot_be_forwarded_whole_is_a_problem():
    deep = b'{"job": {"id": 7}, "env": ' + b"[" * 600 + b"]" * 600 + b"}"
    assert [str(p) for p in parse_job_body(deep).problems] == [
        f"payload nested more than {MAX_PAYLOAD_DEPTH} levels deep"
    ]
    for number in (b"1e400", b"9" * 5000):
        body = b'{"job": {"id": 7}, "cache": {"size": ' + number + b"}}"
        assert [str(p) for p in parse_job_body(body).problems] == [
            "payload holds a number out of range"
        ]


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters_as_in_go():
    body = b'{"job": {"id": 7}, "repository": {"slug": "o/r\xff\\ud800"}, "env": "\\udc00"}'
    parsed = parse_job_body(body)
    assert parsed.payload.repository.slug == "o/r\ufffd\ufffd"
    assert parsed.raw["env"] == "\ufffd"
    forwarded = '{"job":{"id":7},"repository":{"slug":"o/r\ufffd\ufffd"},"env":"\ufffd"}'
    assert gojson.dumps(parsed.raw) == forwarded.encode()
    # A whole pair is one character.
    assert parse_job_body(b'{"job": {"id": 7}, "queue": "\\ud83d\\ude00"}').payload.queue == "😀"


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
