"""The fork policy for every forge (issue 13): approve pinned to the head, no secrets, skip.

Each forge's request from a fork is read by the forge's real normalizer from a real payload
(Gitea and Forgejo: head and base repositories differ; GitLab: ``source_project_id`` differs
from ``target_project_id``), and its head commit exists on the base repository only under the
forge's own request ref, served by git http-backend with the forge's token form, refusing
commit ids: approving it must fetch exactly that ref.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daggerstub import arg, fn
from enginekit import EngineKit
from forgedelivery import Delivery, forge_kit
from githttp import TEST_TOKEN, GitHttpServer
from multidict import CIMultiDict

from pocketci_tui.config import ForgeSettings, RepoConfig
from pocketci_tui.engine.dispatch.notices import EngineError
from pocketci_tui.forges.registry import forge_for
from pocketci_tui.model import Event, EventStatus, RunState, Vendor, utcnow

pytestmark = pytest.mark.timeout(180)

OK = {"output": ["built"], "exit": 0}
SPEC = {"module-path": "./ci", "secrets": [{"name": "ghPassword", "from-keyring": "gh-password"}]}
GH_PASSWORD = "s3cr3t-password-value"
# (repository, token user, request word in function names, opened action, fork's name)
FORGES = {
    "github": ("owner/repo", "x-access-token", "PullRequest", "opened", "mallory/repo"),
    "gitea": ("me/app", None, "PullRequest", "opened", "mallory/app"),
    "forgejo": ("me/app", None, "PullRequest", "opened", "mallory/app"),
    "gitlab": ("team/sub/api", "oauth2", "MergeRequest", "open", "mallory/sub/api"),
}


def _normalized(delivery: Delivery, delivery_id: str) -> Event:
    """The Event the forge's own reading of this delivery gives."""
    forge = forge_for(delivery.vendor)
    headers = CIMultiDict(delivery.headers("secret", delivery_id))
    return forge.normalize(
        forge.event_name(headers),
        forge.delivery_id(headers),
        json.loads(delivery.body),
        delivery.body,
        received_at=utcnow(),
        headers=headers,
    )


class ForkSetup:
    """A repository of one forge behind a forge-like server, and an engine configured for it."""

    def __init__(self, tmp: Path, vendor: Vendor, mode: str) -> None:
        self.vendor = vendor
        repository, user, self.word, self.opened, self.fork = FORGES[vendor]
        title = vendor.capitalize()
        functions = [
            fn(
                f"testOn{title}{self.word}",
                arg("src", "Directory"),
                arg("eventTrigger", "File"),
                arg("filter", "String", default=self.opened),
                arg("ghPassword", "Secret", optional=True),
                call=OK,
            )
        ]
        root = tmp / "forge"
        self.server = GitHttpServer(root, username=user, password=TEST_TOKEN, protocol_v2=False)
        self.kit = EngineKit(
            tmp / "kit",
            functions=functions,
            spec=SPEC,
            secrets={"gh-password": GH_PASSWORD, "clone-token": TEST_TOKEN},
            fork_pull_requests=mode,
        )
        self.kit.remote.git("config", "uploadpack.allowAnySHA1InWant", "false")
        where = root / f"{repository}.git"
        where.parent.mkdir(parents=True)
        where.symlink_to(self.kit.remote.path, target_is_directory=True)
        self.repository = repository
        self.make = forge_kit(vendor, repository)

    def configure(self) -> None:
        """Point the engine's settings at the started server (its URL is known then)."""
        from dataclasses import replace

        self.kit.settings = replace(
            self.kit.settings,
            repos=(
                RepoConfig(
                    name=self.repository,
                    vendor=self.vendor,
                    token="clone-token",
                    secrets=("gh-password",),
                ),
            ),
            forges={self.vendor: ForgeSettings(url=self.server.base_url)},
        )

    def fork_request(self, number: int, files: dict[str, str], parent: str) -> tuple[Event, str]:
        """A commit of the fork, kept on the base repository under the forge's request ref."""
        remote = self.kit.remote
        head = remote.commit(files, branch=None, parents=[parent])
        ref = (
            f"refs/merge-requests/{number}/head"
            if self.vendor == "gitlab"
            else f"refs/pull/{number}/head"
        )
        remote.set_ref(ref, head)
        delivery = self.make.change(
            self.opened,
            number,
            head=head,
            head_branch="main",
            base=remote.rev("main"),
            fork=self.fork,
        )
        return _normalized(delivery, f"{self.vendor}-{number}-{head[:8]}"), head


