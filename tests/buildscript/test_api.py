"""The build API client against the HTTP fake: the contract of travis-build's /script."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

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
