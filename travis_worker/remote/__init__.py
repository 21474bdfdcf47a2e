"""The control and debug HTTP endpoint: travis-ci/worker's remote controller routes,
Prometheus `/metrics`, and Python profiling under `/debug/`."""

from __future__ import annotations

from travis_worker.remote.server import ControlServer, listen_addresses, parse_listen_address

__all__ = ["ControlServer", "listen_addresses", "parse_listen_address"]
