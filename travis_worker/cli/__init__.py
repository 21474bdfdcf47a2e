"""The `travis-worker` command line: argv → Settings → one of the commands."""

from travis_worker.cli.main import main

__all__ = ["main"]
