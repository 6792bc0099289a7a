"""The webhook intake: an aiohttp application that verifies, stores, then acknowledges.

One handler serves ``POST /webhooks/{vendor}`` for every registered forge; the route, never
the headers, decides the forge (an unknown one is 404). Order of work (SPEC 4.4):

1. cheap header checks: a delivery another forge sent, posted to this forge's URL (400 naming
   the right one), encoding (415), content type (415), declared size (413), signature or token
   header present (401), the event and delivery headers (400);
2. the body, read with a size bound (413) and a deadline (408);
3. the forge's verification over the raw bytes, constant-time (401), before any parsing;
4. the strict JSON decode (400);
5. normalization, then one durable commit (503 when it fails: never a 2xx for what is not on
   disk), then the sink is told, then the reply: 202 stored, 200 stored-but-ignored, 202
   duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from pocketci_tui import __version__
from pocketci_tui.config import Settings
from pocketci_tui.forges.base import (
    REFIRE_HEADER,
    BodyCheck,
    DeliveryRefused,
    Forge,
    Verifier,
    refire_allowed,
)
from pocketci_tui.forges.payload import PayloadError, parse_payload
from pocketci_tui.forges.registry import Registry, default_registry
from pocketci_tui.intake import keys
from pocketci_tui.intake.budget import BodyHold, BudgetLimits, ByteBudget
from pocketci_tui.intake.rejections import RejectionLog
from pocketci_tui.logging_setup import safe_text
from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow, webhook_path
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Replayed, Store, StoreError

log = logging.getLogger("pocketci_tui.intake")

MAX_BODY = 25 * 1024 * 1024
"""The largest body accepted: GitHub's own cap of 25 MiB."""

_SIGNATURE_ERROR = "missing or invalid signature"
_JSON = "application/json"


