"""Hiding credentials before a value is shown (`--echo-config`) or logged."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSPHRASE|ACCOUNT_JSON|ACCESS_KEY|AUTH|DSN)")
# The user name of these URLs is itself the credential (build API token, Sentry key).
_USERNAME_IS_SECRET = {"BUILD_API_URI", "SENTRY_DSN"}


def redact_url(value: str, *, username_is_secret: bool = False) -> str:
    """Hide the credentials of `scheme://user:password@host/...`."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or "@" not in parts.netloc:
        return value
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    userinfo = f"{user}:{REDACTED}" if has_password and not username_is_secret else REDACTED
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{hostport}"))


def url_location(value: str) -> str:
    """`scheme://host:port/path` of a URL, without credentials or query: what a log line may
    say about where the worker connects."""
    try:
        parts = urlsplit(value)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


def redact(name: str, value: str) -> str:
    """`value` of the setting or provider key `name` (upper case), fit to show."""
    if value and _SECRET_NAME.search(name):
        return REDACTED
    return redact_url(value, username_is_secret=name in _USERNAME_IS_SECRET)


def excerpt(data: bytes, *, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """What another system sent us (an error page, an answer body), fit to put in a log
    line or an error: decoded, every known secret replaced (a proxy or a debug page may
    echo our request, credentials included), and at most `limit` characters of it."""
    secrets = [secret for secret in secrets if secret]
    # Enough bytes for `limit` characters (UTF-8 takes at most 4 bytes each) plus a whole
    # secret that starts within them, so no shown character belongs to a cut-off secret.
    taken = 4 * (limit + max(map(len, secrets), default=0))
    text = data[:taken].decode(errors="replace")
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if len(text) > limit or len(data) > taken:
        return f"{text[:limit]}… ({len(data)} bytes)"
    return text
