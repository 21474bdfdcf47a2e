"""Credentials hidden before a value is shown or logged."""

from __future__ import annotations

from travis_worker.util.redact import redact_url, url_location


def test_urls_lose_their_credentials_before_they_are_shown():
    assert redact_url("https://user:pw@host/hb") == "https://user:REDACTED@host/hb"
    assert redact_url("https://tok@host/x", username_is_secret=True) == "https://REDACTED@host/x"
    assert redact_url("https://host/x") == "https://host/x"


def test_a_url_location_names_where_and_nothing_secret():
    assert url_location("amqp://user:pw@rabbit.example.com:5672/travis?x=1") == (
        "amqp://rabbit.example.com:5672/travis"
    )
    assert url_location("https://TOKEN@build.example.com/script") == (
        "https://build.example.com/script"
    )
    assert url_location("amqps://u:p@[::1]:5671/") == "amqps://[::1]:5671/"
    assert url_location("amqp://host:notaport/") == ""
