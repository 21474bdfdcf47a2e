"""Cancellation fan-out, the payload filter, hooks and the file queue."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta

from tests.support.worker import example_payload
from travis_worker.cancellation import CancellationBroadcaster
from travis_worker.filequeue import FileJobSource
from travis_worker.hooks import run_hook
from travis_worker.job import FinishState, StartDefaults
from travis_worker.processor.payload_filter import filter_payload


def test_broadcast_reaches_only_current_subscribers_of_the_job():
    broadcaster = CancellationBroadcaster()
    with broadcaster.subscribe(1) as first, broadcaster.subscribe(1) as second:
        with broadcaster.subscribe(1) as gone:
            pass
        with broadcaster.subscribe(2) as other:
            assert broadcaster.broadcast(1, "42") == 2
            assert broadcaster.broadcast(1, "again") == 0
            assert first.cancelled and second.cancelled and first.reason == "42"
            assert not gone.cancelled and not other.cancelled
    assert broadcaster.broadcast(3, "nobody") == 0


def executable(path, body: str):
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_payload_filter_replaces_the_payload(tmp_path):
    script = executable(tmp_path / "filter", '#!/bin/sh\nsed \'s/"ruby"/"python"/\'\n')
    filtered = await filter_payload(script, {"config": {"language": "ruby"}})
    assert filtered == {"config": {"language": "python"}}


async def test_payload_filter_failures_keep_the_original(tmp_path):
    original = {"a": 1}
    assert await filter_payload(str(tmp_path / "missing"), original) is original
    failing = executable(tmp_path / "fails", "#!/bin/sh\nexit 3\n")
    assert await filter_payload(failing, original) is original
    garbage = executable(tmp_path / "garbage", "#!/bin/sh\necho not json\n")
    assert await filter_payload(garbage, original) is original


async def test_hooks_run_without_a_shell(tmp_path):
    marker = tmp_path / "ran"
    assert await run_hook("start", f"touch {marker}")
    assert marker.exists()
    assert not await run_hook("stop", "false")
    assert not await run_hook("stop", str(tmp_path / "no-such-hook"))
    assert await run_hook("stop", "")


async def test_file_queue_moves_jobs_through_its_directories(tmp_path):
    source = FileJobSource(str(tmp_path), "builds", timedelta(seconds=0.05), StartDefaults())
    created = tmp_path / "builds" / "10-created.d"
    (created / "a.json").write_text(json.dumps(example_payload(11)))
    (created / "b.json").write_text("{broken")
    stream = await source.open_stream()
    job = await stream.next_job()
    assert job is not None and job.payload.job.id == 11
    assert (tmp_path / "builds" / "30-received.d" / "a.json").exists()
    await job.started()
    log = await job.open_log()
    await log.write(b"hello\n")
    await log.close()
    await job.finish(FinishState.PASSED)
    finished = tmp_path / "builds" / "70-finished.d"
    assert (finished / "a.json").exists()
    assert (finished / "a.state").read_text() == "passed"
    assert (tmp_path / "builds" / "log" / "a.log").read_bytes() == b"hello\n"
    assert (created / "b.json").exists(), "unparsable files stay where they are"
    assert source.claim_next() is None


async def test_file_queue_requeue_puts_the_job_back(tmp_path):
    source = FileJobSource(str(tmp_path), "q", timedelta(seconds=0.05), StartDefaults())
    (tmp_path / "q" / "10-created.d" / "j.json").write_text(json.dumps(example_payload(12)))
    job = source.claim_next()
    assert job is not None
    await job.requeue()
    assert (tmp_path / "q" / "10-created.d" / "j.json").exists()


async def test_a_hook_that_runs_over_is_killed(tmp_path, monkeypatch):
    import travis_worker.hooks as hooks

    monkeypatch.setattr(hooks, "HOOK_TIMEOUT_SECONDS", 0.5)
    marker = tmp_path / "still-running"
    script = executable(tmp_path / "slow-hook", f"#!/bin/sh\nsleep 2\ntouch {marker}\n")
    assert not await run_hook("start", script)
    await asyncio.sleep(2.5)
    assert not marker.exists(), "the hook was left running"
