"""What makes this worker a drop-in for travis-ci/worker: Go's JSON encoding, Go durations,
and the user-facing texts, byte for byte. Nothing here imports the rest of the package."""
