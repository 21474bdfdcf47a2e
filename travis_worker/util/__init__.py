"""Small helpers shared by several rooms: retry with backoff, hiding credentials, running a
helper program with a time limit, process-wide settings (open files, the garbage
collector). Nothing here knows about jobs."""
