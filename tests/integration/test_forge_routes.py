"""One route per forge, ``/webhooks/{vendor}``, over real HTTP on loopback.

The route decides the forge: an unknown vendor is 404, a delivery another forge sent is a 400
naming the URL it belongs to (Gitea sends GitHub's headers too), and each forge's deliveries
are verified with that forge's own secret.
"""

from __future__ import annotations

import base64
import uuid

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, IntakeFactory
from forgefakes import GITEA_LIKE
from hypothesis import given
from hypothesis import strategies as st
from signing import delivery_headers, push_body, send

from pocketci_tui.config import ForgeSettings, RepoConfig, Settings
from pocketci_tui.forges import github
from pocketci_tui.forges.registry import Registry, default_registry, forge_for
from pocketci_tui.intake import keys
from pocketci_tui.model import EventStatus
from pocketci_tui.secrets import MemorySecretStore

pytestmark = pytest.mark.timeout(60)

_JSON = "application/json"


def _two_forges() -> Registry:
    return Registry([github.FORGE, GITEA_LIKE])


def _gitea_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    headers = GITEA_LIKE.sign(body, secret, event_name="push", delivery_id=str(uuid.uuid4()))
    return {"Content-Type": "application/json", **headers}


async def test_an_unknown_vendor_is_404_naming_the_urls(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(forges=_two_forges())
    body = push_body()
    reply = await send(
        http, it.hook_url_for("bitbucket"), body, delivery_headers(WEBHOOK_SECRET, body)
    )
    assert reply.status == 404
    message = reply.json()["error"]
    assert "'bitbucket'" in message
    assert "/webhooks/github" in message
    assert "/webhooks/gitea" in message
    assert await it.store.count_events() == 0
    last = it.listener.app[keys.REJECTIONS].last
    assert last is not None
    assert (last.status, last.reason) == (404, "unknown forge")


async def test_a_gitea_delivery_posted_to_github_is_refused_naming_its_url(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """Gitea signs with GitHub's header too: without the route's check it would pass."""
    it = await intake_factory(forges=_two_forges())
    body = push_body()
    headers = _gitea_headers(body)
    assert github.verify(WEBHOOK_SECRET, body, headers["X-Hub-Signature-256"])
    reply = await send(http, it.hook_url, body, headers)
    assert reply.status == 400
    message = reply.json()["error"]
    assert "Gitea delivery" in message
    assert message.endswith("point the Gitea webhook at /webhooks/gitea")
    assert await it.store.count_events() == 0
    last = it.listener.app[keys.REJECTIONS].last
    assert last is not None
    assert last.reason == "posted to the wrong forge's URL"


async def test_a_github_delivery_posted_to_gitea_is_refused_naming_its_url(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(forges=_two_forges())
    body = push_body()
    reply = await send(http, it.hook_url_for("gitea"), body, delivery_headers(WEBHOOK_SECRET, body))
    assert reply.status == 400
    assert reply.json()["error"].endswith("point the GitHub webhook at /webhooks/github")
    assert await it.store.count_events() == 0


async def test_each_forge_is_served_on_its_own_route(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(forges=_two_forges())
    body = push_body()
    to_gitea = await send(http, it.hook_url_for("gitea"), body, _gitea_headers(body))
    assert to_gitea.status == 200, to_gitea.body
    other = push_body(n=1)
    to_github = await send(http, it.hook_url, other, delivery_headers(WEBHOOK_SECRET, other))
    assert to_github.status == 202, to_github.body
    gitea = await it.store.get_event(to_gitea.json()["event_id"])
    hub = await it.store.get_event(to_github.json()["event_id"])
    assert gitea is not None
    assert hub is not None
    assert (gitea.event.vendor, gitea.status) == ("gitea", EventStatus.IGNORED)
    # Configured repositories are per forge: acme/api is configured for GitHub only.
    assert gitea.detail == "repository acme/api is not in the config"
    assert (hub.event.vendor, hub.status) == ("github", EventStatus.RECEIVED)


async def test_a_forge_checks_its_own_signature_header(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A Gitea delivery whose Gitea signature is wrong is refused even if GitHub's is right."""
    it = await intake_factory(forges=_two_forges())
    body = push_body()
    headers = _gitea_headers(body)
    headers["X-Gitea-Signature"] = _gitea_headers(body, "another secret")["X-Gitea-Signature"]
    reply = await send(http, it.hook_url_for("gitea"), body, headers)
    assert reply.status == 401
    del headers["X-Gitea-Signature"]
    reply = await send(http, it.hook_url_for("gitea"), body, headers)
    assert reply.status == 401
    last = it.listener.app[keys.REJECTIONS].last
    assert last is not None
    assert last.reason == "no X-Gitea-Signature header"
    assert await it.store.count_events() == 0


def test_the_sender_is_the_forge_no_other_present_forge_mimics() -> None:
    forges = _two_forges()
    gitea = _gitea_headers(b"{}")
    hub = delivery_headers(WEBHOOK_SECRET, b"{}")
    assert (forges.sender(gitea), forges.sender(hub), forges.sender({})) == ("gitea", "github", "")
    assert forges.misrouted("gitea", gitea) == ""
    assert forges.misrouted("github", hub) == ""
    assert "/webhooks/gitea" in forges.misrouted("github", gitea)
    with pytest.raises(ValueError, match="two forges"):
        Registry([github.FORGE, github.FORGE])


async def test_each_forge_verifies_with_its_own_secret(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """forges.gitea.webhook-secret names another entry; GitHub keeps the top-level one."""
    settings = Settings(
        repos=(
            RepoConfig("acme/api", vendor="gitea", clone_url="https://git.example.org/acme/api"),
            RepoConfig("acme/api"),
        ),
        forges={"gitea": ForgeSettings(webhook_secret="gitea-webhook")},
    )
    secrets = MemorySecretStore({"webhook-secret": WEBHOOK_SECRET, "gitea-webhook": "gitea!"})
    it = await intake_factory(forges=_two_forges(), settings=settings, secrets=secrets)
    body = push_body()
    wrong = await send(http, it.hook_url_for("gitea"), body, _gitea_headers(body))
    assert wrong.status == 401
    right = await send(http, it.hook_url_for("gitea"), body, _gitea_headers(body, "gitea!"))
    assert right.status == 202, right.body
    hub_body = push_body(n=1)
    hub = await send(http, it.hook_url, hub_body, delivery_headers("gitea!", hub_body))
    assert hub.status == 401
    hub = await send(http, it.hook_url, hub_body, delivery_headers(WEBHOOK_SECRET, hub_body))
    assert hub.status == 202
    stored = await it.store.get_event(right.json()["event_id"])
    assert stored is not None
    assert (stored.event.vendor, stored.status) == ("gitea", EventStatus.RECEIVED)


async def test_a_missing_forge_secret_names_the_entry_to_set(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    settings = Settings(forges={"gitea": ForgeSettings(webhook_secret="gitea-webhook")})
    it = await intake_factory(forges=_two_forges(), settings=settings)
    body = push_body()
    reply = await send(http, it.hook_url_for("gitea"), body, _gitea_headers(body))
    assert reply.status == 503
    assert "pocketci-tui secrets set gitea-webhook" in reply.json()["error"]
    # GitHub's deliveries are not held up by it (stored, as ignored: no repository is set).
    hub = await send(http, it.hook_url, body, delivery_headers(WEBHOOK_SECRET, body))
    assert hub.status == 200
    assert hub.json()["status"] == "ignored"


async def test_a_repository_with_its_own_secret_accepts_only_that_one(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """repos[].webhook-secret: a delivery must be signed with the secret of its repository."""
    settings = Settings(
        repos=(RepoConfig("acme/api", webhook_secret="api-hook"), RepoConfig("acme/web"))
    )
    secrets = MemorySecretStore({"webhook-secret": WEBHOOK_SECRET, "api-hook": "api-secret"})
    it = await intake_factory(settings=settings, secrets=secrets)

    async def status(repository: str, secret: str, n: int) -> int:
        body = push_body(repository, n=n)
        return (await send(http, it.hook_url, body, delivery_headers(secret, body))).status

    assert await status("acme/api", "api-secret", 1) == 202
    assert await status("acme/api", WEBHOOK_SECRET, 2) == 401
    last = it.listener.app[keys.REJECTIONS].last
    assert last is not None
    assert last.reason == "signed with another repository's webhook secret"
    assert "'api-hook'" in last.detail
    assert await status("acme/web", WEBHOOK_SECRET, 3) == 202
    assert await status("acme/web", "api-secret", 4) == 401
    # A repository not in the config is stored as ignored only under the forge's secret.
    assert await status("acme/other", WEBHOOK_SECRET, 5) == 200
    assert await status("acme/other", "api-secret", 6) == 401
    assert await status("acme/web", "a stranger's guess", 7) == 401
    stored = [e.event.repository for e in await it.store.list_events(limit=10)]
    assert sorted(stored) == ["acme/api", "acme/other", "acme/web"]


async def test_a_repository_secret_not_set_leaves_the_others_working(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    settings = Settings(
        repos=(RepoConfig("acme/api", webhook_secret="api-hook"), RepoConfig("acme/web"))
    )
    it = await intake_factory(settings=settings)
    web_body = push_body("acme/web")
    reply = await send(http, it.hook_url, web_body, delivery_headers(WEBHOOK_SECRET, web_body))
    assert reply.status == 202
    api_body = push_body("acme/api", n=1)
    reply = await send(http, it.hook_url, api_body, delivery_headers("api-secret", api_body))
    assert reply.status == 503
    assert "pocketci-tui secrets set api-hook" in reply.json()["error"]


_VENDORS = ("github", "gitea", "forgejo", "gitlab")


@pytest.mark.parametrize(
    ("sender", "route"),
    # Gitea's headers at Forgejo's URL are older Forgejo's (tested below).
    [(s, r) for s in _VENDORS for r in _VENDORS if s != r and (s, r) != ("gitea", "forgejo")],
)
async def test_every_forge_posted_to_another_forge_is_refused_naming_its_url(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, sender: str, route: str
) -> None:
    """The built-in forges, each signing as it does, posted to each other forge's URL."""
    it = await intake_factory()
    forge = forge_for(sender)
    body = push_body()
    headers = forge.sign(body, WEBHOOK_SECRET, event_name="push", delivery_id=str(uuid.uuid4()))
    reply = await send(http, it.hook_url_for(route), body, {"Content-Type": _JSON, **headers})
    assert reply.status == 400
    message = reply.json()["error"]
    assert message.endswith(f"point the {forge.display_name} webhook at /webhooks/{sender}")
    assert f"posted to /webhooks/{route}," in message
    assert await it.store.count_events() == 0


@given(
    present=st.sets(
        st.sampled_from(
            ["X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gitlab-Event", "X-Other"]
        )
    )
)
def test_the_sender_is_one_forge_or_none_whatever_the_headers(present: set[str]) -> None:
    forges = default_registry()
    headers = dict.fromkeys(present, "push")
    sender = forges.sender(headers)
    assert sender in ("", *forges.vendors)
    if sender:
        assert forge_for(sender).event_header in present
        # Its own header is no other present forge's copy.
        assert not any(
            sender in forge_for(v).mimics
            for v in forges.vendors
            if forge_for(v).event_header in present
        )
    for vendor in forges.vendors:
        told = forges.misrouted(vendor, headers)
        assert bool(told) == (sender not in ("", vendor))


async def test_older_forgejo_sending_only_gitea_headers_is_taken_at_forgejo_url(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """Forgejo before its own X-Forgejo-* headers sent Gitea's and GitHub's only."""
    it = await intake_factory()
    body = push_body()
    older = forge_for("gitea").sign(
        body, WEBHOOK_SECRET, event_name="push", delivery_id=str(uuid.uuid4())
    )
    assert not any(name.startswith("X-Forgejo") for name in older)
    reply = await send(http, it.hook_url_for("forgejo"), body, {"Content-Type": _JSON, **older})
    assert reply.status == 200, reply.body
    stored = await it.store.get_event(reply.json()["event_id"])
    assert stored is not None
    assert (stored.event.vendor, stored.event.event_type) == ("forgejo", "push")
    # Still verified: Gitea's signature made with another secret is refused.
    forged = forge_for("gitea").sign(
        body, "another secret", event_name="push", delivery_id=str(uuid.uuid4())
    )
    reply = await send(http, it.hook_url_for("forgejo"), body, {"Content-Type": _JSON, **forged})
    assert reply.status == 401
    # GitHub's headers alone carry no signature Forgejo reads: still sent to /webhooks/github.
    hub = delivery_headers(WEBHOOK_SECRET, body)
    reply = await send(http, it.hook_url_for("forgejo"), body, hub)
    assert reply.status == 400
    assert reply.json()["error"].endswith("point the GitHub webhook at /webhooks/github")


async def test_a_broken_gitlab_signing_token_is_answered_with_what_to_do(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A whsec_ token pasted with a line break in it: GitLab's page shows what to fix."""
    token = "whsec_" + base64.b64encode(b"k" * 32).decode()
    settings = Settings(
        repos=(RepoConfig("team/api", vendor="gitlab"),),
        forges={"gitlab": ForgeSettings(webhook_secret="gitlab-hook")},
    )
    store = MemorySecretStore(
        {"webhook-secret": WEBHOOK_SECRET, "gitlab-hook": token[:20] + "\n" + token[20:]}
    )
    it = await intake_factory(settings=settings, secrets=store)
    body = push_body()
    headers = forge_for("gitlab").sign(body, token, event_name="Push Hook", delivery_id="d-1")
    reply = await send(http, it.hook_url_for("gitlab"), body, {"Content-Type": _JSON, **headers})
    assert reply.status == 503
    error = reply.json()["error"]
    assert "the signing token has a space or a line break in it" in error
    assert "copy the signing token again from the GitLab webhook's settings" in error
    assert error.endswith(
        "(the secret-store entry 'gitlab-hook': pocketci-tui secrets set gitlab-hook)"
    )
    assert await it.store.count_events() == 0
