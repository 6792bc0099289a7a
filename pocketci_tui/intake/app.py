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
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pocketci_tui import __version__
from pocketci_tui.config import Settings
from pocketci_tui.forges.base import (
    REFIRE_HEADER,
    BodyCheck,
    DeliveryRefused,
    Forge,
    refire_allowed,
)
from pocketci_tui.forges.payload import PayloadError, parse_payload
from pocketci_tui.forges.registry import Registry, default_registry
from pocketci_tui.intake import keys
from pocketci_tui.intake.budget import BodyHold, ByteBudget
from pocketci_tui.intake.parts import EventSink, IntakeLimits, RepoFilter
from pocketci_tui.intake.rejections import RejectionLog
from pocketci_tui.intake.secret_cache import SecretUnavailable, WebhookSecrets
from pocketci_tui.logging_setup import safe_text
from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow, webhook_path
from pocketci_tui.secrets import SecretStore
from pocketci_tui.store import Replayed, Store, StoreError

log = logging.getLogger("pocketci_tui.intake")

_SIGNATURE_ERROR = "missing or invalid signature"


def _error(status: int, message: str, *, close: bool = False) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    if close:
        response.force_close()
    return response


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


@dataclass(frozen=True, slots=True)
class _Keyed:
    """One secret a delivery may be signed with, and the check of the body under it."""

    name: str
    secret: str
    check: BodyCheck


class _Fanout:
    """Feeds a body to the checks under each secret it may be signed with, as it arrives."""

    __slots__ = ("_checks",)

    def __init__(self, checks: list[BodyCheck]) -> None:
        self._checks = checks

    def update(self, chunk: bytes) -> None:
        for check in self._checks:
            check.update(chunk)

    def verified(self) -> bool:
        return any(check.verified() for check in self._checks)

    def digest(self) -> str:
        return ""


def _cannot_verify(reason: str) -> _Refused:
    return _Refused(
        503,
        f"cannot verify deliveries now: {reason}",
        "cannot verify",
        detail=reason,
        level=logging.ERROR,
    )


async def _keyed_checks(
    app: web.Application, forge: Forge, headers: Mapping[str, str]
) -> tuple[list[_Keyed], str]:
    """Start checking a delivery under each secret it may be signed with.

    The forge's webhook secret first, then the own secrets of the forge's repositories that
    have one (``repos[].webhook-secret``): which repository a delivery concerns is known only
    after parsing, and nothing is parsed before the body verified under one of them. A
    repository's secret that cannot be read is left out (and said when nothing verified).

    Returns:
        The checks, and why a repository's secret could not be read (or ``""``).

    Raises:
        _Refused: The forge's secret cannot be read (503), or the headers can never verify.
    """
    secrets = app[keys.SECRET]
    forge_name = secrets.name(forge.vendor)
    keyed: list[_Keyed] = []
    unavailable = ""
    for name in dict.fromkeys((forge_name, *app[keys.REPOS].secret_names(forge.vendor))):
        try:
            secret, verifier = await secrets.named(name).verifier(forge)
        except SecretUnavailable as exc:
            if name == forge_name:
                raise _cannot_verify(str(exc)) from exc
            unavailable = str(exc)
            continue
        try:
            keyed.append(_Keyed(name, secret, verifier.start(headers)))
        except DeliveryRefused as exc:
            message = exc.message
            if exc.status == 503:  # the stored secret itself is unusable: say which to set
                message += f" (the secret-store entry {name!r}: pocketci-tui secrets set {name})"
            raise _Refused(exc.status, message, exc.reason) from exc
    return keyed, unavailable


def _signed_for(passed: list[_Keyed], repos: RepoFilter, event: Event, forge_name: str) -> _Keyed:
    """The secret a verified delivery had to be signed with, given its repository.

    A repository with its own webhook secret accepts only that one; every other delivery of
    the forge only the forge's.

    Raises:
        _Refused: The body verified only under another secret (401).
    """
    repo = repos.repo(event.vendor, event.repository) if event.repository else None
    expected = (repo.webhook_secret if repo is not None else "") or forge_name
    for keyed in passed:
        if keyed.name == expected:
            return keyed
    raise _Refused(
        401,
        _SIGNATURE_ERROR,
        "signed with another repository's webhook secret",
        detail=f"{event.repository or 'a delivery without a repository'} is verified with "
        f"the secret-store entry {expected!r}",
    )


async def _handle(
    request: web.Request, forge: Forge, event_name: str, delivery_id: str
) -> web.Response:
    app = request.app
    headers = request.headers
    _check_headers(request, forge, event_name, delivery_id)
    keyed, unavailable = await _keyed_checks(app, forge, headers)
    feed = keyed[0].check if len(keyed) == 1 else _Fanout([k.check for k in keyed])
    body = await _read_body(request, app[keys.LIMITS], app[keys.BUDGET], feed)
    passed = [k for k in keyed if k.check.verified()]
    if not passed:
        if unavailable:
            raise _cannot_verify(unavailable)
        raise _Refused(401, _SIGNATURE_ERROR, "bad signature (is the webhook secret the same?)")

    try:
        payload = await _parse(app, body)
    except PayloadError as exc:
        raise _Refused(400, str(exc), "malformed body", detail=str(exc)) from exc

    event = forge.normalize(
        event_name, delivery_id, payload, body, received_at=utcnow(), headers=headers
    )
    del payload
    if len(keyed) == 1:
        signed = passed[0]
    else:
        signed = _signed_for(passed, app[keys.REPOS], event, keyed[0].name)
    secret, digest = signed.secret, signed.check.digest()
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

    reply: dict[str, object] = {"delivery_id": delivery_id, "event_id": stored.event.id}
    if duplicate:
        reply |= {"status": "duplicate", "redeliveries": stored.redeliveries}
        return web.json_response(reply, status=202)
    if stored.status is EventStatus.IGNORED:
        reply |= {"status": "ignored", "detail": stored.detail}
        return web.json_response(reply, status=200)
    return web.json_response(reply | {"status": "stored"}, status=202)


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
