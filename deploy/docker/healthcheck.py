#!/usr/bin/env python3
"""Container health check: exit 0 when the control endpoint answers GET /healthz with 200.

Usage: travis-worker-healthcheck [HOST:PORT]

Without an argument the address comes from the settings the worker itself reads:
TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR (or REMOTE_CONTROLLER_ADDR), else the legacy
TRAVIS_WORKER_PPROF_PORT (or PPROF_PORT) on 127.0.0.1. A wildcard listen address
(0.0.0.0, ::, empty host) is probed on loopback. Only the standard library is used, so the
check costs one short-lived interpreter and no imports of the worker.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# Docker kills the check after --timeout (5 s in the Dockerfile); answer before that.
TIMEOUT_SECONDS = 4.0
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def _setting(name: str) -> str:
    """Go-style precedence: TRAVIS_WORKER_<NAME> first, then the plain <NAME>."""
    return os.environ.get(f"TRAVIS_WORKER_{name}") or os.environ.get(name) or ""


def probe_address(argv: list[str]) -> str:
    """The `host:port` to probe, or raise SystemExit when none is configured."""
    if argv:
        address = argv[0]
    elif _setting("REMOTE_CONTROLLER_ADDR"):
        address = _setting("REMOTE_CONTROLLER_ADDR")
    elif _setting("PPROF_PORT"):
        address = f"127.0.0.1:{_setting('PPROF_PORT')}"
    else:
        raise SystemExit("no control endpoint: set TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR")
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise SystemExit(f"cannot probe {address!r}: expected HOST:PORT")
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    return f"{host}:{port}"


def main(argv: list[str]) -> int:
    url = f"http://{probe_address(argv)}/healthz"
    # No proxies: a loopback probe must never be sent to an HTTP(S)_PROXY from the env file.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