class EventSink(Protocol):
    """What the intake tells about each stored delivery (the dispatcher)."""

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take note of a stored delivery; called after the commit, before the reply.

        It must return quickly: it only wakes the dispatcher.
        """
        ...


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """Size and time limits of the intake.

    Attributes:
        max_body: The largest body accepted, in bytes.
        body_timeout: Seconds a client has to send the whole body.
        body_idle_timeout: Seconds a body may pause between two chunks.
        budget: How many unverified body bytes may be held at once, across connections.
        header_timeout: Seconds a connection has to start a request (headers included);
            enforced by :class:`~pocketci_tui.intake.listener.Listener`.
        secret_ttl: Seconds a webhook secret is cached after a successful read.
        secret_timeout: Seconds to wait for the secret store.
    """

    max_body: int = MAX_BODY
    body_timeout: float = 30.0
    body_idle_timeout: float = 10.0
    budget: BudgetLimits = field(default_factory=BudgetLimits)
    header_timeout: float = 30.0
    secret_ttl: float = 30.0
    secret_timeout: float = 5.0


class SecretUnavailable(Exception):
    """The webhook secret cannot be read now (the intake answers 503)."""


class SecretCache:
    """Reads one webhook secret from the secret store, caching it for a short time.

    Args:
        secrets: The secret store.
        name: The entry holding the webhook secret.
        ttl: Seconds a value read is reused.
        timeout: Seconds to wait for the store.
    """

    def __init__(self, secrets: SecretStore, name: str, ttl: float, timeout: float) -> None:
        self._secrets = secrets
        self._name = name
        self._ttl = ttl
        self._timeout = timeout
        self._value = ""
        self._expires = 0.0
        self._refresh_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._verifiers: dict[str, Verifier] = {}
        self._verifier_secret = ""

    async def get(self) -> str:
        """Return the webhook secret.

        A value is never used past its time to live. While deliveries keep coming it is read
        again in the background during the last fifth of that time, so that no delivery waits
        for the secret store (a hung store would otherwise stall every connection at once).

        Raises:
            SecretUnavailable: The store failed, timed out or has no such entry.
        """
        now = time.monotonic()
        if self._value and now < self._expires:
            if now >= self._refresh_at and self._refresh is None:
                self._refresh = asyncio.create_task(
                    self._read_ahead(), name="pocketci-webhook-secret-refresh"
                )
            return self._value
        async with self._lock:
            if self._value and time.monotonic() < self._expires:
                return self._value
            return await self._read()

    async def _read(self) -> str:
        """Read the secret from the store and cache it; the caller holds the lock."""
        generation = self._generation
        try:
            value = await asyncio.wait_for(self._secrets.get(self._name), self._timeout)
        except TimeoutError as exc:
            raise SecretUnavailable("the secret store did not answer in time") from exc
        except SecretStoreError as exc:
            raise SecretUnavailable(f"the secret store failed: {exc}") from exc
        if not value:
            raise SecretUnavailable(
                f"the webhook secret {self._name!r} is not set; "
                f"run `pocketci-tui secrets set {self._name}`"
            )
        if generation == self._generation:  # not forgotten while the store was read
            now = time.monotonic()
            self._value = value
            self._expires = now + self._ttl
            self._refresh_at = now + self._ttl * 0.8
        return value

    async def _read_ahead(self) -> None:
        try:
            async with self._lock:
                if time.monotonic() >= self._refresh_at:
                    await self._read()
        except SecretUnavailable as exc:
            # The cached value stays valid until it expires; then a delivery reads the store
            # itself and is answered 503 if it still fails.
            log.warning("could not read the webhook secret ahead of time: %s", exc)
            self._refresh_at = self._expires
        finally:
            self._refresh = None

    async def close(self) -> None:
        """Stop a background read, if one is running."""
        task, self._refresh = self._refresh, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def verifier(self, forge: Forge) -> tuple[str, Verifier]:
        """Return the current webhook secret and a forge's verifier keyed with it.

        Raises:
            SecretUnavailable: As :meth:`get`.
        """
        value = await self.get()
        if value != self._verifier_secret:
            self._verifiers = {}
            self._verifier_secret = value
        verifier = self._verifiers.get(forge.vendor)
        if verifier is None:
            verifier = self._verifiers[forge.vendor] = forge.verifier(value)
        return value, verifier

    def forget(self) -> None:
        """Drop the cached value (after a rotation)."""
        self._value = ""
        self._expires = 0.0
        self._refresh_at = 0.0
        self._generation += 1
        self._verifiers = {}
        self._verifier_secret = ""


class WebhookSecrets:
    """The webhook secret of each forge: one :class:`SecretCache` per secret-store name.

    Forges that name the same entry (by default all of them: the top-level
    ``webhook-secret``) share its cache, so the store is read once for all of them.

    Args:
        secrets: The secret store.
        names: The secret-store entry of each forge, by vendor.
        ttl: Seconds a value read is reused.
        timeout: Seconds to wait for the store.
    """

    def __init__(
        self, secrets: SecretStore, names: Mapping[str, str], ttl: float, timeout: float
    ) -> None:
        self._names = dict(names)
        self._caches = {
            name: SecretCache(secrets, name, ttl, timeout) for name in set(self._names.values())
        }

    def name(self, vendor: str) -> str:
        """The secret-store entry holding a forge's webhook secret."""
        return self._names[vendor]

    def cache(self, vendor: str) -> SecretCache:
        """The cache of a forge's webhook secret."""
        return self._caches[self._names[vendor]]

    def forget(self, name: str) -> None:
        """Drop the cached value of one secret-store entry (after it changed)."""
        cache = self._caches.get(name)
        if cache is not None:
            cache.forget()

    async def close(self) -> None:
        """Stop every background read."""
        for cache in self._caches.values():
            await cache.close()


def _error(status: int, message: str, *, close: bool = False) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    if close:
        response.force_close()
    return response


class RepoFilter:
    """Tells whether a repository is configured, remembering recent answers.

    ``Settings.repo_for`` tries every configured glob; the answers are cached (bounded), since
    deliveries come from a handful of repositories.
    """

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        self._settings = settings
        self._size = size
        self._known: dict[tuple[str, str], bool] = {}

    def use(self, settings: Settings) -> None:
        """Answer from a reloaded configuration from now on."""
        self._settings = settings
        self._known = {}

    def configured(self, vendor: str, repository: str) -> bool:
        """True when the configuration lists this repository (globs included)."""
        key = (vendor, repository)
        known = self._known.get(key)
        if known is None:
            known = self._settings.repo_for(vendor, repository) is not None
            if len(self._known) >= self._size:
                self._known.clear()
            self._known[key] = known
        return known


