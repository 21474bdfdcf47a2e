"""The payload filter: a helper program that may rewrite the job payload."""

from __future__ import annotations

import stat

from travis_worker.processor.steps.payload_filter import filter_payload


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