@pytest.fixture(params=list(FORGES))
def vendor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_fork_waits_and_an_approval_fetches_its_pinned_head(
    tmp_path: Path, vendor: Vendor
) -> None:
    setup = ForkSetup(tmp_path, vendor, "approve")
    with setup.server:
        setup.configure()
        async with setup.kit as kit:
            base = kit.remote.rev("main")
            event, head = setup.fork_request(7, {"evil.go": "package evil\n"}, base)
            assert event.is_fork
            stored = await kit.deliver(event)
            event_id = stored.event.id
            assert event_id is not None
            waiting = await kit.wait_status(event_id, EventStatus.WAITING)
            assert f"waiting for approval of {head[:12]}" in waiting.detail
            assert kit.calls() == []

            with pytest.raises(EngineError, match="not the 000000000000 shown"):
                await kit.engine.approve(event_id, "0" * 40)
            await kit.engine.approve(event_id, head)
            runs = await kit.wait_runs_finished(event_id)
            assert {r.function for r in runs if r.state is RunState.PASSED} == {
                f"testOn{vendor.capitalize()}{setup.word}"
            }
            [call] = kit.calls()
            assert call["event_trigger"]["sha"] == head
            assert call["event_trigger"]["changes"] == ["evil.go"]
            assert call["secrets"] == {"ghPassword": GH_PASSWORD}  # approved: granted secrets

            # A newer commit of the fork is not approved: it waits again.
            newer_event, newer = setup.fork_request(7, {"evil.go": "package evil // 2\n"}, head)
            newer_stored = await kit.deliver(newer_event)
            assert newer_stored.event.id is not None
            again = await kit.wait_status(newer_stored.event.id, EventStatus.WAITING)
            assert newer[:12] in again.detail
            assert len(kit.calls()) == 1


async def test_a_fork_runs_without_secrets(tmp_path: Path, vendor: Vendor) -> None:
    setup = ForkSetup(tmp_path, vendor, "no-secrets")
    with setup.server:
        setup.configure()
        async with setup.kit as kit:
            event, head = setup.fork_request(8, {"x.go": "package x\n"}, kit.remote.rev("main"))
            stored = await kit.deliver(event)
            assert stored.event.id is not None
            runs = await kit.wait_runs_finished(stored.event.id)
            assert [r.state for r in runs] == [RunState.PASSED]
            [call] = kit.calls()
            assert call["event_trigger"]["sha"] == head
            assert call["secrets"] == {}
            assert "--gh-password" not in call["argv"]
            assert GH_PASSWORD not in json.dumps(call)


async def test_a_fork_is_only_recorded_when_skipped(tmp_path: Path, vendor: Vendor) -> None:
    setup = ForkSetup(tmp_path, vendor, "skip")
    with setup.server:
        setup.configure()
        async with setup.kit as kit:
            event, _head = setup.fork_request(9, {"x.go": "package x\n"}, kit.remote.rev("main"))
            stored = await kit.deliver(event)
            assert stored.event.id is not None
            final = await kit.wait_status(stored.event.id, EventStatus.SKIPPED)
            assert "fork" in final.detail
            assert kit.calls() == []
            assert setup.server.seen() == []  # nothing of the fork was even fetched
