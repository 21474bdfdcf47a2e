"""Credentials hidden before a value is shown or logged."""

from __future__ import annotations

from travis_worker.util.redact import excerpt, redact_url, url_location


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


def test_an_excerpt_is_short_and_holds_no_secret():
    assert excerpt(b"token tok-123 denied", secrets=["tok-123", ""]) == "token REDACTED denied"
    long = excerpt(b"x" * 10_000, limit=20)
    assert long == "x" * 20 + "… (10000 bytes)"
    assert excerpt(b"caf\xc3\xa9 \xff") == "café \ufffd"
    # A secret across the cut is replaced whole, not shown in part.
    secret = "tok-123456789"
    for start in range(185, 201):
        data = "😀".encode() * start + secret.encode() + b"y" * 1000
        shown = excerpt(data, secrets=[secret], limit=200).split("…")[0]
        assert len(shown) == 200
        assert not any(shown.endswith(secret[:n]) for n in range(1, len(secret) + 1)), start
