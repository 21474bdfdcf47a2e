"""`/debug/`: stack dumps, CPU profiles, heap snapshots and loop lag, over real HTTP.

The profile is taken while jobs run (fake backend, real RabbitMQ), and the jobs must keep
finishing while it is taken."""

from __future__ import annotations

import asyncio
import json
import pstats
import re
import threading
import time
import tracemalloc

from prometheus_client import REGISTRY

from tests.remote.harness import control_only, control_settings, running_with_services
from tests.support.worker import example_payload, publish, worker_settings
from travis_worker.profiling import LoopLagMonitor
from travis_worker.remote.debug import DebugTools

COLLAPSED_LINE = re.compile(r"^(?P<stack>.+) (?P<count>\d+)$")


def parse_collapsed(text: str) -> dict[tuple[str, ...], int]:
    stacks: dict[tuple[str, ...], int] = {}
    for line in text.splitlines():
        match = COLLAPSED_LINE.match(line)
        assert match, f"not a collapsed-stack line: {line!r}"
        stacks[tuple(match["stack"].split(";"))] = int(match["count"])
    return stacks


def waits_in_select(stack: tuple[str, ...]) -> bool:
    name, _, where = stack[-1].partition(" (")
    return name.endswith(".select") and where.startswith("selectors.py:")


async def test_cpu_profile_while_jobs_run_and_they_keep_finishing(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    values = control_settings(
        worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="fake")
    )
    environ = {"TRAVIS_WORKER_FAKE_RUN_SLEEP": "200ms"}
    jobs = [job_id + n for n in range(6)]
    async with running_with_services(values, environ) as worker:
        for job in jobs:
            await publish(amqp_connection, queue_name, example_payload(job))
        finished_at: dict[int, float] = {}

        def note_finished() -> bool:
            for job in jobs:
                if reporting.log_closed(job) and job not in finished_at:
                    finished_at[job] = time.monotonic()
            return len(finished_at) == len(jobs)

        asked = time.monotonic()
        profile_request = asyncio.ensure_future(
            worker.client.request("GET", "/debug/profile?seconds=2&hz=200&idle=1")
        )
        await reporting.wait_for(note_finished, timeout=20)
        status, body, response = await profile_request
        answered = time.monotonic()

        # Jobs went on while the profile was being taken (one processor, 6 jobs of ≥0.2 s).
        during = [job for job, at in finished_at.items() if asked < at < answered]
        assert len(during) >= 3, (answered - asked, finished_at)
        assert worker.services.loop_lag.worst < 0.25

        assert status == 200 and response.content_type == "text/plain"
        stacks = parse_collapsed(body.decode())
        assert sum(stacks.values()) > 100  # ~2 s at 200 Hz, for the main thread alone
        main = [s for s in stacks if s[0] == "<thread MainThread>"]
        assert main, list(stacks)[:5]
        assert any("_run_once" in frame for stack in main for frame in stack)
        # idle=1 keeps the loop's wait in select(): the loop was mostly idle.
        assert any(waits_in_select(stack) for stack in main)

        status, body, response = await worker.client.request(
            "GET", "/debug/profile?seconds=0.3&format=pstats&idle=1"
        )
        assert status == 200
        assert response.headers["Content-Disposition"] == 'attachment; filename="cpu.pstats"'
        (tmp_path / "cpu.pstats").write_bytes(body)
        stats = pstats.Stats(str(tmp_path / "cpu.pstats"))
        assert stats.total_tt > 0  # type: ignore[attr-defined]
        names = {name for _, _, name in stats.stats}  # type: ignore[attr-defined]
        assert "<thread MainThread>" in names
        assert any(name.endswith("_run_once") for name in names)
        stats.sort_stats("cumulative").print_stats(5)  # the viewer can render it


