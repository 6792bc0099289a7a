"""A forge's commit status API on loopback, per vendor, that checks every request it gets.

:class:`StatusForge` serves the paths GitHub, Gitea/Forgejo or GitLab serve for commit statuses
(posting one, listing a commit's, reading the repository), records every request with the time
it came, and checks it against that API's contract: the path and method, the token's header
in that forge's form, the JSON body (the state among the forge's states, the context or name,
a description of at most 140 characters). A request that breaks the contract is answered 400
and kept in :attr:`StatusForge.violations`, so a test asserts there are none. Answers can be
scripted (429 with ``Retry-After``, 500, 403, GitLab's 400 and 409) and slowed down.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STATES = {
    "github": {"pending", "success", "failure", "error"},
    "gitea": {"pending", "success", "error", "failure", "warning"},
    "forgejo": {"pending", "success", "error", "failure", "warning"},
    "gitlab": {"pending", "running", "success", "failed", "canceled"},
}
PREFIX = {"github": "", "gitea": "/api/v1", "forgejo": "/api/v1", "gitlab": "/api/v4"}
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Received:
    """One request the forge got.

    Attributes:
        at: ``time.monotonic()`` when it arrived.
        method: The HTTP method.
        path: The raw (still percent-encoded) path.
        repository: ``owner/name`` (GitLab: the decoded project path).
        sha: The commit, for status requests.
        body: The decoded JSON body, or None.
        answer: The status it was answered with.
    """

    at: float
    method: str
    path: str
    repository: str
    sha: str = ""
    body: dict[str, Any] | None = None
    answer: int = 0


@dataclass
class Applied:
    """A status the forge holds."""

    id: int
    repository: str
    sha: str
    context: str
    state: str
    description: str


@dataclass
class StatusForge:
    """One vendor's status API; start it with :meth:`start`.

    Attributes:
        vendor: ``github``, ``gitea``, ``forgejo`` or ``gitlab``.
        token: The only token accepted (others get 401).
        answers: Scripted answers for the next posts, by repository (``*`` for any):
            (status, headers, body), used in order, then 201.
        delay: Seconds every post waits before answering.
        target_prefix: What each post's ``target_url`` must start with; None (the default)
            means a post must carry no ``target_url`` at all (no ``public-url`` configured).
    """

    vendor: str
    token: str = "status-token-value"
    answers: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)
    delay: float = 0.0
    target_prefix: str | None = None
    received: list[Received] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    posted: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    _runner: web.AppRunner | None = None
    url: str = ""

    @property
    def api_url(self) -> str:
        """The API base URL to configure (``forges.<vendor>.api-url``)."""
        return self.url + PREFIX[self.vendor]

    async def start(self) -> StatusForge:
        """Serve on a free loopback port."""
        app = web.Application()
        p = PREFIX[self.vendor]
        if self.vendor == "gitlab":
            app.router.add_post(p + "/projects/{project}/statuses/{sha}", self._post)
            app.router.add_get(
                p + "/projects/{project}/repository/commits/{sha}/statuses", self._list
            )
            app.router.add_get(p + "/projects/{project}", self._repo)
        else:
            app.router.add_post(p + "/repos/{owner}/{repo}/statuses/{sha}", self._post)
            listing = "/statuses/{sha}" if self.vendor != "github" else "/commits/{sha}/statuses"
            app.router.add_get(p + "/repos/{owner}/{repo}" + listing, self._list)
            app.router.add_get(p + "/repos/{owner}/{repo}", self._repo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what a test reads ------------------------------------------------------------------

    def posts(self, repository: str | None = None) -> list[Received]:
        """The status posts answered 2xx (in arrival order), of one repository if given."""
        return [
            r
            for r in self.received
            if r.method == "POST"
            and 200 <= r.answer < 300
            and (repository is None or r.repository == repository)
        ]

    def sequence(self, repository: str | None = None) -> dict[str, list[tuple[str, str]]]:
        """Each context's (state, description) posts that were applied, in order."""
        out: dict[str, list[tuple[str, str]]] = {}
        key = "name" if self.vendor == "gitlab" else "context"
        for r in self.posts(repository):
            assert r.body is not None
            out.setdefault(r.body[key], []).append((r.body["state"], r.body["description"]))
        return out

    # -- the contract -----------------------------------------------------------------------

    def _auth_ok(self, request: web.Request) -> bool:
        if self.vendor == "gitlab":
            return request.headers.get("PRIVATE-TOKEN") == self.token and (
                "Authorization" not in request.headers
            )
        form = "Bearer" if self.vendor == "github" else "token"
        return request.headers.get("Authorization") == f"{form} {self.token}"

    def _repository(self, request: web.Request) -> str:
        if self.vendor == "gitlab":
            raw = request.raw_path.split("/projects/", 1)[1].split("/", 1)[0]
            if "%2F" not in raw.upper() and "/" in request.match_info["project"]:
                self.violations.append(f"project path not URL-encoded: {request.raw_path}")
            return request.match_info["project"]
        return f"{request.match_info['owner']}/{request.match_info['repo']}"

    def _check_body(self, body: Any) -> str:
        if not isinstance(body, dict):
            return "the body is not a JSON object"
        key = "name" if self.vendor == "gitlab" else "context"
        allowed = {"state", key, "description", "target_url"}
        if set(body) - allowed:
            return f"unexpected fields {sorted(set(body) - allowed)}"
        if body.get("state") not in STATES[self.vendor]:
            return f"state {body.get('state')!r} is not one of {sorted(STATES[self.vendor])}"
        context = body.get(key)
        if not isinstance(context, str) or not context or len(context) > 255:
            return f"bad {key} {context!r}"
        description = body.get("description")
        if not isinstance(description, str) or len(description) > 140:
            return f"bad description {description!r}"
        return self._check_target(body.get("target_url"))

    def _check_target(self, target: Any) -> str:
        """A link only when one is configured: an http(s) URL under :attr:`target_prefix`."""
        if self.target_prefix is None:
            return "" if target is None else f"unexpected target_url {target!r}"
        if not isinstance(target, str) or not target.startswith(self.target_prefix):
            return f"target_url {target!r} is not under {self.target_prefix!r}"
        if not target.startswith(("https://", "http://")) or len(target) > 2000:
            return f"bad target_url {target!r}"
        return ""

    async def _post(self, request: web.Request) -> web.StreamResponse:
        got = Received(
            time.monotonic(),
            request.method,
            request.raw_path,
            self._repository(request),
            request.match_info["sha"],
        )
        self.received.append(got)
        self.in_flight += 1
        try:
            try:
                got.body = await request.json()
            except ValueError:
                got.body = None
            if self.delay:
                # Like a forge, it finishes what it started even when the client is gone.
                await asyncio.shield(asyncio.sleep(self.delay))
            got.answer, response = self._answer_post(request, got)
        finally:
            self.in_flight -= 1
        self.posted.set()
        return response

    def _answer_post(self, request: web.Request, got: Received) -> tuple[int, web.Response]:
        problem = self._check_body(got.body)
        if not _SHA.match(got.sha):
            problem = f"not a commit id: {got.sha!r}"
        if request.content_type != "application/json":
            problem = f"content type {request.content_type!r}"
        if problem:
            self.violations.append(f"{request.raw_path}: {problem}")
            return 400, web.json_response({"message": problem}, status=400)
        if not self._auth_ok(request):
            self.violations.append(f"{request.raw_path}: wrong or missing token header")
            return 401, web.json_response({"message": "Bad credentials"}, status=401)
        for which in (got.repository, "*"):
            script = self.answers.get(which)
            if script:
                status, headers, text = script.pop(0)
                return status, web.Response(
                    status=status, headers=headers, text=text, content_type="application/json"
                )
        assert got.body is not None
        key = "name" if self.vendor == "gitlab" else "context"
        mine = [
            a
            for a in self.applied
            if (a.repository, a.sha, a.context) == (got.repository, got.sha, got.body[key])
        ]
        if self.vendor == "gitlab" and mine and mine[-1].state == got.body["state"]:
            text = json.dumps({"message": f"Cannot transition status via :{got.body['state']}"})
            return 400, web.Response(status=400, text=text, content_type="application/json")
        applied = Applied(
            len(self.applied) + 1,
            got.repository,
            got.sha,
            got.body[key],
            got.body["state"],
            got.body.get("description", ""),
        )
        self.applied.append(applied)
        return 201, web.json_response(self._shown(applied), status=201)

    def _shown(self, a: Applied) -> dict[str, Any]:
        key = "name" if self.vendor == "gitlab" else "context"
        state = "status" if self.vendor == "gitlab" else "state"
        return {"id": a.id, key: a.context, state: a.state, "description": a.description}

    async def _list(self, request: web.Request) -> web.StreamResponse:
        got = Received(
            time.monotonic(),
            "GET",
            request.raw_path,
            self._repository(request),
            request.match_info["sha"],
        )
        self.received.append(got)
        if not self._auth_ok(request):
            got.answer = 401
            return web.json_response({"message": "Bad credentials"}, status=401)
        got.answer = 200
        found = [
            self._shown(a)
            for a in reversed(self.applied)
            if (a.repository, a.sha) == (got.repository, got.sha)
        ]
        return web.json_response(found)

    async def _repo(self, request: web.Request) -> web.StreamResponse:
        got = Received(time.monotonic(), "GET", request.raw_path, self._repository(request))
        self.received.append(got)
        if not self._auth_ok(request):
            got.answer = 401
            return web.json_response({"message": "Bad credentials"}, status=401)
        got.answer = 200
        return web.json_response({"id": 1, "full_name": got.repository})
