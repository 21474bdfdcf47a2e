"""`travis-worker doctor`'s build API check: travis-build answers, and takes the token.

`GET /uptime` needs no auth (travis-build's own health check) and only shows that a
travis-build is there. The token needs an authenticated request, so the check sends
`POST /script` with an empty body. travis-build authenticates in a filter that runs before
the route parses the body (`before '/script'` in lib/travis/api/build/app.rb), hence:

    401 "missing Authorization header"  no token in BUILD_API_URI
    403 "access denied"                 a wrong token
    400 (the JSON parser's message)     the token passed; the empty body was refused before
                                        any script was compiled, so the check costs nothing
    200                                 the token passed (only a server that takes an empty
                                        body says this; travis-build does not)

With TRAVIS_BUILD_AUTH_DISABLED every token passes, so "accepted" is all it can say.
"""

from __future__ import annotations

from urllib.parse import urljoin

from travis_worker.buildscript.api import Answer, BuildApiClient, BuildApiConfig, split_token
from travis_worker.errors import BuildScriptError
from travis_worker.util.checks import Check, Finding, fail, ok

TOKEN_ACCEPTED = (200, 400)
REFUSALS = {
    401: "no token was sent (put it in the URL's user name: https://TOKEN@host/script)",
    403: "the configured token is refused",
}


def build_api_check(config: BuildApiConfig) -> Check:
    url, _ = split_token(config.uri)  # shown without the token
    return Check(f"build API {url}", lambda: _check(BuildApiClient(config)))


async def _check(client: BuildApiClient) -> list[Finding]:
    subject = f"build API {client.url}"
    try:
        try:
            uptime = await client.send("GET", urljoin(client.url, "uptime"))
            if uptime.status != 200:
                return [fail(f"{subject}: GET /uptime answers {uptime.status}; not travis-build?")]
            script = await client.send("POST", client.url)
        finally:
            await client.close()
    except BuildScriptError as exc:
        return [fail(f"{subject} does not answer: {exc.__cause__ or exc}")]
    if script.status in TOKEN_ACCEPTED:
        return [ok(f"{subject} answers{_about(uptime)}; the configured token is accepted")]
    reason = REFUSALS.get(script.status) or script.body.decode(errors="replace").strip()[:200]
    return [fail(f"{subject} answers {script.status} for the configured token: {reason}")]


def _about(uptime: Answer) -> str:
    """` (travis-build v…, up 12.3s)`, from the headers travis-build sends with /uptime."""
    version = uptime.headers.get("travis-build-version", "")
    since = uptime.headers.get("travis-build-uptime", "")
    parts = [f"travis-build {version}" if version else "", f"up {since}" if since else ""]
    shown = ", ".join(part for part in parts if part)
    return f" ({shown})" if shown else ""
