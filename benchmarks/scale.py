"""300 concurrent streaming jobs in one worker process: memory, CPU and log latency.

    .venv/bin/python benchmarks/scale.py [--jobs 300] [--seconds 30] [--runs 3]

The worker is its own process (`python -m travis_worker`, local backend, pool = jobs,
initial sleep 0, real RabbitMQ); this process serves the build API, publishes the jobs and
reads every state update and log part, as the hub and travis-logs would. Each job waits
until all of them run, then prints a line stamped with $EPOCHREALTIME every 100 ms.

Of the worker process alone (its jobs' bash processes are not counted):
  idle RSS        the pool waiting, every processor subscribed to the queue;
  RSS per job     (RSS while every job streams - idle RSS) / jobs;
  CPU             % of one core while every job streams (utime + stime, /proc/PID/stat);
  latency         a line printed in a job → its log part at the consumer, p50 and p99.

Beside them, measured in the same run (the machine is shared: only ratios compare):
  modules         RSS of an interpreter that imported the worker and nothing more;
  raw aio-pika    a process publishing the same parts per second straight to `reporting`
                  (one part per job every 500 ms, the same size, confirmed, over as many
                  channels as the worker uses): its CPU;
  probe           a stamped message every 50 ms from this process through the same broker
                  to the same consumer while the jobs stream: the latency nobody's log
                  writer can beat at that moment;
  tick            a line waits for its writer's next 500 ms flush: p50 250 ms, p99 495 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._support import build_api, cpu_seconds, private_vhost, rss_mb
from tests.support.rabbit import Reporting
from tests.support.streaming import StartSignal, job_problems, stamped_lines, streaming_script
from tests.support.worker import example_payload, publish, wait_consumers, worker_process
from travis_worker.util.process import raise_open_files_limit

QUEUE = "builds.bench"
FLUSH_SECONDS = 0.5  # the log writer's tick (sources/amqp/logwriter.py)
WARM_UP_SECONDS = 2.0
RAW_JOB_IDS = 900_000  # the raw publisher's parts carry job ids from here on
PROBE_JOB_ID = 800_000
PROBE_SECONDS = 0.05
GOALS = "goals: idle ≤ 80 MB, ≤ 1 MB per job, CPU ≤ 50 % of a core, p99 ≤ 600 ms"


@dataclass(frozen=True)
class Figures:
    idle_mb: float
    modules_mb: float
    per_job_kb: float
    cpu: float
    raw_cpu: float
    parts_per_second: float
    loop_lag_max: float
    machine_busy: float
    p50: float
    p99: float
    probe_p50: float
    probe_p99: float
    probe_confirm_p99: float

    @property
    def cpu_ratio(self) -> float:
        """The worker's CPU over raw aio-pika's for the same parts."""
        return self.cpu / self.raw_cpu

    @property
    def excess_p99(self) -> float:
        """How far p99 is above the tick's own p99 plus the probe's p99."""
        return self.p99 - 0.99 * FLUSH_SECONDS - self.probe_p99


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latencies(reporting: Reporting, job_ids: range) -> list[float]:
    """Seconds from each line's printing to the arrival of the part that carried it."""
    return [
        part.arrived_at - printed
        for job_id in job_ids
        for part in reporting.parts.get(job_id, [])
        for _, printed in stamped_lines(part.body["log"])
    ]


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    give_up_at = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up_at:
            raise SystemExit(f"gave up after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Usage:
    cpu: float
    """% of one core."""
    highest_rss_mb: float
    machine_busy: float
    """% of all the machine's cores that anything used meanwhile."""
    started_at: float
    ended_at: float


async def steady_usage(pid: int, seconds: float) -> Usage:
    """What `pid` used over the next `seconds`, and how busy the machine was."""
    cpu_before, busy_before, started = cpu_seconds(pid), machine_seconds(), time.monotonic()
    started_at, highest = time.time(), rss_mb(pid)
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        highest = max(highest, rss_mb(pid))
    elapsed = time.monotonic() - started
    (busy_after, total_after), (busy_at_start, total_at_start) = machine_seconds(), busy_before
    busy, total = busy_after - busy_at_start, total_after - total_at_start
    cpu = 100 * (cpu_seconds(pid) - cpu_before) / elapsed
    return Usage(cpu, highest, 100 * busy / total, started_at, time.time())


def machine_seconds() -> tuple[float, float]:
    """(busy, all) CPU time of every core so far, in clock ticks (/proc/stat)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def lag_within(loop: bytes, usage: Usage) -> float:
    """The worst event-loop lag the worker saw (its /debug/loop) while the jobs streamed."""
    samples = json.loads(loop)["recent"]
    return max(
        float(s["lag_seconds"]) for s in samples if usage.started_at <= s["time"] <= usage.ended_at
    )


async def modules_rss() -> float:
    """The RSS of an interpreter holding the worker's modules, before any processor."""
    code = (
        "import travis_worker.app, travis_worker.backends.local, travis_worker.cli.main;"
        "from benchmarks._support import rss_mb; print(rss_mb())"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    out, _ = await process.communicate()
    return float(out)


async def run_worker(uri: str, jobs: int, seconds: float, reporting: Reporting) -> dict[str, float]:
    """The worker phase: idle, then every job streaming. Returns its figures."""
    connection = reporting.connection
    job_ids = range(100_000, 100_000 + jobs)
    lines = int(seconds * 10)
    start = StartSignal()
    try:
        async with (
            build_api(streaming_script(lines, start)) as api,
            worker_process(
                {"amqp_uri": uri, "queue_name": QUEUE, "build_api_uri": api,
                 "provider_name": "local", "pool_size": str(jobs), "initial_sleep": "0s",
                 "hostname": "bench-worker"}
            ) as worker,
        ):  # fmt: skip
            pid = worker.process.pid
            print(f"worker pid {pid} (py-spy record --pid …)", file=sys.stderr, flush=True)
            try:
                await wait_consumers(connection, QUEUE, jobs, timeout=120)
                await asyncio.sleep(3)  # connections and consumers settle
                idle = rss_mb(pid)
                await publish(connection, QUEUE, *(example_payload(job) for job in job_ids))
                await until(
                    lambda: all("started" in reporting.state_names(j) for j in job_ids),
                    120,
                    "every job to start",
                )
                start.set()
                await asyncio.sleep(WARM_UP_SECONDS)
                parts_before = sum(len(reporting.parts.get(j, [])) for j in job_ids)
                window = seconds - WARM_UP_SECONDS - 1
                probe = asyncio.ensure_future(
                    publish_stamped(connection, [PROBE_JOB_ID], PROBE_SECONDS, window, channels=1)
                )
                usage = await steady_usage(pid, window)
                probe_confirms = await probe
                parts = sum(len(reporting.parts.get(j, [])) for j in job_ids) - parts_before
                _, loop = await worker.get("/debug/loop")
                await until(
                    lambda: all(len(reporting.states.get(j, [])) >= 3 for j in job_ids),
                    120,
                    "the finish states",
                )
                await worker.stop()
            except BaseException:
                print(worker.log[-3000:], file=sys.stderr)
                raise
    finally:
        start.remove()
    for job in job_ids:
        problems = job_problems(reporting, job, lines)
        if problems:
            raise SystemExit(f"job {job} is incomplete, no figures: {problems}")
    delays = latencies(reporting, job_ids)
    probed = latencies(reporting, range(PROBE_JOB_ID, PROBE_JOB_ID + 1))
    return {
        "idle_mb": idle,
        "per_job_kb": (usage.highest_rss_mb - idle) * 1024 / jobs,
        "cpu": usage.cpu,
        "parts_per_second": parts / window,
        "loop_lag_max": lag_within(loop, usage),
        "machine_busy": usage.machine_busy,
        "p50": percentile(delays, 0.5),
        "p99": percentile(delays, 0.99),
        "probe_p50": percentile(probed, 0.5),
        "probe_p99": percentile(probed, 0.99),
        "probe_confirm_p99": percentile(probe_confirms, 0.99),
    }


async def run_raw(uri: str, jobs: int, seconds: float) -> dict[str, float]:
    """The ceiling: raw aio-pika publishing the worker's parts per second, in its own process."""
    publisher = await asyncio.create_subprocess_exec(
        *(sys.executable, __file__, "--raw-publisher", uri, "--jobs", str(jobs)),
        *("--seconds", str(seconds)),
        stdout=asyncio.subprocess.PIPE,
    )
    assert publisher.stdout is not None
    await publisher.stdout.readline()  # connected
    await asyncio.sleep(WARM_UP_SECONDS)
    usage = await steady_usage(publisher.pid, seconds - WARM_UP_SECONDS - 1)
    await publisher.wait()
    return {"raw_cpu": usage.cpu}


async def publish_stamped(
    connection: aio_pika.abc.AbstractRobustConnection,
    job_ids: list[int],
    interval: float,
    seconds: float,
    *,
    channels: int,
) -> list[float]:
    """For `seconds`, a part for each job every `interval`, each holding the lines printed in
    an interval of streaming_script (stamped now), published and confirmed as the worker does.
    Returns how long each publish waited for its confirm."""
    exchanges = []
    for _ in range(channels):
        channel = await connection.channel()
        exchanges.append(await channel.get_exchange("reporting", ensure=False))
    lines = max(1, round(interval / 0.1))
    stop_at = time.monotonic() + seconds
    confirms: list[float] = []

    async def job(job_id: int) -> None:
        await asyncio.sleep(interval * (job_id % 100) / 100)  # ticks spread like the jobs'
        number = 0
        while time.monotonic() < stop_at:
            now = time.time()
            text = "".join(f"line {number * lines + n} at {now:.6f}\n" for n in range(lines))
            body = {"id": job_id, "log": text, "number": number, "uuid": "raw", "final": False}
            message = aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                type="job:test:log",
            )
            await exchanges[job_id % channels].publish(message, "reporting.jobs.logs")
            confirms.append(time.time() - now)
            number += 1
            await asyncio.sleep(interval)

    await asyncio.gather(*(job(job_id) for job_id in job_ids))
    return confirms


async def raw_publisher(uri: str, jobs: int, seconds: float) -> None:
    connection = await aio_pika.connect_robust(uri)
    print("connected", flush=True)
    job_ids = list(range(RAW_JOB_IDS, RAW_JOB_IDS + jobs))
    await publish_stamped(connection, job_ids, FLUSH_SECONDS, seconds, channels=1)
    await connection.close()


async def one_run(jobs: int, seconds: float) -> Figures:
    with private_vhost() as uri:
        connection = await aio_pika.connect_robust(uri)
        try:
            channel = await connection.channel()
            await channel.declare_queue(QUEUE, durable=True)  # the worker declares it alike
            reporting = await Reporting(connection).start()
            worker = await run_worker(uri, jobs, seconds, reporting)
            raw = await run_raw(uri, jobs, seconds)
        finally:
            await connection.close()
    return Figures(modules_mb=await modules_rss(), **worker, **raw)


def describe(f: Figures) -> str:
    return (
        f"idle {f.idle_mb:.1f} MB (modules alone {f.modules_mb:.1f} MB), "
        f"{f.per_job_kb:.0f} KB per running job; "
        f"CPU {f.cpu:.1f} % of a core at {f.parts_per_second:.0f} parts/s "
        f"(raw aio-pika {f.raw_cpu:.1f} %: x{f.cpu_ratio:.2f}), "
        f"loop lag max {f.loop_lag_max * 1000:.0f} ms, machine {f.machine_busy:.0f} % busy; "
        f"line→part p50 {f.p50 * 1000:.0f} ms, p99 {f.p99 * 1000:.0f} ms "
        f"(probe p50 {f.probe_p50 * 1000:.1f} ms, p99 {f.probe_p99 * 1000:.1f} ms, "
        f"its confirm p99 {f.probe_confirm_p99 * 1000:.1f} ms; "
        f"p99 beyond tick and probe: {f.excess_p99 * 1000:.0f} ms)"
    )


def spread(runs: list[Figures], name: str, scale: float = 1.0) -> str:
    values = [getattr(run, name) * scale for run in runs]
    return f"{statistics.median(values):.1f} ({min(values):.1f} to {max(values):.1f})"


async def main(jobs: int, seconds: float, runs: int) -> None:
    raise_open_files_limit()  # this process reads every job's parts and hosts the build API
    # It also stamps each part's arrival: its own full collections (it holds every part)
    # would show up as the worker's latency.
    gc.disable()
    figures = []
    for number in range(1, runs + 1):
        figures.append(await one_run(jobs, seconds))
        print(f"run {number}: {describe(figures[-1])}", flush=True)
    print(f"\n{jobs} jobs, {seconds:g} s of streaming, median (min to max) of {runs} runs; {GOALS}")
    rows = [
        ("idle RSS, MB", "idle_mb", 1),
        ("modules alone, MB", "modules_mb", 1),
        ("RSS per running job, KB", "per_job_kb", 1),
        ("CPU, % of a core", "cpu", 1),
        ("raw aio-pika CPU, %", "raw_cpu", 1),
        ("CPU / raw aio-pika", "cpu_ratio", 1),
        ("line→part p50, ms", "p50", 1000),
        ("line→part p99, ms", "p99", 1000),
        ("probe p99, ms", "probe_p99", 1000),
        ("probe confirm p99, ms", "probe_confirm_p99", 1000),
        ("p99 beyond tick and probe, ms", "excess_p99", 1000),
        ("worker loop lag max, ms", "loop_lag_max", 1000),
        ("machine busy, %", "machine_busy", 1),
    ]
    for label, name, scale in rows:
        print(f"  {label:<31} {spread(figures, name, scale)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30, help="of streaming per job")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--raw-publisher", metavar="AMQP_URI", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_publisher:
        asyncio.run(raw_publisher(args.raw_publisher, args.jobs, args.seconds))
    else:
        asyncio.run(main(args.jobs, args.seconds, args.runs))
