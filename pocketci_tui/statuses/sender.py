"""The sender: delivers the commit status outbox to the forges, in order, never twice.

One task reads the undelivered rows of the outbox and starts one worker per context (a forge's
repository's commit's context) not already being worked on, at most :attr:`concurrency` at a
time. A worker claims the newest row of its context (the older ones are superseded: the forge
only needs the last state), sends it, records the answer and goes on until its context has
nothing left; contexts never wait for each other, so a failing repository holds up no other.

Answers: a 2xx (or GitLab's "Cannot transition status", a state already applied) marks the row
``sent``; 429, 5xx, GitLab's 409 and network errors are retried with exponential backoff and
jitter, or after the time ``Retry-After`` or GitHub's rate-limit headers ask for; 401, 403,
404, 422 and other refusals mark it ``failed`` with the reason, log it and raise a problem.

Never twice: a row is marked ``sending`` (in the database) before it is handed to the forge
and ``sent`` after the 2xx. A process that dies between the two (kill -9, power loss) leaves
it ``sending``; so does an answer that may have applied the status without saying so (a 5xx,
a dropped connection). Before such a row is sent again, the forge's statuses of the commit are
read, and when the newest of its context is this very state and description the row is marked
``sent`` without sending it again. The window left is the forge itself failing to list a status
it has just applied, in which case the same state and description are posted once more, which
changes nothing the forge shows.

The token is read from the secret store per repository (``status-token``, else ``token``),
kept in memory for a minute, sent only to the configured API base URL over verified TLS (no
redirects are followed, so it never reaches another host), and masked in every text kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable

import aiohttp
from yarl import URL

from pocketci_tui.config import Settings
from pocketci_tui.model import EventUpdated, RunUpdated
from pocketci_tui.problems import Problem, Problems
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.statuses.apis import APIS, StatusApi, StatusRequest, Verdict
from pocketci_tui.store import Store, StoreError
from pocketci_tui.store.outbox import OutboxRow

log = logging.getLogger("pocketci_tui.statuses")

MAX_ANSWER = 64 * 1024
"""The most bytes of a forge's answer read (its error message is at the start)."""

MIN_LOOK = 0.02
"""The least seconds between two reads of the outbox (a burst of run changes is one read)."""

TOKEN_TTL = 60.0
"""Seconds a token read from the secret store is reused."""


