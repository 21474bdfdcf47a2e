"""Image selectors: travis-ci/worker's tables and tag sets, and job-board over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web

from travis_worker.backends.google.images import (
    ApiSelector,
    EnvSelector,
    ImageSelectError,
    SelectorParams,
    request_body,
    tag_sets,
)
from travis_worker.errors import JobAbortError
from travis_worker.util.backoff import Backoff

TABLE = {
    "default": "travis:default",
    "linux": "travis:linux",
    "dist_xenial": "travis:xenial",
    "dist_xenial_python": "travis:py3k",
    "group_edge": "travis:edge",
    "group_edge_ruby": "travis:ruby9001",
    "language_ruby": "travis:ruby8999",
    "python": "travis:python",
}


@pytest.mark.parametrize(
    ("expected", "params"),
    [
        ("travis:default", SelectorParams(language="clojure")),
        ("travis:edge", SelectorParams(language="java", group="edge")),
        ("travis:linux", SelectorParams(language="bf", group="wat", os="linux")),
        ("travis:py3k", SelectorParams(language="python", dist="xenial")),
        ("travis:ruby8999", SelectorParams(language="ruby")),
        ("travis:ruby9001", SelectorParams(language="ruby", group="edge")),
        ("travis:xenial", SelectorParams(language="java", dist="xenial")),
    ],
)
async def test_env_selector_tables(expected, params):
    assert await EnvSelector(TABLE).select(params) == expected


async def test_env_selector_follows_one_alias_and_answers_default_without_a_table():
    selector = EnvSelector({"aliases": "foo", "alias_foo": "travis:foo", "ruby": "alias_foo"})
    assert await selector.select(SelectorParams(language="ruby")) == "travis:foo"
    assert await EnvSelector({}).select(SelectorParams(language="ruby")) == "default"


async def test_env_selector_answers_are_every_image_a_job_can_get():
    table = {
        "aliases": "foo",
        "alias_foo": "travis:foo",
        "ruby": "alias_foo",
        "dist_jammy": "travis:jammy",
        "selector_type": "env",  # IMAGE_SELECTOR_TYPE lands in the table but names no image
        "project_id": "images",
        "default": "travis:default",
    }
    selector = EnvSelector(table)

    answers = selector.answers()

    assert answers == {"travis:foo", "travis:jammy", "travis:default"}
    for language, dist in (("ruby", ""), ("go", "jammy"), ("go", "")):
        assert await selector.select(SelectorParams(language=language, dist=dist)) in answers
    assert EnvSelector({"ruby": "alias_foo"}).answers() == {"alias_foo", "default"}


def sets(params: SelectorParams) -> list[tuple[list[str], bool]]:
    return [(list(tag_set.tags), tag_set.is_default) for tag_set in tag_sets(params)]


def test_tag_sets_are_the_go_workers():
    ruby = SelectorParams(infra="gce", language="ruby", os="linux", job_id=4, repo="corp/frob")
    assert sets(ruby) == [
        (["language_ruby:true", "os:linux"], False),
        (["language_ruby:true", "os:linux"], False),
        (["language_ruby:true"], True),
        (["os:linux"], True),
    ]
    osx = SelectorParams(
        language="node_js", osx_image="xcode6.1", dist="yosammity", group="fancy", os="osx"
    )
    everything = ["dist:yosammity", "group_fancy:true", "language_node_js:true"]
    assert sets(osx) == [
        ([*everything, "os:osx", "osx_image:xcode6.1"], False),
        (["os:osx", "osx_image:xcode6.1"], False),
        (everything, False),
        (["dist:yosammity", "language_node_js:true"], False),
        (["group_fancy:true", "language_node_js:true"], False),
        (["language_node_js:true", "os:osx"], False),
        (["dist:yosammity"], False),
        (["language_node_js:true"], True),
        (["osx_image:xcode6.1"], True),
        (["dist:yosammity"], True),
        (["group_fancy:true"], True),
        (["os:osx"], True),
    ]


def test_request_body_lines():
    params = SelectorParams(infra="gce", language="ruby", os="linux", job_id=4, repo="corp/frob")
    lines = request_body(params).split("\n")
    assert lines[0] == (
        "fields%5Bimages%5D=name&gpu_vm_type=&infra=gce&is_default=false&job_id=4&limit=1"
        "&repo=corp%2Ffrob&tags=language_ruby%3Atrue%2Cos%3Alinux"
    )
    assert lines[-2] == (
        "fields%5Bimages%5D=name&gpu_vm_type=&infra=gce&is_default=true&job_id=4&limit=1"
        "&repo=corp%2Ffrob"
    )
    assert lines[-1] == "" and len(lines) == 6


def test_trailing_comma_aborts_the_job():
    with pytest.raises(JobAbortError) as caught:
        tag_sets(SelectorParams(language="ruby", dist="yosamitty,"))
    assert caught.value.user_message == (
        'job was aborted because tag "dist:yosamitty," contained ",", this can happen when '
        ".travis.yml has a trailing comma"
    )


class JobBoard:
    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []
        self.requests: list[tuple[str, dict[str, str], str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.text()))
        status, body = self.answers.pop(0) if self.answers else (200, '{"data": []}')
        return web.Response(status=status, text=body)


@pytest.fixture
async def job_board() -> AsyncIterator[tuple[JobBoard, str]]:
    board = JobBoard()
    app = web.Application()
    app.router.add_post("/images/query", board.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield board, f"http://user:secret@127.0.0.1:{port}/images/query"
    await runner.cleanup()


def quick(url: str) -> ApiSelector:
    return ApiSelector(url, retry_for=timedelta(seconds=1), backoff=Backoff(initial=0.05))


async def test_api_selector_asks_job_board(job_board):
    board, url = job_board
    board.answers.append((200, '{"data": [{"id": 1, "infra": "gce", "name": "travis-ci-x"}]}'))
    selector = quick(url)
    params = SelectorParams(infra="gce", language="ruby", os="linux", job_id=4, repo="corp/frob")
    assert await selector.select(params) == "travis-ci-x"
    assert await selector.select(params) == "default"  # {"data": []}
    await selector.close()
    path, headers, body = board.requests[0]
    assert path == "/images/query"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded; boundary=NL"
    assert headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
    assert body == request_body(params)


async def test_api_selector_retries_then_reports_the_go_error(job_board):
    board, url = job_board
    board.answers += [(500, ""), (200, '{"data": [{"name": "after-retry"}]}')]
    selector = quick(url)
    assert await selector.select(SelectorParams(language="go")) == "after-retry"
    board.answers += [(500, "")] * 100
    with pytest.raises(ImageSelectError) as caught:
        await selector.select(SelectorParams(language="go"))
    assert 'expected 200 status code from job-board, received status=500 body=""' in str(
        caught.value
    )
    board.answers[:] = [(200, "{")]
    with pytest.raises(ImageSelectError):
        await selector.select(SelectorParams(language="go"))
    await selector.close()
