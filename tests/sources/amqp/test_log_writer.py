"""The AMQP log writer against the real broker: part format, chunking, closing."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.garbage import examples, job_outputs
from travis_worker.errors import LogClosedError
from travis_worker.job import LogMeta
from travis_worker.sources.amqp.connection import declare_log_topology
from travis_worker.sources.amqp.logwriter import LOG_CHUNK_SIZE, AmqpLogWriter, split_utf8
from travis_worker.sources.amqp.outbox import Outbox, OutboxLimits
from travis_worker.sources.amqp.publishers import LogPartPublisher
from travis_worker.sources.amqp.spool import Spool


@pytest.fixture
async def publisher(amqp_connection, reporting, tmp_path):
    """The logs outbox a worker gives its log writers."""
    channel = await amqp_connection.channel()
    await declare_log_topology(channel, sharded=False)
    await channel.close()
    parts = LogPartPublisher(amqp_connection, sharded=False)
    await parts.open()
    outbox = Outbox("log", parts.publish, Spool(tmp_path / "log"), OutboxLimits())
    outbox.start()
    yield outbox
    await outbox.close()
    await parts.close()


async def test_first_part_and_final_part(publisher, reporting, job_id):
    writer = AmqpLogWriter(publisher, job_id, "the-uuid")
    await writer.write(b"Hello, ")
    await writer.write(b"world!")
    await writer.close()
    await reporting.wait_for(lambda: reporting.log_closed(job_id))
    bodies = [p.body for p in reporting.parts[job_id]]
    assert bodies == [
        {"id": job_id, "log": "Hello, world!", "number": 0, "uuid": "the-uuid", "final": False},
        {"id": job_id, "log": "", "number": 1, "uuid": "the-uuid", "final": True},
    ]


async def test_closing_an_empty_log_sends_only_the_final_part(publisher, reporting, job_id):
    writer = AmqpLogWriter(publisher, job_id, "")
    await writer.close()
    await writer.close()  # a second close does nothing
    await reporting.wait_for(lambda: reporting.log_closed(job_id))
    await asyncio.sleep(0.2)
    assert [p.body for p in reporting.parts[job_id]] == [
        {"id": job_id, "log": "", "number": 0, "uuid": "", "final": True}
    ]


async def test_writes_after_close_fail(publisher, job_id):
    writer = AmqpLogWriter(publisher, job_id, "")
    await writer.write_and_close(b"bye")
    with pytest.raises(LogClosedError, match="attempted write to closed log"):
        await writer.write(b"more")
    with pytest.raises(LogClosedError, match="log already closed"):
        await writer.write_and_close(b"more")


async def test_periodic_flush_publishes_before_close(publisher, reporting, job_id):
    writer = AmqpLogWriter(publisher, job_id, "")
    await writer.write(b"line\n")
    await reporting.wait_for(lambda: reporting.log_text(job_id) == "line\n", timeout=2)
    assert not reporting.log_closed(job_id)
    await writer.close()


async def test_meta_goes_on_exactly_one_part(publisher, reporting, job_id):
    writer = AmqpLogWriter(publisher, job_id, "u")
    await writer.write(b"before start\n")
    await asyncio.sleep(0.7)
    queued = datetime(2018, 5, 14, 14, 26, 50, 120000, tzinfo=UTC)
    writer.mark_started(LogMeta(queued, "owner/repo", "builds.gce", "gce"))
    await writer.write(b"after start\n")
    await writer.close()
    await reporting.wait_for(lambda: reporting.log_closed(job_id))
    parts = sorted(reporting.parts[job_id], key=lambda p: p.body["number"])
    assert "meta" not in parts[0].body
    assert parts[1].body["meta"] == {
        "queued_at": "2018-05-14T14:26:50.12Z",
        "repo": "owner/repo",
        "queue": "builds.gce",
        "infra": "gce",
    }
    assert "meta" not in parts[2].body


async def test_large_output_is_chunked_without_splitting_characters(publisher, reporting, job_id):
    text = ("é" * 1000 + "<" * 1000 + "x\n") * 5
    writer = AmqpLogWriter(publisher, job_id, "")
    data = text.encode()
    # Written in odd slices, so characters arrive split across writes too.
    for start in range(0, len(data), 777):
        await writer.write(data[start : start + 777])
    await writer.close()
    await reporting.wait_for(lambda: reporting.log_closed(job_id))
    parts = sorted(reporting.parts[job_id], key=lambda p: p.body["number"])
    assert reporting.log_text(job_id) == text
    for part in parts:
        assert len(part.body["log"].encode()) <= LOG_CHUNK_SIZE
        assert "\ufffd" not in part.body["log"]


def test_split_utf8_cuts_only_at_character_starts():
    data = ("a" + "€" * 10).encode()  # € is three bytes
    pieces = split_utf8(data, 5)
    assert b"".join(pieces) == data
    assert all(len(p) <= 5 for p in pieces)
    assert [p.decode() for p in pieces] == ["a€", "€", "€", "€", "€", "€", "€", "€", "€", "€"]


async def test_invalid_bytes_become_replacement_characters(publisher, reporting, job_id):
    writer = AmqpLogWriter(publisher, job_id, "")
    await writer.write(b"ok \xff end \xe2\x82")  # a lone byte, then an unfinished character
    await writer.close()
    await reporting.wait_for(lambda: reporting.log_closed(job_id))
    assert reporting.log_text(job_id) == "ok \ufffd end \ufffd"


@settings(max_examples=200, deadline=None)
@given(text=st.text(), limit=st.integers(min_value=4, max_value=2000))
def test_split_utf8_keeps_every_character_whole(text, limit):
    pieces = split_utf8(text.encode("utf-8", "surrogatepass"), limit)
    assert b"".join(pieces) == text.encode("utf-8", "surrogatepass")
    assert all(len(piece) <= limit for piece in pieces)
    assert "".join(piece.decode("utf-8", "surrogatepass") for piece in pieces) == text


async def test_any_bytes_written_in_any_slices_make_a_sound_log(publisher, reporting, job_id):
    writes = examples(
        st.tuples(job_outputs, st.lists(st.integers(min_value=1, max_value=70_000), min_size=1)),
        15,
    )
    for n, (output, sizes) in enumerate(writes):
        writer = AmqpLogWriter(publisher, job_id + n, "u")
        start = 0
        for size in itertools.cycle(sizes):
            if start >= len(output):
                break
            await writer.write(output[start : start + size])
            start += size
        await writer.close()
    for n, (output, _) in enumerate(writes):
        await reporting.wait_for(lambda n=n: reporting.log_closed(job_id + n))
        assert reporting.log_faults(job_id + n) == []
        assert reporting.log_text(job_id + n) == output.decode(errors="replace")
