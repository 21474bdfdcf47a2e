"""travis-worker-fetch-secrets (deploy/docker/fetch_secrets.py) against an HTTP fake of
Secret Manager and of the OAuth token endpoint, with real google-auth credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.deploy.support import DEPLOY
from tests.support.keys import service_account_info

SCRIPT = DEPLOY / "docker" / "fetch_secrets.py"
TOKEN = "token-from-the-fake"


@dataclass
class SecretManagerFake:
    secrets: dict[str, bytes] = field(default_factory=dict)
    """`projects/P/secrets/S/versions/V` → payload."""
    failures: list[int] = field(default_factory=list)
    """Statuses to answer before serving normally."""
    requests: list[str] = field(default_factory=list)
    endpoint: str = ""


@pytest.fixture
async def secret_manager() -> AsyncIterator[SecretManagerFake]:
    fake = SecretManagerFake()

    async def token(_: web.Request) -> web.Response:
        return web.json_response(
            {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        )

    async def access(request: web.Request) -> web.Response:
        name = request.path.removeprefix("/v1/").removesuffix(":access")
        fake.requests.append(name)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": {"code": 401}}, status=401)
        if fake.failures:
            return web.json_response({"error": {"code": 503}}, status=fake.failures.pop(0))
        if name not in fake.secrets:
            return web.json_response({"error": {"code": 404, "message": "not found"}}, status=404)
        data = base64.b64encode(fake.secrets[name]).decode()
        return web.json_response({"name": name, "payload": {"data": data}})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/v1/projects/{project}/secrets/{secret}/versions/{version}", access)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


async def fetch(fake: SecretManagerFake, tmp_path: Path, *pairs: str) -> tuple[int, str, str]:
    # A service account key whose token endpoint is the fake: google-auth signs a real JWT
    # and exchanges it there, as it would at oauth2.googleapis.com.
    credentials = tmp_path / "credentials.json"
    key = service_account_info(
        "worker@ci.iam.gserviceaccount.com", token_uri=f"{fake.endpoint}/token"
    )
    credentials.write_text(json.dumps(key))
    env = {**os.environ, "GOOGLE_APPLICATION_CREDENTIALS": str(credentials), "NO_GCE_CHECK": "True"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--project=ci", f"--endpoint={fake.endpoint}", *pairs,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_prints_an_env_file_of_the_secrets(
    secret_manager: SecretManagerFake, tmp_path: Path
) -> None:
    secret_manager.secrets["projects/ci/secrets/amqp/versions/latest"] = b"amqps://u:p@host/v\n"
    secret_manager.secrets["projects/ci/secrets/build/versions/3"] = b"https://t@build/script"

    code, out, err = await fetch(
        secret_manager,
        tmp_path,
        "TRAVIS_WORKER_AMQP_URI=amqp",
        "TRAVIS_WORKER_BUILD_API_URI=build@3",
    )

    assert code == 0, err
    assert out == (
        "TRAVIS_WORKER_AMQP_URI=amqps://u:p@host/v\n"
        "TRAVIS_WORKER_BUILD_API_URI=https://t@build/script\n"
    )


async def test_retries_while_secret_manager_is_unavailable(
    secret_manager: SecretManagerFake, tmp_path: Path
) -> None:
    secret_manager.secrets["projects/ci/secrets/amqp/versions/latest"] = b"amqp://x"
    secret_manager.failures = [503, 429]

    code, out, _ = await fetch(secret_manager, tmp_path, "TRAVIS_WORKER_AMQP_URI=amqp")

    assert (code, out) == (0, "TRAVIS_WORKER_AMQP_URI=amqp://x\n")
    assert len(secret_manager.requests) == 3


async def test_a_missing_secret_fails_and_prints_nothing(
    secret_manager: SecretManagerFake, tmp_path: Path
) -> None:
    code, out, err = await fetch(secret_manager, tmp_path, "TRAVIS_WORKER_AMQP_URI=nope")

    assert (code, out) == (1, "")
    assert "projects/ci/secrets/nope/versions/latest" in err
    assert len(secret_manager.requests) == 1, "a 404 is not retried"


async def test_a_multi_line_secret_cannot_become_an_env_line(
    secret_manager: SecretManagerFake, tmp_path: Path
) -> None:
    secret_manager.secrets["projects/ci/secrets/amqp/versions/latest"] = b"line one\nline two"

    code, out, err = await fetch(secret_manager, tmp_path, "TRAVIS_WORKER_AMQP_URI=amqp")

    assert (code, out) == (1, "")
    assert "several lines" in err
