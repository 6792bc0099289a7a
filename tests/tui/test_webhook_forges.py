"""The webhook dialog shows every configured forge's URL and steps (issue 13)."""

from __future__ import annotations

from textual.widgets import Label, Static

from pocketci_tui.config import ForgeSettings, RepoConfig, Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.dialogs.webhook import HIDDEN, ForgeHook, WebhookDialog, forge_instructions
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import ScriptedServices
from .harness import fixed_clock, wait_for
from .test_ui_actions import build, ready, seeded


async def test_each_configured_forge_gets_its_url_form_and_local_address_note(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    settings = Settings(
        repos=(
            RepoConfig(name="me/app", vendor="gitea"),
            RepoConfig(name="team/sub/api", vendor="gitlab"),
        ),
        forges={
            "gitea": ForgeSettings(url="https://git.example.org"),
            "gitlab": ForgeSettings(webhook_secret="gitlab-hook"),
        },
    )
    app, _ = build(services, app_paths, settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        text = dialog.query_one("#webhook-text", Static)
        await wait_for(lambda: HIDDEN in str(text.render()), pilot)
        shown = str(text.render())
        # Only the configured forges: no GitHub section.
        assert "webhooks/github" not in shown
        assert "Gitea: repository → Settings → Webhooks → Add webhook → Gitea" in shown
        assert "Target URL    http://127.0.0.1:8080/webhooks/gitea" in shown
        assert "ALLOWED_HOST_LIST" in shown
        assert "GitLab: project → Settings → Webhooks → Add new webhook" in shown
        assert "URL           http://127.0.0.1:8080/webhooks/gitlab" in shown
        assert "Allow requests to the local network" in shown
        # Gitea shares the top-level secret; GitLab has an entry of its own, shown too.
        assert "Secret        the 'webhook-secret' secret above" in shown
        assert "Secret token  the 'gitlab-hook' secret above" in shown
        assert "Secret ('gitlab-hook', GitLab)" in shown
        await pilot.press("r")
        await wait_for(lambda: "0f" * 32 in str(text.render()), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


def test_github_alone_reads_as_before() -> None:
    """A config that names no other forge keeps GitHub's one form, unchanged."""
    hooks = [ForgeHook("github", "http://h:1/webhooks/github", "webhook-secret")]
    text = forge_instructions(hooks, "webhook-secret", "s3cret")
    assert text.splitlines() == [
        "Payload URL   http://h:1/webhooks/github",
        "Content type  application/json",
        "Secret",
        "  s3cret",
        "Events        push, pull requests (or: send me everything)",
    ]


def test_forgejo_is_told_about_its_own_form_and_app_ini() -> None:
    hooks = [
        ForgeHook("github", "http://h:1/webhooks/github", "webhook-secret"),
        ForgeHook("forgejo", "http://h:1/webhooks/forgejo", "webhook-secret"),
    ]
    text = forge_instructions(hooks, "webhook-secret", "s3cret")
    sections = text.split("\n\n")
    assert sections[0] == "Secret ('webhook-secret')\n  s3cret"
    assert sections[1].startswith("GitHub: repository → Settings → Webhooks → Add webhook\n")
    assert "Payload URL   http://h:1/webhooks/github" in sections[1]
    assert sections[2].startswith("Forgejo: repository → Settings → Webhooks → Add webhook")
    assert "Target URL    http://h:1/webhooks/forgejo" in sections[2]
    assert "[webhook] ALLOWED_HOST_LIST" in sections[2]


async def test_the_empty_output_pane_points_each_configured_forge_at_its_url(
    app_paths: AppPaths,
) -> None:
    """With no events yet, the hint names the forges the config uses, not GitHub's URL."""
    settings = Settings(
        repos=(
            RepoConfig(name="me/app", vendor="forgejo"),
            RepoConfig(name="team/sub/api", vendor="gitlab"),
        ),
        forges={"forgejo": ForgeSettings(url="https://code.example.org")},
    )
    app = make_app(
        settings, paths=app_paths, services=ScriptedServices(app_paths), clock=fixed_clock
    )
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.main_screen is not None
        log = app.main_screen.query_one(RunLog)
        await wait_for(lambda: any("No events yet" in line for line in log.lines), pilot)
        await wait_for(lambda: any("webhooks/gitlab" in line for line in log.lines), pilot)
        text = "\n".join(log.lines)
        assert "Point a Forgejo webhook at" in text
        assert "http://127.0.0.1:8080/webhooks/forgejo" in text
        assert "Point a GitLab webhook at" in text
        assert "GitHub" not in text


async def test_each_forge_own_secret_is_revealed_and_generated_like_the_top_one(
    app_paths: AppPaths,
) -> None:
    """GitLab's own entry is stored, Gitea's is not: r shows both stored ones, g makes Gitea's."""
    services, _ = await seeded(app_paths)
    assert services.secrets is not None
    await services.secrets.set("gitlab-hook", "1a" * 32)
    settings = Settings(
        repos=(
            RepoConfig(name="me/app", vendor="gitea"),
            RepoConfig(name="team/sub/api", vendor="gitlab"),
        ),
        forges={
            "gitea": ForgeSettings(url="https://git.example.org", webhook_secret="gitea-hook"),
            "gitlab": ForgeSettings(webhook_secret="gitlab-hook"),
        },
    )
    app, _ = build(services, app_paths, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        text = dialog.query_one("#webhook-text", Static)
        await wait_for(lambda: dialog.missing == ("gitea-hook",), pilot)
        shown = str(text.render())
        assert shown.count(HIDDEN) == 2
        assert "1a1a" not in shown
        assert "Secret ('gitea-hook', Gitea)\n  (none yet)" in shown
        error = str(dialog.query_one("#webhook-error", Label).render())
        assert "No secret named 'gitea-hook' is stored yet" in error
        assert "pocketci-tui secrets set gitea-hook" in error
        # At 80x24 the steps scroll; what is missing and the keys stay inside the box.
        keys = dialog.query_one("#webhook-keys", Label)
        box = dialog.query_one("#webhook")
        assert "r: reveal    g: generate and store one" in str(keys.render())
        assert keys.region.height == 1
        assert keys.region.bottom < box.region.bottom
        assert keys.region.right < box.region.right
        await pilot.press("r")
        await wait_for(lambda: dialog.revealed, pilot)
        shown = str(text.render())
        assert "0f" * 32 in shown
        assert "Secret ('gitlab-hook', GitLab)\n  " + "1a" * 32 in shown
        # Gitea's is still missing: g is still offered.
        assert str(keys.render()).endswith("g: generate and store one    Esc: close")
        await pilot.press("g")
        await wait_for(lambda: not dialog.missing, pilot)
        made = await services.secrets.get("gitea-hook")
        assert made is not None
        assert len(made) == 64
        assert f"Secret ('gitea-hook', Gitea)\n  {made}" in str(text.render())
        # Nothing else was touched.
        assert await services.secrets.get("gitlab-hook") == "1a" * 32
        assert "stored as 'gitea-hook'" in str(keys.render())
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