def mask(text: str, *secrets: str) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class StatusSender:
    """Delivers the outbox of one store.

    Args:
        store: The store whose outbox is delivered.
        secrets: Where the tokens are.
        settings: The configuration (replace :attr:`settings` on a reload).
        backoff_base: Seconds before the first retry (doubling each time, with jitter).
        backoff_cap: The longest wait between two tries.
        poll: Seconds between two looks at the outbox when nothing wakes the sender.
        concurrency: Contexts delivered at once.
        request_timeout: Seconds one request may take.
    """

    def __init__(
        self,
        store: Store,
        secrets: SecretStore,
        settings: Settings,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        poll: float = 5.0,
        concurrency: int = 4,
        request_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.settings = settings
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll = poll
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str, str, str]] = set()
        self._retry_at: dict[tuple[str, str, str, str], float] = {}
        self._failures: dict[tuple[str, str, str, str], int] = {}
        self._tokens: dict[str, tuple[float, str | None]] = {}
        self._problems = Problems()
        self._delivery_watchers: list[Callable[[OutboxRow], None]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start delivering (rows left by a stop included)."""
        connector = aiohttp.TCPConnector(limit=max(4, self.concurrency * 2), ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.request_timeout, connect=10),
            trust_env=False,
        )
        self._task = asyncio.create_task(self._run(), name="pocketci-statuses")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop delivering; what is undelivered stays in the outbox for the next start.

        Args:
            grace: Seconds to go on delivering first, so the states the last runs ended in
                (cancelled by the stop) reach the forge now rather than at the next start.
                Statuses waiting for a retry are not waited for.
        """
        if grace > 0 and self._task is not None:
            await self._flush(grace)
        self._stopping = True
        tasks = [t for t in (self._task, *self._workers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _flush(self, grace: float) -> None:
        """Wait until nothing is left to send but statuses waiting for a retry, or ``grace``."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while True:
                    self.wake()
                    try:
                        keys = await self.store.due_status_keys(self.concurrency * 4)
                    except StoreError:
                        return
                    now = loop.time()
                    if all(self._retry_at.get(key, 0.0) > now for key in keys):
                        return
                    await asyncio.sleep(MIN_LOOK)

    def wake(self, notice: object = None) -> None:
        """Look at the outbox soon; usable as a notice subscriber.

        Of the engine's notices only those of a run or an event changing state can come with
        new statuses; the others (a delivery stored, output lines) are ignored, so a flood of
        deliveries does not make the sender read the outbox for each one.
        """
        if notice is None or isinstance(notice, RunUpdated | EventUpdated):
            self._wake.set()

    def problems(self) -> list[Problem]:
        """The repositories whose statuses the forge refused, one problem each."""
        return list(self._problems)

    def watch_problems(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` whenever :meth:`problems` changed; return a function that stops
        the calls (the status bar is told instead of asking)."""
        return self._problems.watch(callback)

    def watch_deliveries(self, callback: Callable[[OutboxRow], None]) -> Callable[[], None]:
        """Call ``callback`` with each row whose delivery changed (claimed, sent, refused, put
        back to retry), as it is recorded; return a function that stops the calls."""
        self._delivery_watchers.append(callback)
        return lambda: self._delivery_watchers.remove(callback)

    def _told(self, row: OutboxRow | None, *, claimed: bool = False) -> None:
        """Tell the watchers of a row (a claimed one as the database has it now: sending)."""
        if row is None:
            return
        if claimed:
            row = dataclasses.replace(row, status="sending")
        for callback in list(self._delivery_watchers):
            try:
                callback(row)
            except Exception:
                log.exception("a commit status watcher failed")

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        while not self._stopping:
            # However often woken, the outbox is read at most every MIN_LOOK seconds.
            since = loop.time() - last
            if since < MIN_LOOK:
                await asyncio.sleep(MIN_LOOK - since)
            last = loop.time()
            self._wake.clear()
            try:
                # Enough to find free contexts past those being sent or waiting for a retry.
                wanted = self.concurrency * 4 + len(self._busy) + len(self._retry_at)
                keys = await self.store.due_status_keys(wanted)
            except StoreError as exc:
                log.warning("cannot read the status outbox: %s", exc)
                keys = []
            now = loop.time()
            for key in keys:
                if len(self._busy) >= self.concurrency:
                    break
                if key in self._busy or self._retry_at.get(key, 0.0) > now:
                    continue
                self._busy.add(key)
                worker = asyncio.create_task(self._drain(key), name=f"status-{key[1]}")
                self._workers.add(worker)
                worker.add_done_callback(self._workers.discard)
            wait = self.poll
            later = [at - now for key, at in self._retry_at.items() if key not in self._busy]
            if later:
                wait = max(0.0, min(wait, *later))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that comes as the wake-up does, and stop() would wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _drain(self, key: tuple[str, str, str, str]) -> None:
        """Deliver a context's rows until none is left or the forge asks to wait.

        Recording one row's outcome and claiming the context's next row are one write.
        """
        try:
            async with self._slots:
                row = await self.store.claim_status(key)
                self._told(row, claimed=True)
                while row is not None:
                    status, detail, more = await self._deliver_one(key, row)
                    settled = dataclasses.replace(row, status=status, detail=detail)
                    row = await self.store.settle_status(row.id, status, detail, more)
                    self._told(settled)
                    self._told(row, claimed=True)
        except StoreError as exc:
            log.warning("cannot record a status delivery: %s", exc)
            self._back_off(key)
        except Exception:
            log.exception("delivering the statuses of %s failed", key[1])
            self._back_off(key)
        finally:
            self._busy.discard(key)
            self._wake.set()

    async def _deliver_one(
        self, key: tuple[str, str, str, str], row: OutboxRow
    ) -> tuple[str, str, tuple[str, str, str, str] | None]:
        """Send one claimed row.

        Returns:
            The row's new delivery status, its detail, and the context to claim the next row
            of (None when the context must wait for a retry).
        """
        verdict, token = await self._attempt(row)
        detail = mask(verdict.reason, token or "")
        if verdict.outcome == "sent":
            self._failures.pop(key, None)
            self._retry_at.pop(key, None)
            self._problems.clear(_problem_key(row))
            return "sent", detail, key
        if verdict.outcome == "failed":
            self._failures.pop(key, None)
            self._refused(row, detail)
            return "failed", detail, key
        delay = self._back_off(key, verdict.wait)
        log.info(
            "status for %s %s not posted yet (%s); retrying in %.1fs",
            row.repository,
            row.context,
            detail,
            delay,
        )
        status = "sending" if verdict.ambiguous else "queued"
        return status, f"retrying in {delay:.1f}s: {detail}", None

    def _back_off(self, key: tuple[str, str, str, str], asked: float | None = None) -> float:
        """Count a failed try of a context and set when it is tried again; return the wait."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self._delay(failures, asked)
        self._retry_at[key] = asyncio.get_running_loop().time() + delay
        return delay

    def _delay(self, failures: int, asked: float | None) -> float:
        """The wait before the next try: what the forge asked, else backoff with jitter."""
        if asked is not None:
            return asked + random.uniform(0, 0.1 * asked)
        step = min(self.backoff_cap, self.backoff_base * 2.0 ** min(failures - 1, 30))
        return step * random.uniform(0.5, 1.0)

    def _refused(self, row: OutboxRow, reason: str) -> None:
        message = f"status not posted to {row.repository}: {reason}"
        log.warning("%s (%s %s)", message, row.context, row.sha[:12])
        self._problems.raise_problem(
            Problem(
                key=_problem_key(row),
                short=f"statuses refused: {row.repository}",
                detail=message,
                fix="check the repository's status-token with `pocketci-tui check`",
            )
        )

    # -- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, row: OutboxRow) -> tuple[Verdict, str | None]:
        """Send one row (checking first when it may already be there)."""
        api = APIS.get(row.vendor)
        base = self.settings.api_url(row.vendor)
        if api is None or not base:
            why = f"no API address for {row.vendor}: set forges.{row.vendor}.url"
            return Verdict("failed", why), None
        repo = self.settings.repo_for(row.vendor, row.repository)
        name = repo.status_token_name if repo is not None else ""
        if not name:
            return Verdict("failed", "no token: set the repository's status-token or token"), None
        try:
            token = await self._token(name)
        except (SecretStoreError, TimeoutError) as exc:
            return Verdict("retry", f"the secret store did not answer: {exc or 'timed out'}"), None
        if not token:
            return Verdict(
                "failed", f"the token {name!r} is not set: run `pocketci-tui secrets set {name}`"
            ), None
        try:
            if row.status == "sending" and await self._already_there(api, base, row, token):
                return Verdict("sent", "already there"), token
            target = self.settings.status_target(row.event_id)
            status, headers, text = await self._send(api.post(base, row, token, target))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"network error: {type(exc).__name__}: {exc}"
            return Verdict("retry", reason, ambiguous=True), token
        except ValueError:  # its message may quote the header, token and all
            why = f"the token {name!r} is not a valid HTTP header value (a line break in it?)"
            return Verdict("failed", why), token
        return api.verdict(status, headers, text), token

    async def _already_there(self, api: StatusApi, base: str, row: OutboxRow, token: str) -> bool:
        """True when the forge already shows this row's state (a send of it may have gone)."""
        status, _, text = await self._send(api.listing(base, row, token))
        if not 200 <= status < 300:
            return False
        try:
            return api.already_there(row, json.loads(text))
        except ValueError:
            return False

    async def _send(self, request: StatusRequest) -> tuple[int, dict[str, str], str]:
        """Send a request; no redirects; the answer's status, headers and start of body."""
        session = self._session
        if session is None:
            raise aiohttp.ClientError("the sender is stopped")
        async with session.request(
            request.method,
            URL(request.url, encoded=True),
            headers=request.headers,
            json=request.body,
            allow_redirects=False,
        ) as resp:
            body = await resp.content.read(MAX_ANSWER)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, headers, body.decode("utf-8", "replace")

    async def _token(self, name: str) -> str | None:
        now = time.monotonic()
        cached = self._tokens.get(name)
        if cached is not None and now - cached[0] < TOKEN_TTL:
            return cached[1]
        async with asyncio.timeout(10):
            value = await self.secrets.get(name)
        value = value.strip() if value else value  # a pasted token's trailing newline
        self._tokens[name] = (now, value)
        return value


def _problem_key(row: OutboxRow) -> str:
    return f"statuses:{row.vendor}:{row.repository}"
