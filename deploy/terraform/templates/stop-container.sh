#!/bin/sh
# ExecStop of travis-worker.service: stop the worker container without losing jobs.
#
# Usage: stop-container.sh NAME DRAIN_SECONDS SHUTDOWN_DRAIN_SECONDS
#
# 1. SIGINT: the worker drains (running jobs finish, no new ones start) and exits 0.
# 2. If that takes longer than the budget, SIGTERM: the worker stops at once and its running
#    jobs are requeued (reset), so another host runs them again; it exits within its
#    shutdown timeout (TRAVIS_WORKER_SHUTDOWN_TIMEOUT, 30 s).
# 3. If even that hangs, SIGKILL.
#
# The budget is DRAIN_SECONDS for a stop asked for on a running host (`make roll`,
# `systemctl stop`), and SHUTDOWN_DRAIN_SECONDS when the whole host is shutting down:
# Compute Engine powers a deleted VM off about 120 s after the shutdown signal, so a long
# drain there would only lose the chance to requeue.
set -u

name=$1
drain=$2
shutdown_drain=$3
# DOCKER, SYSTEMCTL and REQUEUE_SECONDS let the tests stand in for docker and systemd.
docker=${DOCKER:-docker}
systemctl=${SYSTEMCTL:-systemctl}
# The worker's shutdown timeout, and a margin.
requeue_seconds=${REQUEUE_SECONDS:-35}

if [ "$("$systemctl" is-system-running 2>/dev/null)" = "stopping" ]; then
    drain=$shutdown_drain
fi

running() {
    [ "$("$docker" inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = "true" ]
}

# True once the container is gone or stopped; `timeout` ends a `docker wait` that outlasts
# the budget (exit 124), and the container's state decides.
stopped_within() {
    timeout "$1" "$docker" wait "$name" >/dev/null 2>&1
    ! running
}

running || exit 0

# `timeout 0` would mean "no limit", so a zero budget skips the drain instead.
if [ "$drain" -gt 0 ]; then
    echo "stopping $name: draining for up to ${drain}s (SIGINT)"
    "$docker" kill --signal=SIGINT "$name" >/dev/null 2>&1
    stopped_within "$drain" && exit 0
fi

echo "stopping $name: drain unfinished after ${drain}s; requeueing running jobs (SIGTERM)"
"$docker" kill --signal=SIGTERM "$name" >/dev/null 2>&1
stopped_within "$requeue_seconds" && exit 0

echo "stopping $name: still running after SIGTERM; killing it"
"$docker" kill --signal=SIGKILL "$name" >/dev/null 2>&1
exit 0
