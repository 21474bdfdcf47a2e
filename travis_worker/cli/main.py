"""Command line: argv → Settings → one of the commands.

    travis-worker [flags]                      run the worker (the default command)
    travis-worker run-job PAYLOAD [--script F] run one job on this terminal
    travis-worker cleanup [flags]              delete orphaned job VMs
    travis-worker doctor [flags]               check the settings against the real services
    travis-worker --echo-config | --list-backend-providers | --version | --help

Every setting is a flag (`--pool-size 42`), accepted before or after the command, and
beats the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

from travis_worker.backends import BACKENDS
from travis_worker.buildinfo import build_info
from travis_worker.compat.durations import parse_go_duration
from travis_worker.config import ENV_PREFIX, Settings, env_origin, flag_name, load_settings
from travis_worker.errors import ConfigError, WorkerError
from travis_worker.logs import setup_logging
from travis_worker.util.process import raise_open_files_limit

PROG = "travis-worker"


def version_line() -> str:
    build = build_info()
    python = platform.python_version()
    return f"{PROG} v={build.version} rev={build.revision} d={build.generated} py={python}"


def provider_help() -> str:
    lines = [
        "provider configuration is read from environment variables named",
        f"  $[{ENV_PREFIX}]{{UPCASE_PROVIDER_NAME}}_{{UPCASE_UNDERSCORED_KEY}}",
        "",
    ]
    for alias in sorted(BACKENDS):
        spec = BACKENDS[alias]
        lines.append(f"{spec.human_name} provider help:")
        width = max((len(key) for key in spec.help), default=0)
        lines += [f"  {key.rjust(width)} - {text}" for key, text in sorted(spec.help.items())]
        lines.append("")
    return "\n".join(lines)


def _settings_flags() -> argparse.ArgumentParser:
    """A parent parser holding one flag per setting; absent flags leave no attribute, so
    the environment and defaults stay in charge of them."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (also TRAVIS_WORKER_<NAME> or <NAME> env)")
    for name, field in Settings.model_fields.items():
        options: dict[str, Any] = {
            "dest": f"setting_{name}",
            "default": argparse.SUPPRESS,
            "help": field.description,
            "metavar": "VALUE",
        }
        if field.annotation is bool:
            options.update(nargs="?", const="true", metavar="BOOL")
        group.add_argument(f"--{flag_name(name)}", **options)
    return parser


def build_parser() -> argparse.ArgumentParser:
    settings_flags = _settings_flags()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Runs Travis CI jobs: one fresh VM per job, logs and states over AMQP.",
        parents=[settings_flags],
        epilog=provider_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    parser.add_argument("--echo-config", action="store_true", help="print the config and exit")
    parser.add_argument(
        "--list-backend-providers", action="store_true", help="list backends and exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", parents=[settings_flags], help="run the worker (default)")
    run_job = commands.add_parser(
        "run-job", parents=[settings_flags], help="run one job payload on this terminal"
    )
    run_job.add_argument("payload", help="job payload JSON file")
    run_job.add_argument("--script", help="build script to run instead of asking the build API")
    doctor = commands.add_parser(
        "doctor",
        parents=[settings_flags],
        help="check broker, build API and cloud with these settings; exit 0 when all pass",
    )
    doctor.add_argument(
        "--check-timeout",
        default="10s",
        metavar="DURATION",
        help="time limit of each check (default 10s)",
    )
    # Listed for --help only: main() hands `cleanup …` to the reaper's own parser.
    commands.add_parser("cleanup", help="delete orphaned job VMs (see cleanup --help)")
    return parser


def cli_values(args: argparse.Namespace) -> dict[str, str]:
    prefix = "setting_"
    return {
        key[len(prefix) :]: value for key, value in vars(args).items() if key.startswith(prefix)
    }


def _check_seconds(text: str) -> float:
    try:
        seconds = parse_go_duration(text).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for --check-timeout: {exc}") from exc
    if seconds <= 0:
        raise ConfigError(f"invalid value {text!r} for --check-timeout: must be greater than 0")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["cleanup"]:
        from travis_worker.cleanup import cleanup_main

        return cleanup_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    if args.version:
        print(version_line())
        return 0
    if args.list_backend_providers:
        print("\n".join(sorted(BACKENDS)))
        return 0
    values = cli_values(args)
    if args.command == "run-job" and "provider_name" not in values:
        field = Settings.model_fields["provider_name"]
        if env_origin("provider_name", field, os.environ) is None:
            values["provider_name"] = "local"  # the embedded default: no cloud needed
    try:
        settings = load_settings(values, os.environ)
        if args.echo_config:
            from travis_worker.cli.echo import echo_config
            from travis_worker.config import provider_config

            print(echo_config(settings, provider_config(settings.provider_name)), end="")
            return 0
        setup_logging(debug=settings.debug, json_format=settings.log_format == "json")
        raise_open_files_limit()  # hundreds of running jobs hold thousands of descriptors
        if args.command == "run-job":
            from travis_worker.cli.run_job import read_input, run_job_file

            payload = read_input(args.payload, "payload")
            script = read_input(args.script, "script") if args.script else None
            return asyncio.run(run_job_file(settings, payload, script))
        if args.command == "doctor":
            from travis_worker.cli.doctor import run_doctor

            seconds = _check_seconds(args.check_timeout)
            return asyncio.run(run_doctor(settings, os.environ, sys.stdout, seconds=seconds))
        from travis_worker.app import WorkerApp

        app = WorkerApp(settings, hard_deadline=True)
        status = asyncio.run(app.run())
        if app.stopped_immediately:
            # Threads may still wait on a slow cloud API for answers nobody needs now; the
            # shutdown deadline is kept rather than the interpreter's wait for them.
            logging.shutdown()
            os._exit(status)
        return status
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except WorkerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
