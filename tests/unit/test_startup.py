"""Start-up as a use case with no terminal: the passphrase asked through a plain callback, the
start's problems returned as values."""

from __future__ import annotations

from pocketci_tui.config import Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import open_secret_store
from pocketci_tui.services import Services
from pocketci_tui.startup import LOCKED, Startup

PASSPHRASE = "correct horse battery staple"


class Prompt:
    """Answers the passphrase prompt from a script and remembers what it was asked."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, bool]] = []

    async def __call__(self, why: str, *, create: bool) -> str | None:
        self.asked.append((why, create))
        return self.answers.pop(0)


async def _encrypted_file(app_paths: AppPaths) -> None:
    app_paths.config_dir.mkdir(parents=True, exist_ok=True)
    store = await open_secret_store(app_paths.config_dir, backend="file", passphrase=PASSPHRASE)
    await store.set("webhook-secret", "w" * 40)


def _startup(app_paths: AppPaths, settings: Settings, prompt: Prompt) -> Startup:
    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        return Services(settings, app_paths, passphrase=passphrase)

    return Startup(
        Services(settings, app_paths),
        config_dir=app_paths.config_dir,
        secrets_backend=settings.secrets_backend,
        with_passphrase=with_passphrase,
        ask=prompt,
    )


async def test_a_wrong_passphrase_is_asked_again_then_the_services_listen(
    app_paths: AppPaths,
) -> None:
    await _encrypted_file(app_paths)
    settings = Settings(port=0, secrets_backend="file")
    prompt = Prompt("not it at all", PASSPHRASE)
    startup = _startup(app_paths, settings, prompt)
    try:
        started = await startup.start(settings)
        await startup.probe_secrets(settings)
        assert started.url.startswith("http://127.0.0.1:")
        assert started.error == ""
        assert startup.url == started.url
        assert [create for _, create in prompt.asked] == [False, False]
        assert "type its passphrase" in prompt.asked[0][0]
        assert "wrong passphrase" in prompt.asked[1][0]
        assert not startup.locked
        assert not {p.key for p in startup.problems} & {"secret-store", "webhook-secret"}
    finally:
        await startup.services.stop()


async def test_a_declined_prompt_leaves_the_store_locked_with_a_problem_that_says_so(
    app_paths: AppPaths,
) -> None:
    await _encrypted_file(app_paths)
    settings = Settings(port=0, secrets_backend="file")
    startup = _startup(app_paths, settings, Prompt(None))
    try:
        started = await startup.start(settings)
        assert started.url == ""
        assert started.error == LOCKED
        assert startup.locked
        problem = startup.problems.get("secret-store")
        assert problem is not None
        assert problem.short == LOCKED
        assert "press u" in problem.fix
    finally:
        await startup.services.stop()