def _decide(forge: Forge, repos: RepoFilter, event: Event) -> tuple[EventStatus, str]:
    """Return the status and detail to store a verified event with."""
    reason = forge.hook_reason(event)
    if reason:
        return EventStatus.IGNORED, reason
    if not repos.configured(event.vendor, event.repository):
        return EventStatus.IGNORED, f"repository {event.repository} is not in the config"
    reason = forge.ignore_reason(event)
    if reason:
        return EventStatus.IGNORED, reason
    return EventStatus.RECEIVED, ""


class _Refused(Exception):
    """A request is refused: the status, the message answered and the reason recorded."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str,
        *,
        detail: str = "",
        level: int = logging.WARNING,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.detail = detail
        self.level = level


def _too_large(limits: IntakeLimits) -> _Refused:
    return _Refused(413, f"the body is larger than {limits.max_body} bytes", "body too large")


async def _read_body(
    request: web.Request, limits: IntakeLimits, budget: ByteBudget, check: BodyCheck
) -> bytes:
    """Read the body chunk by chunk, feeding ``check`` as it arrives, within the byte budget.

    The bytes held wait for the signature check; they come from the budget shared by every
    connection (refused with 503 when it is full), the body is cut at ``max_body`` (413) and at
    its deadlines (408): ``body_timeout`` for the whole body, ``body_idle_timeout`` between two
    chunks.

    Raises:
        _Refused: The body is too large, does not fit the budget, or is too slow.
    """
    content = request.content
    if content.is_eof():  # the whole body came with the head: it is in memory already
        body = await content.read()
        if len(body) > limits.max_body:
            raise _too_large(limits)
        check.update(body)
        return body
    hold = BodyHold(budget)
    declared = request.content_length
    if declared is not None and not hold.grow(declared):
        raise _busy()
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout
    try:
        async with asyncio.timeout(min(deadline, loop.time() + limits.body_idle_timeout)) as cm:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > limits.max_body:
                    raise _too_large(limits)
                if not hold.grow(size):
                    raise _busy()
                check.update(chunk)
                chunks.append(chunk)
                cm.reschedule(min(deadline, loop.time() + limits.body_idle_timeout))
    except TimeoutError:
        raise _Refused(408, "the body was not received in time", "body too slow") from None
    except ConnectionError:  # the client went away mid-body: nobody reads the answer
        raise _Refused(400, "the connection was lost", "connection lost mid-body") from None
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limits) from None
    finally:
        hold.release()
    return b"".join(chunks)


def _busy() -> _Refused:
    return _Refused(
        503,
        "too many unverified bodies are arriving at once; send it again later",
        "unverified bytes over budget",
    )


async def _parse(app: web.Application, body: bytes) -> dict[str, Any]:
    """Decode a verified body: small ones here, large ones one at a time in a thread.

    The value count is checked before decoding (:func:`parse_payload`); decoding a large body
    still takes tens of milliseconds, which is not spent on the event loop.
    """
    if len(body) <= PARSE_IN_THREAD:
        return parse_payload(body)
    async with app[keys.PARSING]:
        return await asyncio.to_thread(parse_payload, body)


PARSE_IN_THREAD = 256 * 1024
"""Bodies larger than this are decoded in a worker thread, one at a time."""


async def handle_delivery(request: web.Request) -> web.Response:
    """Verify, store and acknowledge one delivery to ``/webhooks/{vendor}``."""
    vendor = request.match_info["vendor"]
    forge = request.app[keys.FORGES].get(vendor)
    headers = request.headers
    if forge is None:
        return _refuse(request, _unknown_vendor(request.app[keys.FORGES], vendor), "", "")
    event_name = forge.event_name(headers)
    delivery_id = forge.delivery_id(headers)
    try:
        return await _handle(request, forge, event_name, delivery_id)
    except _Refused as refused:
        return _refuse(request, refused, event_name, delivery_id)


def _refuse(
    request: web.Request, refused: _Refused, event_name: str, delivery_id: str
) -> web.Response:
    request.app[keys.REJECTIONS].note(
        refused.status,
        refused.reason,
        remote=request.remote or "",
        event_name=event_name,
        delivery_id=delivery_id,
        detail=refused.detail,
        level=refused.level,
    )
    # Close after a refusal: the rest of an unread body is never read.
    return _error(refused.status, refused.message, close=True)


def _unknown_vendor(forges: Registry, vendor: str) -> _Refused:
    urls = ", ".join(webhook_path(v) for v in forges.vendors)
    return _Refused(
        404,
        f"no forge is named {vendor[:40]!r}; deliveries go to {urls}",
        "unknown forge",
        detail=safe_text(vendor, 40),
    )


def _check_headers(request: web.Request, forge: Forge, event_name: str, delivery_id: str) -> None:
    """The checks made before the secret is read and before the body (see the module docs).

    Raises:
        _Refused: The request is refused.
    """
    headers = request.headers
    misrouted = request.app[keys.FORGES].misrouted(forge.vendor, headers)
    if misrouted:
        raise _Refused(400, misrouted, "posted to the wrong forge's URL", detail=misrouted)
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise _Refused(
            415,
            f"Content-Encoding {encoding[:40]!r} is not accepted",
            "compressed body",
            detail=safe_text(encoding, 40),
        )
    if request.content_type != "application/json":
        raise _Refused(
            415,
            "the content type must be application/json",
            "wrong content type",
            detail=f"{safe_text(request.content_type, 60) or 'none'}, not application/json",
        )
    limits = request.app[keys.LIMITS]
    if request.content_length is not None and request.content_length > limits.max_body:
        raise _too_large(limits)
    missing = forge.missing_credentials(headers)
    if missing:
        raise _Refused(401, _SIGNATURE_ERROR, missing)
    if not event_name:
        raise _Refused(400, f"missing or invalid {forge.event_header} header", "bad event header")
    if not delivery_id:
        raise _Refused(
            400, f"missing or invalid {forge.delivery_header} header", "bad delivery header"
        )


async def _handle(
    request: web.Request, forge: Forge, event_name: str, delivery_id: str
) -> web.Response:
    app = request.app
    headers = request.headers
    _check_headers(request, forge, event_name, delivery_id)
    try:
        secret, verifier = await app[keys.SECRET].cache(forge.vendor).verifier(forge)
    except SecretUnavailable as exc:
        raise _Refused(
            503,
            f"cannot verify deliveries now: {exc}",
            "cannot verify",
            detail=str(exc),
            level=logging.ERROR,
        ) from exc
    try:
        check = verifier.start(headers)
    except DeliveryRefused as exc:
        raise _Refused(exc.status, exc.message, exc.reason) from exc

    body = await _read_body(request, app[keys.LIMITS], app[keys.BUDGET], check)
    if not check.verified():
        raise _Refused(401, _SIGNATURE_ERROR, "bad signature (is the webhook secret the same?)")
    digest = check.digest()

    try:
        payload = await _parse(app, body)
    except PayloadError as exc:
        raise _Refused(400, str(exc), "malformed body", detail=str(exc)) from exc

    event = forge.normalize(
        event_name, delivery_id, payload, body, received_at=utcnow(), headers=headers
    )
    del payload
    status, detail = _decide(forge, app[keys.REPOS], event)
    if status is EventStatus.IGNORED and log.isEnabledFor(logging.DEBUG):
        # Headless mode logs every stored event through the engine's notices already.
        log.debug(
            "delivery %s (%s %s) stored as ignored: %s",
            delivery_id,
            event_name,
            event.repository or "-",
            detail,
        )
    refire = refire_allowed(secret, delivery_id, digest, headers.get(REFIRE_HEADER))
    try:
        # Not shielded: aiohttp does not cancel handlers when a client goes away, and a write
        # already queued is committed anyway (the engine resumes received events at start).
        stored, duplicate = await _store_and_submit(
            app, event, status, detail, digest=digest, refire=refire
        )
    except Replayed as exc:
        raise _Refused(
            409,
            f"this body was already delivered as {exc.original}; a body sent again under a new "
            "delivery id is not run again (fire the stored event from pocketci-tui instead)",
            "replayed body",
            detail=f"first delivered as {exc.original}",
        ) from exc
    except StoreError as exc:
        log.error("delivery %s NOT stored: %s", delivery_id, exc)
        return _error(503, "the delivery could not be stored; redeliver it later")

    # The reply is what json.dumps gives for {"delivery_id", "event_id", "status", ...}, built
    # directly: the delivery id matched valid_delivery_id (no character JSON escapes) and the
    # event id is an int; only the detail goes through the encoder.
    head = f'{{"delivery_id": "{delivery_id}", "event_id": {stored.event.id}, "status": '
    if duplicate:
        text = f'{head}"duplicate", "redeliveries": {stored.redeliveries}}}'
        return web.Response(body=text.encode(), status=202, content_type=_JSON)
    if stored.status is EventStatus.IGNORED:
        text = f'{head}"ignored", "detail": {json.dumps(stored.detail)}}}'
        return web.Response(body=text.encode(), status=200, content_type=_JSON)
    return web.Response(body=f'{head}"stored"}}'.encode(), status=202, content_type=_JSON)


async def _store_and_submit(
    app: web.Application,
    event: Event,
    status: EventStatus,
    detail: str,
    *,
    digest: str = "",
    refire: bool = False,
) -> tuple[StoredEvent, bool]:
    stored, duplicate = await app[keys.STORE].record_event(
        event, status, detail, digest=digest, refire=refire
    )
    try:
        await app[keys.SINK].submit(stored, duplicate)
    except Exception:  # the delivery is stored; a restart picks it up again
        log.exception("the dispatcher failed to take event %s", stored.event.id)
    return stored, duplicate


async def handle_healthz(request: web.Request) -> web.Response:
    """Answer that the listener is up."""
    return web.json_response({"status": "ok", "version": __version__})


async def _close_secret_cache(app: web.Application) -> None:
    await app[keys.SECRET].close()
    app[keys.REJECTIONS].close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_intake_app(
    *,
    settings: Settings,
    store: Store,
    secrets: SecretStore,
    sink: EventSink,
    limits: IntakeLimits | None = None,
    rejections: RejectionLog | None = None,
    forges: Registry | None = None,
) -> web.Application:
    """Build the intake application.

    Args:
        settings: The user configuration (configured repositories, webhook secret name).
        store: Where deliveries are committed before the reply.
        secrets: The secret store holding the webhook secret.
        sink: Told about every stored delivery.
        limits: Size and time limits (defaults: 25 MiB, 30 s).
        rejections: Where refused requests are counted and logged (a new one if None).
        forges: The forges served under ``/webhooks/{vendor}`` (the built-in ones if None).

    Returns:
        The application; serve it with :class:`~pocketci_tui.intake.listener.Listener`.
    """
    limits = limits or IntakeLimits()
    # The body is read by the handler with its own bound; client_max_size guards any other read.
    app = web.Application(client_max_size=limits.max_body)
    app[keys.SETTINGS] = settings
    app[keys.REPOS] = RepoFilter(settings)
    app[keys.STORE] = store
    app[keys.SINK] = sink
    app[keys.LIMITS] = limits
    app[keys.BUDGET] = ByteBudget(limits.budget)
    app[keys.REJECTIONS] = rejections if rejections is not None else RejectionLog()
    app[keys.PARSING] = asyncio.Semaphore(1)
    forges = forges if forges is not None else default_registry()
    app[keys.FORGES] = forges
    app[keys.SECRET] = WebhookSecrets(
        secrets,
        {vendor: settings.webhook_secret_of(vendor) for vendor in forges.vendors},
        limits.secret_ttl,
        limits.secret_timeout,
    )
    app.on_cleanup.append(_close_secret_cache)
    app.router.add_post(webhook_path("{vendor}"), handle_delivery)
    app.router.add_get("/healthz", handle_healthz)
    return app
