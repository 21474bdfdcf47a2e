"""The composition root: one worker process, built from Settings and wired in one place."""

from travis_worker.app.worker import WorkerApp

__all__ = ["WorkerApp"]
