"""Small helpers shared by several rooms: retry with backoff, hiding credentials, running a
helper program with a time limit, raising the process's limits. Nothing here knows about
jobs."""
