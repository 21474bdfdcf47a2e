"""Image selectors: which image a job boots (travis-ci/worker `image/`).

A selector answers an image name, or `default` when nothing specific matches (the
backend then uses its IMAGE_DEFAULT). `EnvSelector` looks the job up in a table of
`IMAGE_*` settings; `ApiSelector` asks job-board. Both try the most specific
combination of the job's os/dist/group/language first, in travis-ci/worker's order,
because operators' image tables and job-board's tags were written for that order.
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import aiohttp

from travis_worker.backends.google.api_types import Image
from travis_worker.compat import texts
from travis_worker.errors import BackendError, JobAbortError
from travis_worker.util.backoff import Backoff, retry

DEFAULT = "default"
# IMAGE_* settings that are in the env selector's table (it takes every IMAGE_* key, as
# travis-ci/worker's does) but name no image: no candidate key equals one of them.
_NOT_IMAGES = frozenset({"aliases", "default", "selector_type", "selector_url", "project_id"})


class ImageSelectError(BackendError):
    """The selector could not answer (job-board down or answering nonsense)."""


@dataclass(frozen=True)
class SelectorParams:
    infra: str = ""
    language: str = ""
    osx_image: str = ""
    dist: str = ""
    group: str = ""
    os: str = ""
    job_id: int = 0
    repo: str = ""
    gpu_vm_type: str = ""


class ImageSelector(Protocol):
    async def select(self, params: SelectorParams) -> str:
        """An image name, or `default`. Raises JobAbortError or ImageSelectError."""
        ...

    async def close(self) -> None: ...


class ImageFinder(Protocol):
    async def find_images(self, project: str, name_pattern: str) -> list[Image]: ...


async def newest_image(api: ImageFinder, project: str, name: str) -> Image | None:
    """The image a selector's answer `name` stands for: the newest (greatest name) of those
    whose name matches `name` as a pattern from its start, as travis-ci/worker looks it up."""
    images = await api.find_images(project, f"^{name}")
    return max(images, key=lambda image: image.name, default=None)


class EnvSelector:
    """Looks candidate keys up in a table built from the `IMAGE_*` settings."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)

    @staticmethod
    def candidates(p: SelectorParams) -> list[str]:
        lang, dist, group, os = p.language, p.dist, p.group, p.os
        keys: list[str] = []
        if os == "osx" and p.osx_image:
            if lang:
                keys.append(f"osx_image_{p.osx_image}_{lang}")
            keys.append(f"osx_image_{p.osx_image}")
        if dist and group and lang:
            keys += [f"dist_{dist}_group_{group}_{lang}", f"{dist}_{group}_{lang}"]
        if dist and lang:
            keys += [f"dist_{dist}_{lang}", f"{dist}_{lang}"]
        if group and lang:
            keys += [f"group_{group}_{lang}", f"{group}_{lang}"]
        if os and lang:
            keys += [f"os_{os}_{lang}", f"{os}_{lang}"]
        if dist:
            keys += [f"default_dist_{dist}", f"dist_{dist}", dist]
        if group:
            keys += [f"default_group_{group}", f"group_{group}", group]
        if lang:
            keys += [f"language_{lang}", lang]
        if os:
            keys += [f"default_os_{os}", f"os_{os}", os]
        return keys

    async def select(self, params: SelectorParams) -> str:
        chosen = next((self.table[k] for k in self.candidates(params) if k in self.table), DEFAULT)
        # One level of indirection: `default` → IMAGE_DEFAULT, `alias_foo` → IMAGE_ALIAS_FOO.
        return self.table.get(chosen, chosen)

    def answers(self) -> set[str]:
        """Every answer `select` can give, the fallback included: what `doctor` resolves."""
        named = [value for key, value in self.table.items() if key not in _NOT_IMAGES]
        return {self.table.get(value, value) for value in [*named, DEFAULT]}

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class TagSet:
    tags: tuple[str, ...]
    is_default: bool


