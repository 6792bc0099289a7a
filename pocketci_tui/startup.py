"""Starting the UI's services: the policy of getting them up, with no terminal in it.

The services can fail to start for reasons the user can fix on the spot: the encrypted secrets
file wants its passphrase (or was given a wrong one), or no OS keyring answers (over SSH) and the
encrypted file is the way out. :class:`Startup` retries with a passphrase it asks for through a
:class:`PassphrasePrompt` (the UI shows a dialog; a test answers directly), and keeps the
problems of starting (port in use, store locked, no webhook secret, listener exposed) as typed
:class:`~pocketci_tui.problems.Problem` values for whoever shows them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pocketci_tui.config import Settings
from pocketci_tui.contract import CoreClient
from pocketci_tui.intake.exposure import exposure_warning
from pocketci_tui.model import webhook_path
from pocketci_tui.problems import Problem, Problems
from pocketci_tui.secrets import (
    ENCRYPTED_FILE,
    PassphraseRequired,
    SecretStore,
    SecretStoreError,
    WrongPassphrase,
)
from pocketci_tui.start_errors import (
    NO_KEYRING_HELP,
    needs_passphrase,
    no_keyring,
    passphrase_reason,
    start_error,
)

log = logging.getLogger(__name__)

LOCKED = "secret store locked · u unlocks"
"""The status-bar problem while the encrypted file waits for its passphrase."""
NO_STORE = "keyring unavailable · u retries"
"""The status-bar problem while no keyring answers and no encrypted file was chosen."""
UNLOCK_HELP = (
    "press u (or Unlock secrets in the ctrl+p palette) to type the passphrase; until then no "
    "delivery can be verified and nothing runs"
)
RETRY_HELP = (
    "press u (or Unlock secrets in the ctrl+p palette) to choose the encrypted file's "
    "passphrase, or unlock the keyring first; `pocketci-tui check` tells more"
)
STORE_TIMEOUT = 5.0
"""Seconds the secret store has to list its names before it counts as not answering."""

START_KEYS = ("secret-store", "listener", "start", "webhook-secret")
"""The problems a new start decides again (a restart forgets them first)."""


def webhook_url(base: str) -> str:
    """The URL to paste into GitHub, given the listener's base URL."""
    return base.rstrip("/") + webhook_path("github")


def locked_problem(exc: BaseException) -> Problem:
    """The problem of an encrypted secrets file that waits for its passphrase."""
    text = str(exc).splitlines()[0] if str(exc) else "the encrypted secrets file is locked"
    return Problem(key="secret-store", short=LOCKED, detail=text, fix=UNLOCK_HELP)


class PassphrasePrompt(Protocol):
    """Asks the user for the encrypted file's passphrase.

    Args:
        why: The sentence that says why it is asked (wrong, missing file, no keyring).
        create: True when the file does not exist yet, so the passphrase creates it (asked
            twice, with the length rule).

    Returns:
        The passphrase, or None when the user declined.
    """

    def __call__(self, why: str, *, create: bool) -> Awaitable[str | None]: ...


ServicesFactory = Callable[[str, bool], CoreClient]
"""Builds new services given the encrypted file's passphrase (and True to switch to the
encrypted file because no OS keyring answers)."""


@dataclass(frozen=True, slots=True)
class Started:
    """How a start ended.

    Attributes:
        url: The listener's base URL, or empty when it does not listen.
        error: The short text of the problem that kept the services from starting, or empty.
    """

    url: str
    error: str


