"""The spool on disk: order, confirmation markers, what survives the process, damage."""

from __future__ import annotations

import pytest

from travis_worker.sources.amqp.spool import Message, Spool, SpoolLock

pytestmark = pytest.mark.timeout(10)


def message(seq: int, body: bytes = b'{"log":"x"}') -> Message:
    return Message(seq, 1000 + seq, "job:test:log", body)


def test_messages_come_back_in_order_and_leave_once_confirmed(tmp_path):
    spool = Spool(tmp_path)
    for seq in range(3, 6):
        spool.append(message(seq))
    spool.prepend([message(1), message(2)])  # older than what the spool holds
    assert [m.seq for m in spool.load(10)] == [1, 2, 3, 4, 5]
    assert spool.load(10) == []
    spool.confirm_through(2)
    assert spool.messages == 3
    spool.rewind()
    assert [m.seq for m in spool.load(2)] == [3, 4]
    spool.confirm_through(5)  # 5 was not handed out again: it stays
    assert spool.messages == 1
    assert [m.seq for m in spool.load(10)] == [5]
    spool.confirm_through(5)
    assert spool.empty and list(tmp_path.iterdir()) == []


def test_a_new_process_sees_what_was_not_confirmed(tmp_path):
    first = Spool(tmp_path)
    for seq in range(1, 5):
        first.append(message(seq, b'{"n":%d}' % seq))
    first.load(2)
    first.confirm_through(2)
    # The process dies here: no close().
    second = Spool(tmp_path)
    assert second.messages == 2
    assert [(m.seq, m.job_id, m.body) for m in second.load(10)] == [
        (3, 1003, b'{"n":3}'),
        (4, 1004, b'{"n":4}'),
    ]


def test_a_line_cut_short_by_a_crash_is_left_alone(tmp_path):
    spool = Spool(tmp_path)
    spool.append(message(1))
    spool.close()
    segment = next(tmp_path.glob("*.spool"))
    with segment.open("ab") as damaged:
        damaged.write(b'2 1002 job:test:log {"log":')  # no newline: cut mid-write
    assert [m.seq for m in Spool(tmp_path).load(10)] == [1]


def test_bodies_keep_every_byte(tmp_path):
    body = '{"log":"a b\\tc\\u003c€"}'.encode()
    spool = Spool(tmp_path)
    spool.append(Message(7, 42, "job:test:finish", body))
    spool.close()
    (loaded,) = Spool(tmp_path).load(1)
    assert (loaded.seq, loaded.job_id, loaded.event_type, loaded.body) == (
        7,
        42,
        "job:test:finish",
        body,
    )


def test_a_locked_spool_cannot_be_taken(tmp_path):
    owner, other = SpoolLock(tmp_path), SpoolLock(tmp_path)
    assert owner.acquire()
    assert not other.acquire()
    owner.release()
    assert other.acquire()
    other.release()