def tag_sets(p: SelectorParams) -> list[TagSet]:
    """job-board queries, most specific first, after the "full" set of all default tags.

    Raises JobAbortError when a tag holds a comma (a trailing comma in .travis.yml).
    """
    lang_tag = f"language_{p.language}:true"
    group_tag = f"group_{p.group}:true"
    specific: list[tuple[str, ...]] = []
    if p.os == "osx" and p.osx_image:
        specific.append((f"osx_image:{p.osx_image}", "os:osx"))
    if p.dist and p.group and p.language:
        specific.append((f"dist:{p.dist}", group_tag, lang_tag))
    if p.dist and p.language:
        specific.append((f"dist:{p.dist}", lang_tag))
    if p.group and p.language:
        specific.append((group_tag, lang_tag))
    if p.os and p.language:
        specific.append((f"os:{p.os}", lang_tag))
    if p.dist:
        specific.append((f"dist:{p.dist}",))
    defaults = [
        tag
        for tag, wanted in (
            (lang_tag, p.language),
            (f"osx_image:{p.osx_image}", p.os == "osx" and p.osx_image),
            (f"dist:{p.dist}", p.dist),
            (group_tag, p.group),
            (f"os:{p.os}", p.os),
        )
        if wanted
    ]
    sets = [TagSet(tuple(sorted(defaults)), False)]
    sets += [TagSet(tuple(sorted(tags)), False) for tags in specific]
    sets += [TagSet((tag,), True) for tag in defaults]
    for tag_set in sets:
        for tag in tag_set.tags:
            if "," in tag:
                raise JobAbortError(texts.image_tag_abort(tag))
    return sets


def request_body(p: SelectorParams) -> str:
    """One form-encoded query per tag set, then a catch-all default query, one per line."""

    def line(tags: tuple[str, ...], is_default: bool) -> str:
        fields = {
            "fields[images]": "name",
            "gpu_vm_type": p.gpu_vm_type,
            "infra": p.infra,
            "is_default": "true" if is_default else "false",
            "job_id": str(p.job_id),
            "limit": "1",
            "repo": p.repo,
        }
        if tags:
            fields["tags"] = ",".join(tags)
        return urlencode(sorted(fields.items()))

    lines = [line(tag_set.tags, tag_set.is_default) for tag_set in tag_sets(p)]
    lines.append(line((), True))
    return "\n".join(lines) + "\n"


class ApiSelector:
    """Asks job-board (`POST IMAGE_SELECTOR_URL`) for the best image of a job."""

    def __init__(
        self,
        url: str,
        *,
        retry_for: timedelta = timedelta(minutes=1),
        backoff: Backoff | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        self._headers = {"Content-Type": "application/x-www-form-urlencoded; boundary=NL"}
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = f"Basic {b64encode(user_pass.encode()).decode()}"
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self.retry_for = retry_for.total_seconds()
        self.backoff = backoff or Backoff()
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def select(self, params: SelectorParams) -> str:
        body = request_body(params)
        answer = await retry(
            lambda: self._post(body),
            retry_on=ImageSelectError,
            backoff=self.backoff,
            give_up_after=self.retry_for,
        )
        try:
            data = json.loads(answer)["data"]
            return str(data[0]["name"]) if data else DEFAULT
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ImageSelectError(f"unexpected answer from job-board: {exc}") from exc

    async def _post(self, body: str) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout)
            )
        try:
            async with self._session.post(
                self.url, data=body.encode(), headers=self._headers
            ) as response:
                answer = await response.read()
                if response.status != 200:
                    quoted = json.dumps(answer.decode(errors="replace"))  # Go's %q, nearly
                    raise ImageSelectError(
                        "expected 200 status code from job-board, received "
                        f"status={response.status} body={quoted}"
                    )
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ImageSelectError(f"job-board request failed: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
