"""Credentials hidden before a value is shown or logged."""

from __future__ import annotations

from travis_worker.util.redact import redact_url


def test_urls_lose_their_credentials_before_they_are_shown():
    assert redact_url("https://user:pw@host/hb") == "https://user:REDACTED@host/hb"
    assert redact_url("https://tok@host/x", username_is_secret=True) == "https://REDACTED@host/x"
    assert redact_url("https://host/x") == "https://host/x"
