"""The build API client against the HTTP fake: the contract of travis-build's /script."""

from __future__ import annotations

import socket
import time
from collections import deque
from datetime import timedelta

import pytest

from tests.fakes.build_api import Answer
from tests.support.garbage import answer_sequences, build_outcome, examples
from travis_worker.buildscript.api import BuildApiClient, BuildApiConfig, request_url, split_token
from travis_worker.errors import BuildScriptError
from travis_worker.util.backoff import Backoff

FAST = Backoff(initial=0.01, max_interval=0.05)


def test_token_comes_from_the_user_name_and_is_stripped():
    assert split_token("https://x:KEY@build.example.com:8443/script?a=1") == (
        "https://build.example.com:8443/script?a=1",
        "x",
    )
    assert split_token("http://127.0.0.1/script") == ("http://127.0.0.1/script", "")


def test_query_gets_job_id_and_source_sorted():
    assert (
        request_url("http://h/script?z=1&a=2", 7)
        == "http://h/script?a=2&job_id=7&source=worker&z=1"
    )


async def test_posts_payload_with_worker_settings(build_api):
    client = BuildApiClient(
        BuildApiConfig(
            uri=build_api.url,
            apt_cache="http://apt.cache",
            paranoid=True,
            fix_etc_hosts=True,
            cache_type="s3",
            cache_fetch_timeout=timedelta(minutes=20),
            cache_s3_bucket="bucket",
        )
    )
    try:
        script = await client.generate({"job": {"id": 3}, "hosts": {"x": "y"}}, 3)
    finally:
        await client.close()
    assert script == build_api.default_script
    request = build_api.requests[0]
    assert request.headers["User-Agent"].startswith("worker-go v=")
    assert request.headers["Content-Type"] == "application/json"
    assert request.body["hosts"] == {"x": "y", "apt_cache": "http://apt.cache"}
    assert request.body["paranoid"] is True
    assert request.body["fix_etc_hosts"] is True
    assert request.body["fix_resolv_conf"] is False
    assert request.body["cache_options"] == {
        "type": "s3",
        "fetch_timeout": 1200,
        "push_timeout": 300,
        "s3": {
            "scheme": "",
            "region": "",
            "bucket": "bucket",
            "access_key_id": "",
            "secret_access_key": "",
        },
    }


async def test_wrong_token_is_a_client_error_without_retry(build_api):
    url = build_api.url.replace("the-token", "wrong")
    client = BuildApiClient(BuildApiConfig(uri=url), FAST)
    with pytest.raises(BuildScriptError, match="client error") as raised:
        await client.generate({"job": {"id": 1}}, 1)
    await client.close()
    assert not raised.value.recoverable


async def test_server_errors_give_up_after_the_retry_window(build_api):
    build_api.failures.extend([(502, "bad gateway")] * 100)
    config = BuildApiConfig(uri=build_api.url, retry_for=timedelta(seconds=0.5))
    client = BuildApiClient(config, FAST)
    with pytest.raises(BuildScriptError, match="server error"):
        await client.generate({"job": {"id": 1}}, 1)
    await client.close()
    assert len(build_api.requests) > 2


async def test_connection_refused_is_retried_then_fails():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = BuildApiConfig(
        uri=f"http://t@127.0.0.1:{port}/script", retry_for=timedelta(seconds=0.3)
    )
    client = BuildApiClient(config, FAST)
    with pytest.raises(BuildScriptError, match="build API request failed"):
        await client.generate({}, 1)
    await client.close()


# -- garbage answers ------------------------------------------------------------------------

GOOD = Answer()
# A second per request: a slow answer here is well past it, a good one (even on a busy
# machine) well within it.
LIMITS = {"request_timeout": timedelta(seconds=1), "max_script_bytes": 1024 * 1024}


def limited_client(build_api, retry_for: float = 5.0) -> BuildApiClient:
    config = BuildApiConfig(uri=build_api.url, retry_for=timedelta(seconds=retry_for), **LIMITS)
    return BuildApiClient(config, FAST)


