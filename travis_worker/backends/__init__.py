"""Backend registry: alias → implementation, with the help text `--help` prints.

Implementations are import strings, so a cloud SDK is imported only when its backend is
chosen. A new backend is one file plus one `BackendSpec` line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from travis_worker.backends.base import Provider, ProviderContext
from travis_worker.backends.google.config import HELP as GCE_HELP
from travis_worker.errors import ConfigError


@dataclass(frozen=True)
class BackendSpec:
    alias: str
    human_name: str
    target: str
    """`module:factory`, where factory(ProviderContext) -> Provider."""
    help: dict[str, str] = field(default_factory=dict)


BACKENDS: dict[str, BackendSpec] = {
    spec.alias: spec
    for spec in (
        BackendSpec(
            "fake",
            "Fake",
            "travis_worker.backends.fake:create_provider",
            {
                "LOG_OUTPUT": "faked log output to write",
                "RUN_SLEEP": "faked runtime sleep duration (default 0s)",
                "ERROR": "error out all jobs (useful for testing requeue storms)",
                "STARTUP_DURATION": "faked instance startup duration (default 0s)",
                "EXIT_CODE": "exit code every job reports (default 0)",
            },
        ),
        BackendSpec(
            "local",
            "Local",
            "travis_worker.backends.local:create_provider",
            {"SCRIPTS_DIR": "directory for per-job work dirs (default: a temp dir)"},
        ),
        BackendSpec(
            "gce",
            "Google Compute Engine",
            "travis_worker.backends.gce:create_provider",
            GCE_HELP,
        ),
    )
}


def lookup(alias: str) -> BackendSpec:
    try:
        return BACKENDS[alias]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown provider {alias!r} (known: {known})") from None


def create_provider(alias: str, context: ProviderContext) -> Provider:
    """Import the backend `alias` and build its provider, or raise ConfigError."""
    module_name, _, attribute = lookup(alias).target.partition(":")
    factory: Callable[[ProviderContext], Provider] = getattr(
        importlib.import_module(module_name), attribute
    )
    return factory(context)
