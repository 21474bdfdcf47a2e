"""travis-worker: the job execution engine of a self-hosted Travis CI."""

from __future__ import annotations

import os

__version__ = "0.1.0"
# Set at image build time (Dockerfile build args); `?` as in travis-ci/worker otherwise.
REVISION = os.environ.get("TRAVIS_WORKER_BUILD_REVISION", "?")
REVISION_URL = os.environ.get("TRAVIS_WORKER_BUILD_REVISION_URL", "?")
GENERATED = os.environ.get("TRAVIS_WORKER_BUILD_DATE", "?")
