"""The broker TLS choice of travis-ci/worker: own CA certificates, else unverified when
insecure, else the URI decides. What a connection tells the log and the metrics."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import rabbit
from travis_worker import metrics
from travis_worker.errors import BrokerError
from travis_worker.sources.amqp.connection import BrokerConfig, connect, dial_url, tls_context

SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def first_certificate() -> str:
    text = SYSTEM_CAS.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return text[text.index("-----BEGIN CERTIFICATE-----") : end] + "\n"


def test_plain_connection_has_no_tls_context():
    assert tls_context(BrokerConfig("amqp://")) is None


def test_insecure_skips_verification():
    context = tls_context(BrokerConfig("amqps://broker", insecure=True))
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_own_ca_certificates_from_text_and_file(tmp_path):
    pem = first_certificate()
    (tmp_path / "ca.pem").write_text(pem)
    context = tls_context(
        BrokerConfig("amqp://", tls_cert=pem, tls_cert_path=str(tmp_path / "ca.pem"))
    )
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1


def test_own_certificates_dial_tls_even_for_an_amqp_uri():
    context = ssl.create_default_context()
    assert dial_url("amqp://u:p@rabbit/vh", context) == "amqps://u:p@rabbit:5672/vh"
    assert dial_url("amqp://rabbit:5673", context) == "amqps://rabbit:5673"
    assert dial_url("amqp://", context) == "amqps://localhost:5672"
    assert dial_url("amqps://rabbit", context) == "amqps://rabbit"
    assert dial_url("amqp://rabbit", None) == "amqp://rabbit"


async def test_a_broker_that_never_answers_is_one_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = BrokerConfig(f"amqp://guest:secret@127.0.0.1:{port}/", timedelta(seconds=10))
    with pytest.raises(BrokerError, match=r"couldn't connect to the jobs broker") as raised:
        await connect(config, attempts=2)
    assert "secret" not in str(raised.value)


async def test_connects_and_reconnects_are_logged_and_counted(amqp_vhost_uri, caplog):
    reconnects = metrics.AMQP_RECONNECTS.labels(connection="logs")
    before = reconnects._value.get()
    vhost = amqp_vhost_uri.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="travis_worker.sources.amqp.connection"):
        connection = await connect(BrokerConfig(amqp_vhost_uri), name="logs")
        try:
            await asyncio.to_thread(
                rabbit.rabbitmqctl, "close_all_connections", "-p", vhost, "broker maintenance"
            )
            for _ in range(400):
                if reconnects._value.get() > before:
                    break
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
    assert reconnects._value.get() == before + 1
    said = {record.getMessage(): getattr(record, "fields", {}) for record in caplog.records}
    assert said["connected to AMQP"] == {
        "connection": "logs",
        "broker": amqp_vhost_uri.replace("guest:guest@", ""),
    }
    assert "broker maintenance" in said["lost the AMQP connection, reconnecting"]["err"]
    assert said["reconnected to AMQP"]["after_seconds"] >= 0
    # The loss is told once, and our own close at the end is no loss.
    lost = [r for r in caplog.records if r.getMessage().startswith("lost the AMQP connection")]
    assert len(lost) == 1