def burn_cpu(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


async def test_cpu_profile_leaves_idle_threads_out_and_shows_the_busy_one():
    stop = threading.Event()
    burner = threading.Thread(target=burn_cpu, args=(stop,), name="burner", daemon=True)
    burner.start()
    try:
        async with control_only() as client:
            status, body, _ = await client.request("GET", "/debug/profile?seconds=0.5")
    finally:
        stop.set()
        burner.join()
    assert status == 200
    stacks = parse_collapsed(body.decode())
    burning = [s for s in stacks if s[0] == "<thread burner>"]
    assert burning and all(any(f.startswith("burn_cpu (") for f in s) for s in burning)
    assert not [s for s in stacks if waits_in_select(s)]


async def test_profile_parameters_are_checked_and_one_profile_runs_at_a_time():
    async with control_only() as client:
        for query, message in [
            ("seconds=abc", b"seconds must be a number\n"),
            ("seconds=0", b"seconds must be between 0.01 and 300\n"),
            ("hz=5000", b"hz must be between 1 and 1000\n"),
            ("format=svg", b"format must be collapsed or pstats\n"),
        ]:
            status, body, _ = await client.request("GET", f"/debug/profile?{query}")
            assert (status, body) == (400, message)
        first = asyncio.ensure_future(client.request("GET", "/debug/profile?seconds=0.5"))
        await asyncio.sleep(0.1)
        status, _, _ = await client.request("GET", "/debug/profile?seconds=0.1")
        assert status == 409
        assert (await first)[0] == 200


async def inner_wait(event: asyncio.Event) -> None:
    await event.wait()


async def outer_wait(event: asyncio.Event) -> None:
    await inner_wait(event)


async def test_task_dump_follows_each_await_chain():
    event = asyncio.Event()
    task = asyncio.create_task(outer_wait(event), name="parked-test-task")
    await asyncio.sleep(0)
    try:
        async with control_only() as client:
            status, body, _ = await client.request("GET", "/debug/tasks")
    finally:
        event.set()
        await task
    assert status == 200
    text = body.decode()
    section = text.split("Task 'parked-test-task' (pending)\n", 1)[1].split("\nTask ", 1)[0]
    assert "in outer_wait" in section and "in inner_wait" in section and "in Event.wait" in section
    assert section.index("outer_wait") < section.index("inner_wait")
    assert "await inner_wait(event)" in section  # the source line
    assert "waiting for <Future pending" in section


def parked_thread(event: threading.Event) -> None:
    event.wait(30)


async def test_thread_dump_shows_every_thread():
    event = threading.Event()
    thread = threading.Thread(target=parked_thread, args=(event,), name="dump-me", daemon=True)
    thread.start()
    try:
        async with control_only() as client:
            status, body, _ = await client.request("GET", "/debug/threads")
    finally:
        event.set()
        thread.join()
    assert status == 200
    text = body.decode()
    assert text.startswith(f"{len(threading.enumerate())} threads\n") or "threads\n" in text
    section = text.split("Thread 'dump-me'", 1)[1].split("\nThread ", 1)[0]
    assert "in parked_thread" in section
    assert "\nThread 'MainThread'" in text


def allocate_lots() -> list[bytes]:
    return [bytes(1000) + str(n).encode() for n in range(5000)]


async def test_heap_tracing_starts_on_demand_reports_diffs_and_stops():
    assert not tracemalloc.is_tracing()
    async with control_only() as client:
        status, body, _ = await client.request("GET", "/debug/heap")
        assert status == 200 and body.startswith(b"tracemalloc started (10 frames")
        assert tracemalloc.is_tracing()
        status, body, _ = await client.request("GET", "/debug/heap?top=5")
        assert status == 200 and b"top 5 allocation sites, by lineno:" in body
        kept = allocate_lots()
        status, body, _ = await client.request("GET", "/debug/heap?diff=1&top=5")
        assert b"top 5 changes since the previous report" in body
        assert b"test_debug.py" in body.split(b"\n", 3)[2]  # the biggest change is ours
        status, body, _ = await client.request("GET", "/debug/heap?group=traceback&top=3")
        assert b"allocate_lots" in body
        status, body, response = await client.request("GET", "/debug/heap?format=snapshot")
        assert status == 200 and response.content_type == "application/octet-stream"
        assert len(kept) == 5000
        status, _, _ = await client.request("DELETE", "/debug/heap")
        assert status == 204
        assert not tracemalloc.is_tracing()
    assert body  # a snapshot file


async def test_loop_lag_shows_a_blocked_loop():
    delay_sum = "travis_worker_event_loop_delay_seconds_sum"
    before = REGISTRY.get_sample_value(delay_sum) or 0.0
    monitor = LoopLagMonitor(interval=0.05)
    watching = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # deliberately block the loop
        await asyncio.sleep(0.12)
        async with control_only(tools=DebugTools(loop_lag=monitor)) as client:
            status, body, response = await client.request("GET", "/debug/loop")
    finally:
        watching.cancel()
    assert status == 200 and response.content_type == "application/json"
    summary = json.loads(body)
    assert summary["max_seconds"] >= 0.25
    assert summary["checks"] >= 3 and len(summary["recent"]) == summary["checks"]
    assert summary["interval_seconds"] == 0.05
    assert (REGISTRY.get_sample_value(delay_sum) or 0.0) - before >= 0.25
