"""Where the endpoint listens, which services the settings turn on, and the real command:
`travis-worker` in its own process, steered over HTTP and stopped by a signal."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest

from tests.support.worker import worker_process, worker_settings
from travis_worker.app import WorkerApp
from travis_worker.config import load_settings
from travis_worker.errors import ConfigError
from travis_worker.remote import ControlServer, listen_addresses, parse_listen_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (":6060", ("127.0.0.1", 6060)),
        ("6060", ("127.0.0.1", 6060)),
        ("0.0.0.0:6060", ("0.0.0.0", 6060)),
        ("10.1.2.3:80", ("10.1.2.3", 80)),
        ("[::1]:6060", ("::1", 6060)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses_default_to_loopback(text, address):
    assert parse_listen_address(text) == address


@pytest.mark.parametrize("text", ["", "host:", "host:http", ":70000", "a:b:c"])
def test_bad_listen_addresses_are_config_errors(text):
    with pytest.raises(ConfigError, match="invalid listen address"):
        parse_listen_address(text)


def test_remote_controller_and_pprof_port_both_listen():
    assert listen_addresses("", "") == []
    assert listen_addresses("", "6061") == [("127.0.0.1", 6061)]
    assert listen_addresses(":6060", "6061") == [("127.0.0.1", 6060), ("127.0.0.1", 6061)]
    assert listen_addresses("127.0.0.1:6060", "6060") == [("127.0.0.1", 6060)]


def test_services_follow_the_settings():
    bare = WorkerApp(load_settings({}, {}), environ={}, tracing=False)
    services = bare.services
    assert services.control is None and services.heartbeat is None
    assert len(services.runners(bare)) == 1  # the loop-lag monitor, always

    settings = load_settings(
        {
            "pprof_port": "0",
            "remote_controller_auth": "a:b",
            "heartbeat_url": "http://127.0.0.1:1/heartbeat",
            "heartbeat_url_auth_token": " tok ",
            "log_metrics": "true",
        },
        {},
    )
    app = WorkerApp(settings, environ={}, tracing=False)
    services = app.services
    assert services.control is not None and services.control.addresses == [("127.0.0.1", 0)]
    assert services.heartbeat is not None and services.heartbeat.token == "tok"
    assert len(services.runners(app)) == 4  # loop lag, control, heartbeat, log-metrics


async def test_the_command_serves_the_endpoint_and_stops_on_sigint(
    amqp_vhost_uri, build_api, queue_name
):
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="fake")
    async with worker_process({**settings, "hostname": "cli-test"}) as worker:
        status, body = await worker.get("/worker")
        assert status == 200 and json.loads(body)["processors"][0]["id"].endswith(".cli-test")
        status, body = await worker.get("/metrics")
        assert status == 200 and b"travis_worker_event_loop_lag_seconds" in body
        assert await worker.stop() == 0
    port = worker.url.rsplit(":", 1)[1]
    assert f'msg="listening at 127.0.0.1:{port}"' in worker.log
    assert 'msg="SIGINT received, starting graceful shutdown"' in worker.log


async def test_a_port_in_use_is_logged_and_the_worker_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = WorkerApp(load_settings({}, {}), environ={})
        server = ControlServer(app, addresses=[taken.getsockname()], auth="a:b")
        with caplog.at_level(logging.ERROR, logger="travis_worker.remote.server"):
            await asyncio.wait_for(server.serve(), 5)
    assert "couldn't start the control endpoint" in caplog.text
    assert not server.started.is_set()
