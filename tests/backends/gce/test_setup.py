"""Provider setup: what is resolved once, and clear errors for what cannot be."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.backends.gce.conftest import fast_keys
from travis_worker.backends.base import ProviderContext
from travis_worker.backends.gce import create_provider
from travis_worker.errors import ConfigError


async def setup_with(fake, **overrides):
    provider = create_provider(ProviderContext("w", fast_keys(fake, **overrides)))
    try:
        await provider.setup()
    finally:
        await provider.close()
    return provider


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ZONES": "us-central1-a,mars-north1-x"}, "zone 'mars-north1-x'"),
        ({"NETWORK": "nope"}, "network 'nope'"),
        ({"SUBNETWORK": "nope"}, "subnetwork 'nope'"),
        ({"PROJECT_ID": ""}, "missing PROJECT_ID"),
    ],
)
async def test_unresolvable_settings_stop_the_worker(compute_only, overrides, message):
    with pytest.raises(ConfigError, match=message):
        await setup_with(compute_only, **overrides)


async def test_resolves_the_region_its_zones_and_the_subnetwork(compute_only):
    compute_only.zone_status["us-central1-c"] = "DOWN"
    provider = await setup_with(compute_only, ZONES="us-central1-b", SUBNETWORK="default")
    assert provider.region == "us-central1"
    assert provider._zone_chooser.region_zones == ["us-central1-a", "us-central1-f"]
    assert provider._subnetwork_link.endswith("/regions/us-central1/subnetworks/default")
    assert compute_only.count("zones.get") == 1 and compute_only.count("zones.list") == 1


async def test_with_an_endpoint_and_no_account_nothing_asks_the_metadata_server(compute_only):
    asked: list[str] = []

    async def metadata(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(text="travis-test", headers={"Metadata-Flavor": "Google"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", metadata)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    keys = fast_keys(compute_only)
    code = (
        "import asyncio\n"
        "from travis_worker.backends.base import ProviderContext\n"
        "from travis_worker.backends.gce import create_provider\n"
        f"provider = create_provider(ProviderContext('w', {keys!r}))\n"
        "asyncio.run(provider.setup())\n"
    )
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NO_GCE_CHECK", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    environ |= {"GCE_METADATA_HOST": f"127.0.0.1:{port}", "GCE_METADATA_IP": f"127.0.0.1:{port}"}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=environ, cwd=Path(__file__).resolve().parents[3]
    )
    try:
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        await runner.cleanup()
    assert asked == []
    assert compute_only.count("zones.get") == 2  # the child's setup did reach the fake
