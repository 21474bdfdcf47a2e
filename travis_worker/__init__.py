"""travis-worker: the job execution engine of a self-hosted Travis CI.

The version, revision and build date: `travis_worker.buildinfo.build_info()`.
"""
