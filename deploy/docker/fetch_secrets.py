#!/usr/bin/env python3
"""Read secrets from Secret Manager and print them as a docker `--env-file`.

Usage: travis-worker-fetch-secrets --project PROJECT NAME=SECRET [NAME=SECRET ...]

SECRET is a secret id (its `latest` version is read), `id@version`, or a full resource name
`projects/P/secrets/S/versions/V`. Output is one `NAME=value` line per pair on stdout, for
the systemd unit to redirect into a file on tmpfs; nothing else is written to stdout.

Credentials are Application Default Credentials: on a GCE host the instance's service
account from the metadata server. The terraform in deploy/ grants that account
`secretmanager.versions.access` on exactly the secrets it names, so the AMQP and build API
URIs never appear in instance metadata.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from collections.abc import Sequence

import google.auth
import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession

DEFAULT_ENDPOINT = "https://secretmanager.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# At boot the network or the metadata server may lag the unit by a few seconds; after
# ~1 minute of failures the unit fails and systemd's own restart policy takes over.
ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 1.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class FetchError(Exception):
    """A secret could not be read or cannot be written as an env-file line."""


def parse_pair(text: str, project: str) -> tuple[str, str]:
    """`NAME=SECRET` → (NAME, resource name of the secret version)."""
    name, separator, reference = text.partition("=")
    if not separator or not _NAME.match(name) or not reference:
        raise FetchError(f"expected NAME=SECRET, got {text!r}")
    if reference.startswith("projects/"):
        return name, reference
    secret, _, version = reference.partition("@")
    return name, f"projects/{project}/secrets/{secret}/versions/{version or 'latest'}"


def env_line(name: str, payload: bytes) -> str:
    """An env-file line. Docker takes the value literally up to the newline, so a value with
    a line break cannot be represented; one trailing newline (from `echo`) is dropped."""
    value = payload.decode("utf-8")
    value = value.removesuffix("\n").removesuffix("\r")
    if any(character in value for character in "\r\n\0"):
        raise FetchError(f"secret for {name} spans several lines; env files cannot hold it")
    return f"{name}={value}"


def access(session: requests.Session, endpoint: str, version: str) -> bytes:
    """The payload of one secret version, retrying transient failures."""
    url = f"{endpoint.rstrip('/')}/v1/{version}:access"
    delay = FIRST_BACKOFF_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = session.get(url, timeout=10)
        except (requests.RequestException, google.auth.exceptions.TransportError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                data = response.json()["payload"]["data"]
                return base64.b64decode(data)
            problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code not in _RETRYABLE_STATUS:
                raise FetchError(f"{version}: {problem}")
        if attempt == ATTEMPTS:
            raise FetchError(f"{version}: {problem} (gave up after {ATTEMPTS} attempts)")
        print(f"retrying {version} in {delay:.0f}s: {problem}", file=sys.stderr)
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="travis-worker-fetch-secrets", description=__doc__)
    parser.add_argument("--project", required=True, help="project that holds the secrets")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="Secret Manager API URL")
    parser.add_argument("pairs", nargs="+", metavar="NAME=SECRET")
    args = parser.parse_args(argv)
    try:
        pairs = [parse_pair(text, args.project) for text in args.pairs]
        credentials, _ = google.auth.default(scopes=[SCOPE])
        session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        lines = [env_line(name, access(session, args.endpoint, ref)) for name, ref in pairs]
    except (FetchError, google.auth.exceptions.GoogleAuthError) as exc:
        print(f"travis-worker-fetch-secrets: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
