"""`python -m travis_worker` is the `travis-worker` command."""

import sys

from travis_worker.cli import main

sys.exit(main())