async def generate(build_api, job_id: int, *answers: Answer, retry_for: float = 5.0) -> bytes:
    build_api.answers[job_id] = deque(answers)
    client = limited_client(build_api, retry_for)
    try:
        return await client.generate({"job": {"id": job_id}}, job_id)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "answer",
    [
        Answer(body=b"#" * (3 * 1024 * 1024)),
        Answer(body=b"\0" * (64 * 1024 * 1024), gzip=True),  # 64 MiB in a few hundred KiB
    ],
    ids=["huge", "gzip-bomb"],
)
async def test_an_answer_over_the_size_limit_fails_at_once_unread(build_api, answer):
    started = time.monotonic()
    with pytest.raises(BuildScriptError, match="exceeds 1048576 bytes") as raised:
        await generate(build_api, 1, answer, GOOD)
    assert not raised.value.recoverable and len(build_api.requests) == 1
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "garbage",
    [
        Answer(body=b"x" * 300_000, chunk_delay=1.3),  # slower than the request time limit
        Answer(body=b"#!/bin/bash\n" * 1000, cut_after=5000),  # connection reset mid-body
        Answer(body=b"<html>Bad Gateway</html>", content_type="text/html"),
        Answer(body=b'{"error": "busy"}', content_type="application/json"),
        Answer(body=b""),
        Answer(status=503, body=b"busy"),
    ],
    ids=["slow", "reset", "html", "json", "empty", "503"],
)
async def test_an_answer_that_may_do_better_next_time_is_retried(build_api, garbage):
    assert await generate(build_api, 1, garbage, GOOD) == GOOD.body
    assert len(build_api.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=400, body=b"bad payload " * 100_000, chunk_delay=1.3),
        Answer(status=422, body=b"bad payload " * 1000, cut_after=100),
    ],
    ids=["slow", "reset"],
)
async def test_a_client_error_fails_at_once_whatever_its_body_does(build_api, answer):
    with pytest.raises(BuildScriptError, match="client error") as raised:
        await generate(build_api, 1, answer, GOOD)
    assert not raised.value.recoverable and len(build_api.requests) == 1


async def test_a_hung_build_api_fails_within_the_retry_window(build_api):
    slow = Answer(body=b"x" * 300_000, chunk_delay=1.3)
    started = time.monotonic()
    with pytest.raises(BuildScriptError, match="did not answer within 1s"):
        await generate(build_api, 1, *[slow] * 100, retry_for=2.0)
    assert time.monotonic() - started < 5


async def test_what_is_said_of_an_answer_is_short_and_never_holds_the_token(build_api):
    echoing = [
        Answer(status=502, body=b"upstream said: " + b"x" * 100_000, echo_request=True),
        Answer(status=403, body=b"denied", echo_request=True),
    ]
    with pytest.raises(BuildScriptError) as raised:
        await generate(build_api, 1, *echoing)
    assert "the-token" not in str(raised.value) and "REDACTED" in str(raised.value)
    assert len(str(raised.value)) < 300


@pytest.mark.timeout(120)
async def test_any_answers_end_in_a_script_or_a_build_script_error(build_api):
    for job_id, answers in enumerate(examples(answer_sequences(), 25), start=1):
        build_api.answers[job_id] = deque(answers)
        client = limited_client(build_api)
        try:
            outcome = await client.generate({"job": {"id": job_id}}, job_id)
        except BuildScriptError as exc:
            assert "the-token" not in str(exc) and len(str(exc)) < 300
            outcome = "errored"
        finally:
            await client.close()
        want = build_outcome(answers, LIMITS["max_script_bytes"])
        if want == "script":
            given = [a.body for a in answers if a.status < 400 and a.body]
            assert outcome in [*given, build_api.default_script], answers
        else:
            assert outcome == "errored", answers
