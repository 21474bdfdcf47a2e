"""Where a job's bash script comes from: travis-build's script API, or a fixed script."""
