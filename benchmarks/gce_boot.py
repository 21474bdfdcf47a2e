"""How soon a GCE job's script runs once its VM answers SSH, and what a job costs in API calls.

    .venv/bin/python benchmarks/gce_boot.py [--jobs 20] [--guest-boot 0.5-3.0]

Runs the gce backend with its default settings against the Compute API fake and sshd
"VMs" (needs root and openssh-server, like the tests). Each job: start → upload → run
→ delete, one after the other. The guest OS takes a random `--guest-boot` seconds after
the instance is RUNNING before sshd listens, as on GCE.

(a) VM SSH-ready → script running: from the moment the VM's sshd listens to the moment
    the first byte the script prints reaches the worker (SSH probing, handshake, SFTP
    upload, exec). travis-ci/worker's defaults alone add 15 s (BOOT_PRE_POLL_SLEEP)
    plus up to 3 s per operation poll and 1 s per SSH attempt.
(b) Compute API calls per job on the happy path, counted by the fake (setup excluded;
    the first job also looks its image up, later jobs use the cache).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import sshvm
from tests.fakes.compute_api import ComputeFake
from travis_worker.backends.base import ProviderContext, no_progress
from travis_worker.backends.gce import create_provider
from travis_worker.job import StartAttributes

SCRIPT = b"echo running\n"


class FirstByte:
    def __init__(self) -> None:
        self.at: float | None = None

    async def write(self, data: bytes) -> None:
        if self.at is None:
            self.at = time.monotonic()


async def main(jobs: int, guest_boot: tuple[float, float]) -> None:
    os.environ["NO_GCE_CHECK"] = "True"
    host = sshvm.VmHost()
    compute = ComputeFake(vm_host=host)
    await compute.start()
    keys = {"API_ENDPOINT": compute.endpoint, "PROJECT_ID": compute.project}
    provider = create_provider(ProviderContext("bench-worker", keys))
    latencies: list[float] = []
    calls: list[int] = []
    try:
        await provider.setup()
        for job in range(jobs):
            compute.faults.ssh_delay = random.uniform(*guest_boot)
            before = compute.count()
            attrs = StartAttributes(language="ruby", os="linux", job_id=job + 1, repository="b/b")
            instance = await provider.start(attrs, no_progress)
            vm = compute.instance(instance.id).vm
            await instance.upload_script(SCRIPT, no_progress)
            output = FirstByte()
            await instance.run_script(output)
            await instance.stop()
            assert vm is not None and vm.ready_at is not None and output.at is not None
            latencies.append(output.at - vm.ready_at)
            calls.append(compute.count() - before)
    finally:
        await provider.close()
        await compute.stop()
        await host.close()

    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"jobs: {jobs}, guest boot {guest_boot[0]}-{guest_boot[1]} s, default GCE settings")
    print(
        "(a) SSH-ready -> script running: "
        f"median {statistics.median(latencies):.3f} s, p95 {p95:.3f} s, max {max(latencies):.3f} s"
    )
    print(
        f"(b) Compute API calls per job: first job {calls[0]}, "
        f"later jobs {statistics.mean(calls[1:] or calls):.1f} (max {max(calls)})"
    )


if __name__ == "__main__":
    reason = sshvm.unavailable()
    if reason:
        sys.exit(f"cannot run: {reason}")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--guest-boot", default="0.5-3.0", help="seconds, as LOW-HIGH")
    args = parser.parse_args()
    low, _, high = args.guest_boot.partition("-")
    asyncio.run(main(args.jobs, (float(low), float(high or low))))
