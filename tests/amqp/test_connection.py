"""The broker TLS choice of travis-ci/worker: own CA certificates, else unverified when
insecure, else the URI decides."""

from __future__ import annotations

import ssl
from pathlib import Path

from travis_worker.amqp.connection import BrokerConfig, tls_context

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