class Startup:
    """Starts the services and keeps the problems of starting them.

    Args:
        services: The services, not started yet (replaced when a passphrase builds new ones).
        config_dir: The config folder, where the encrypted secrets file lives.
        secrets_backend: The secret backend the configuration chose.
        with_passphrase: Builds new services given a passphrase; None: never ask for one.
        ask: Asks the user for the passphrase.
    """

    def __init__(
        self,
        services: CoreClient,
        *,
        config_dir: Path,
        secrets_backend: str,
        with_passphrase: ServicesFactory | None,
        ask: PassphrasePrompt,
    ) -> None:
        self.services = services
        """The services in use (the last ones built, once a passphrase was typed)."""
        self.problems = Problems()
        """Problems found while starting (port in use, keyring unavailable), short."""
        self.secrets_backend = secrets_backend
        """The secret backend in use (``file`` once the user chose the encrypted file)."""
        self.locked = False
        """The secret store waits for its passphrase: the prompt was cancelled."""
        self.url = ""
        """The listener's base URL once started."""
        self._config_dir = config_dir
        self._with_passphrase = with_passphrase
        self._ask = ask

    @property
    def encrypted_file(self) -> Path:
        """The encrypted secrets file (a passphrase typed while it is missing creates it)."""
        return self._config_dir / ENCRYPTED_FILE

    async def start(self, settings: Settings) -> Started:
        """Start the services, asking for a passphrase while one would help.

        A wrong passphrase is asked again; a cancelled prompt leaves the store locked (the
        user can :meth:`restart` later). The problem of a failed start, and a listener
        reachable from other machines, are recorded in :attr:`problems`.

        Args:
            settings: The configuration in use now.

        Returns:
            Where the listener listens, and what kept the services from starting.
        """
        url = ""
        problem: Problem | None = None
        use_file = False
        while True:
            try:
                url = await self.services.start()
                problem = None
                wrong = await self._wrong_passphrase()
                if not wrong or self._with_passphrase is None:
                    break
                passphrase = await self._prompt(wrong)
                if passphrase is None:
                    self.locked = True
                    break
                await self.services.stop()
                url = ""
                self.services = self._with_passphrase(passphrase, use_file)
            except Exception as exc:
                problem = self._failed(exc, settings)
                why, use_file = self._why_ask(exc, settings, use_file)
                if why is None or self._with_passphrase is None:
                    break
                passphrase = await self._prompt(why)
                if passphrase is None:
                    self.locked = True
                    problem = self._declined(exc, problem)
                    break
                self.services = self._with_passphrase(passphrase, use_file)
        if use_file and problem is None:
            self.secrets_backend = "file"
        if problem is not None:
            self.problems.raise_problem(problem)
        else:
            self.problems.clear("listener", "start")
        self.url = url or ""
        if url:
            self._check_exposure(settings)
        return Started(url=url or "", error=problem.short if problem is not None else "")

    def _failed(self, exc: Exception, settings: Settings) -> Problem:
        """Log why starting failed, and return it as a problem."""
        if self.services.owner is not None:
            # Attaching to another process (nothing of this one started): say that.
            log.warning("could not attach: %s", exc)
            return Problem(
                key="start",
                short="not attached",
                detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                fix="start the owner (`pocketci-tui serve`), then attach again; "
                "`pocketci-tui check` says what runs where",
            )
        if needs_passphrase(exc) or no_keyring(exc):
            # Expected on a first start over SSH (no keyring yet) or with the encrypted file
            # (its passphrase is asked for): one line, no traceback.
            level = logging.INFO if self._with_passphrase else logging.WARNING
            log.log(level, "secret store not open yet: %s", exc)
        else:
            log.exception("services failed to start")
        return start_error(exc, settings)

    def _why_ask(
        self, exc: Exception, settings: Settings, use_file: bool
    ) -> tuple[str | None, bool]:
        """Why to ask for a passphrase after ``exc`` (None: a passphrase would not help), and
        whether the next services use the encrypted file."""
        if self._with_passphrase is None:
            return None, use_file
        if needs_passphrase(exc):
            return passphrase_reason(exc, self.encrypted_file), use_file
        if no_keyring(exc) and settings.secrets_backend == "auto":
            return NO_KEYRING_HELP, True
        return None, use_file

    @staticmethod
    def _declined(exc: Exception, problem: Problem) -> Problem:
        """The problem to show when the user declined to type the passphrase."""
        if needs_passphrase(exc):
            return locked_problem(exc)
        return dataclasses.replace(problem, short=NO_STORE, fix=RETRY_HELP)

    async def _prompt(self, why: str) -> str | None:
        return await self._ask(why, create=not self.encrypted_file.exists())

    async def _wrong_passphrase(self) -> str:
        """After a start with the encrypted file: why its passphrase is wrong, or ``""``."""
        from pocketci_tui.secrets import EncryptedFileSecretStore, probe

        store = self.services.secrets
        if not isinstance(store, EncryptedFileSecretStore):
            return ""
        try:
            health = await probe(store)
        except Exception:
            return ""
        return health.message if health.state == "locked" else ""

    def _check_exposure(self, settings: Settings) -> None:
        """Warn when the listener can be reached from other machines."""
        listen = self.services.settings
        exposed = exposure_warning(listen.host, listen.port)
        if exposed:
            log.warning("%s", exposed)
            # The sentence says what to do: it is the detail, with no separate fix.
            self.problems.raise_problem(
                Problem(key="listener-exposed", short="listener exposed", detail=exposed)
            )
        else:
            self.problems.clear("listener-exposed")

    async def restart_stop(self) -> None:
        """Stop what runs with the locked store and forget the start's problems, so that
        :meth:`start` can begin again."""
        if self.url or self.services.started:
            await self.services.stop()
        self.url = ""
        self.problems.clear(*START_KEYS)

    async def probe_secrets(self, settings: Settings) -> None:
        """Raise or clear the problems of the secret store: not answering, plaintext, no
        webhook secret.

        Args:
            settings: The configuration in use now (it names the webhook secret).
        """
        store: SecretStore | None = self.services.secrets
        if store is None:
            return
        if not await self._store_answers(store):
            return
        warning = store.warning
        if warning:
            self.problems.raise_problem(
                Problem(
                    key="plaintext-secrets",
                    short="secrets unencrypted",
                    detail=warning,
                    fix="set secrets: {backend: keyring} or {backend: file} in the config",
                    warning=True,
                )
            )
        else:
            self.problems.clear("plaintext-secrets")
        await self._check_webhook_secret(settings)

    async def _store_answers(self, store: SecretStore) -> bool:
        """List the store's names: False (with the problem raised) when it does not answer."""
        try:
            await asyncio.wait_for(store.names(), STORE_TIMEOUT)
        except TimeoutError:
            self.problems.raise_problem(
                Problem(
                    key="secret-store",
                    short="secret store not answering",
                    detail="the secret store did not answer within 5 s",
                    fix="unlock the keyring, then press s; `pocketci-tui check` tells more",
                )
            )
            return False
        except SecretStoreError as exc:
            if self.locked or isinstance(exc, PassphraseRequired | WrongPassphrase):
                self.locked = True
                self.problems.raise_problem(locked_problem(exc))
            else:
                self.problems.raise_problem(
                    Problem(
                        key="secret-store",
                        short="keyring unavailable",
                        detail=str(exc).splitlines()[0],
                        fix="unlock the keyring, or see `pocketci-tui check` for the other secret "
                        "stores",
                    )
                )
            return False
        self.problems.clear("secret-store")
        return True

    async def _check_webhook_secret(self, settings: Settings) -> None:
        """Raise or clear the problem of a webhook secret that is not set or unreadable."""
        problem = await self.services.webhook_secret_problem()
        if not problem:
            self.problems.clear("webhook-secret")
            return
        name = settings.webhook_secret
        self.problems.raise_problem(
            Problem(
                key="webhook-secret",
                short="webhook secret not set"
                if "not set" in problem
                else "webhook secret unreadable",
                detail=problem,
                fix=f"run `pocketci-tui secrets set {name}`, or press s",
            )
        )
