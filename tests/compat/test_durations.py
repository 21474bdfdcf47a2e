from datetime import timedelta

import pytest

from travis_worker.compat.durations import format_go_duration, parse_go_duration, truncate_to_millis


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0), ("10s", 10), ("3m30s", 210), ("1h0m0s", 3600), ("1.5s", 1.5), ("500ms", 0.5),
        ("1h30m", 5400), ("-2m", -120), ("2h13m21s", 8001), ("1.5h", 5400), ("250us", 0.00025),
        ("250µs", 0.00025), (".5s", 0.5),
    ],
)  # fmt: skip
def test_parses_go_durations(text, seconds):
    assert parse_go_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "5 m", "1d", "m", "1.2.3s", "abc"])
def test_rejects_what_go_rejects(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


def test_rejects_durations_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        parse_go_duration("99999999999999h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"), (600, "10m0s"), (3000, "50m0s"), (3600, "1h0m0s"), (8001, "2h13m21s"),
        (210, "3m30s"), (42.17, "42.17s"), (1.5, "1.5s"), (0.5, "500ms"), (0.000001, "1µs"),
        (-90, "-1m30s"),
    ],
)  # fmt: skip
def test_formats_like_go(seconds, text):
    assert format_go_duration(timedelta(seconds=seconds)) == text


def test_truncates_to_milliseconds():
    assert truncate_to_millis(timedelta(seconds=21.8745678)) == timedelta(seconds=21.874)
