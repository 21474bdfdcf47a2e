"""`travis-worker doctor`: what a host gets wrong on day one, checked with the worker's own
settings, one line per check and a verdict.

    ok    broker amqp://guest:REDACTED@rabbitmq:5672/ answers; queue builds.gce declared, …
    FAIL  build API https://build.example.com/script answers 403 for the configured token: …
    skip  gce network: not checked (the project check failed)
    verdict: NOT ready: 1 of 11 checks failed

The checks live beside the rooms they exercise (sources/amqp/doctor.py,
buildscript/doctor.py, backends/google/doctor.py); this module picks them from the settings,
runs each under its own time limit, in order (later GCE checks build on earlier ones), and
prints. Exit status: 0 when nothing failed (skips and "cannot tell" warnings allowed), 1
otherwise; invalid settings stop `main` earlier with status 2.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import TextIO

from travis_worker.app.parts import amqp_setup, build_api_config, provider_keys
from travis_worker.buildscript.doctor import build_api_check
from travis_worker.config import Settings
from travis_worker.errors import ConfigError
from travis_worker.sources.amqp.doctor import broker_checks
from travis_worker.util.checks import Check, Finding, Status, fail, run_check, settled, skip

DEFAULT_CHECK_SECONDS = 10.0


async def run_doctor(
    settings: Settings,
    environ: Mapping[str, str],
    out: TextIO,
    *,
    seconds: float = DEFAULT_CHECK_SECONDS,
) -> int:
    """Run every check that applies, print a line per finding as it comes, then the
    verdict; returns the exit status."""
    findings: list[Finding] = []
    async with AsyncExitStack() as stack:
        checks = [
            *_broker_checks(settings),
            _build_api_check(settings),
            *_provider_checks(settings, environ, stack, seconds),
        ]
        for check in checks:
            for finding in await run_check(check, seconds):
                print(finding.line(), file=out, flush=True)
                findings.append(finding)
    print(verdict(findings), file=out, flush=True)
    return 1 if any(finding.status is Status.FAIL for finding in findings) else 0


def verdict(findings: list[Finding]) -> str:
    counts = Counter(finding.status for finding in findings)
    if counts[Status.FAIL]:
        return f"verdict: NOT ready: {counts[Status.FAIL]} of {len(findings)} checks failed"
    others = [
        f"{counts[status]} {word}"
        for status, word in ((Status.WARN, "could not tell"), (Status.SKIP, "skipped"))
        if counts[status]
    ]
    more = f" ({', '.join(others)})" if others else ""
    return f"verdict: ready: {counts[Status.OK]} checks passed{more}"


def _broker_checks(settings: Settings) -> list[Check]:
    if "amqp" not in settings.queue_types:
        reason = f"broker: queue-type {settings.queue_type} takes no jobs from a broker"
        return [settled("broker", skip(reason))]
    try:
        return broker_checks(amqp_setup(settings))
    except ConfigError as exc:
        return [settled("broker", fail(f"broker: {exc}"))]


def _build_api_check(settings: Settings) -> Check:
    try:
        return build_api_check(build_api_config(settings))
    except ConfigError as exc:
        return settled("build API", fail(f"build API: {exc}"))


def _provider_checks(
    settings: Settings, environ: Mapping[str, str], stack: AsyncExitStack, seconds: float
) -> list[Check]:
    name = settings.provider_name
    if name != "gce":
        reason = f"cloud: provider {name} has no cloud to check (the cloud checks are for gce)"
        return [settled("cloud", skip(reason))]
    # Imported only for gce, as the backend registry does: no cloud SDK for other providers.
    from travis_worker.backends.google.config import parse_gce_config
    from travis_worker.backends.google.doctor import GceDoctor

    try:
        config = parse_gce_config(provider_keys(settings, environ))
    except ConfigError as exc:
        return [settled("gce settings", fail(f"gce settings: {exc}"))]
    doctor = GceDoctor(config, seconds=seconds)
    stack.push_async_callback(doctor.close)
    return doctor.checks()
