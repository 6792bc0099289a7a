"""The Textual app: composes the screens, wires services to the UI and manages lifecycle.

Use cases live in the engine and the store; this module only starts and stops the services,
subscribes the bridge, and routes actions to the engine.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.screen import Screen

from pocketci_tui.config import Settings
from pocketci_tui.contract import CoreClient, RejectionSummary
from pocketci_tui.keys import effective_keymap
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import Problems
from pocketci_tui.startup import Startup, webhook_url

from .actions import CoreActions
from .attach import Attachment
from .bridge import EngineBridge
from .collector import QuietCollector
from .commands import EventCommands, pocketci_commands
from .copying import copied_note
from .dialogs.details import EventDetails
from .dialogs.help import HelpDialog
from .dialogs.repositories import RepositoriesDialog
from .dialogs.secrets import Unlock
from .dialogs.setup import SetupDialog
from .dialogs.webhook import configured_forges, forge_name
from .leaving import LEAVING, allowed, hidden_binding, quit_asking
from .messages import (
    Approve,
    CancelEvent,
    CancelRun,
    CopyText,
    Fire,
    OpenFirePicker,
    OpenLog,
    OwnerLinkChanged,
    OwnerSettingsChanged,
    RecheckProblems,
    RefusalsChanged,
    Rerun,
    ServicesStarted,
    ShowEventDetails,
    ShowRepositories,
)
from .openers import DialogOpeners, ask_passphrase, key_rows
from .pager import page, pager_argv
from .reloading import ConfigReloads
from .screens.main import MainScreen

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PagerRunner = Callable[[list[str]], object]


COLLECTOR_CHECK_SECONDS = 1.0
"""How often the collector looks for new long-lived objects to freeze."""


def local_now() -> datetime:
    """The current local time, timezone-aware."""
    return datetime.now().astimezone()


class PocketCIApp(App[int]):
    """pocketci's terminal UI.

    Args:
        settings: The user configuration.
        paths: Where config and data live.
        services: Store, engine, secret store and listener (started and stopped here).
        clock: The current time (fixed in snapshot tests).
        pager: Runs a pager argv (tests replace it; default: suspend and run it).
        first_start: Offer the setup flow (no config file yet).
        unlock_secrets: Opens the encrypted-file secret store with a passphrase.
        services_with_passphrase: Builds new services given the encrypted file's passphrase.
        quiet_gc: Keep full garbage collections short by freezing the long-lived objects
            once the services are up (the CLI does; it affects the whole process).
    """

    CSS_PATH = "app.tcss"
    TITLE = "pocketci"
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-narrow"),
        (110, "-wide"),
    ]
    COMMANDS = App.COMMANDS | {EventCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="help", tooltip="this help"),
        Binding("q", "quit", "Quit", id="quit", tooltip="quit (asks while builds run)"),
        Binding("q", "detach", "Detach", id="detach", tooltip="detach (the owner's builds go on)"),
        Binding("s", "secrets", "Secrets", id="secrets-show", tooltip="manage secrets"),
        Binding("w", "webhook", "Webhook", id="webhook-show", tooltip="webhook URL and secret"),
        Binding("u", "unlock", "Unlock", id="secrets-unlock", tooltip="unlock the secret store"),
        Binding(
            "ctrl+l",
            "reload_config",
            "Reload config",
            show=False,
            id="config-reload",
            tooltip="reload config.yaml",
        ),
        Binding(
            "ctrl+q",
            "leave",
            "Quit",
            show=False,
            priority=True,
            id="quit-now",
            tooltip="quit or detach from anywhere, even a dialog",
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        paths: AppPaths,
        services: CoreClient,
        clock: Clock = local_now,
        pager: PagerRunner | None = None,
        first_start: bool = False,
        unlock_secrets: Unlock | None = None,
        services_with_passphrase: Callable[[str, bool], CoreClient] | None = None,
        quiet_gc: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        """The user configuration."""
        self.paths = paths
        """Where config and data live."""
        self.clock = clock
        """The current time."""
        self.startup = Startup(
            services,
            config_dir=paths.config_dir,
            secrets_backend=settings.secrets_backend,
            with_passphrase=services_with_passphrase,
            ask=partial(ask_passphrase, self),
        )
        """Starts the services (asking for a passphrase here) and keeps the start's problems."""
        self.main_screen: MainScreen | None = None
        """The main screen once mounted."""
        self.attachment = Attachment(self, lambda: self.services, lambda: self.main_screen)
        """Whose builds these are when another process owns them, and the link to it."""
        self.actions = CoreActions(
            self,
            lambda: self.services,
            lambda: self.settings,
            clock,
            unavailable=self.attachment.unavailable,
        )
        """Carries out the main screen's commands on the engine."""
        self._pager = pager
        self._first_start = first_start
        self.openers = DialogOpeners(
            self,
            self.startup,
            lambda: self.settings,
            self.attachment.refused,
            lambda: self.listener_url,
            clock,
            unlock_secrets,
            self.recheck_problems,
        )
        """Opens the webhook, secrets and refused-requests dialogs."""
        self._bridge: EngineBridge | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._unwatch_refusals: Callable[[], None] | None = None
        self._stopped = False
        self.reloads = ConfigReloads(self, paths, self._apply_settings)
        """config.yaml reloads, when this process owns the builds."""
        self.collector: QuietCollector | None = QuietCollector() if quiet_gc else None
        """Freezes long-lived objects so full collections stay short (None: not used)."""

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, except on Unix terminals: there, one whose writes never block the
        event loop when the terminal stops reading (see :mod:`.terminal`)."""
        driver = super().get_driver_class()
        if sys.platform != "win32":
            from textual.drivers.linux_driver import LinuxDriver

            from .terminal import PocketCIDriver

            if driver is LinuxDriver:
                return PocketCIDriver
        return driver

    @property
    def webhook_url(self) -> str:
        """The URL to paste into GitHub."""
        return webhook_url(self.listener_url or self.settings.listen_url)

    @property
    def services(self) -> CoreClient:
        """The running instance, through the one contract the UI uses (new services once a
        passphrase was typed)."""
        return self.startup.services

    @property
    def problems(self) -> Problems:
        """Problems found while starting (port in use, keyring unavailable), short."""
        return self.startup.problems

    @property
    def secrets_backend(self) -> str:
        """The secret backend in use (``file`` once the user chose the encrypted file)."""
        return self.startup.secrets_backend

    @property
    def listener_url(self) -> str:
        """The listener's base URL once started (the owner's as it says now, when attached:
        a restarted owner may listen elsewhere)."""
        if self.attachment.attached and self.services.started:
            return self.services.url
        return self.startup.url

    @property
    def secrets_locked(self) -> bool:
        """The secret store waits for its passphrase: the prompt was cancelled (``u`` asks
        again)."""
        return self.startup.locked

    # -- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Apply the keymap, show the main screen and start the services in the background."""
        if self.settings.keymap:
            self.set_keymap(effective_keymap(self.settings.keymap))
        self.main_screen = MainScreen(
            self.clock, services=self.services, logs_dir=self.paths.logs_dir, problems=self.problems
        )
        self.main_screen.forges = _forge_names(self.settings)
        self.push_screen(self.main_screen)
        self._bridge = EngineBridge(self.main_screen)
        # Paint the first frame before importing and starting the services.
        self.call_after_refresh(self._begin_start)

    def _begin_start(self) -> None:
        if self._start_task is None and not self._stopped:
            self._start_task = asyncio.create_task(self._start_services())

    async def _start_services(self) -> None:
        assert self._bridge is not None
        assert self.main_screen is not None
        started = await self.startup.start(self.settings)
        self.main_screen.services = self.services
        self.main_screen.refresh_status()  # the start's problems, before the store is probed
        self.refresh_bindings()
        if self.services.started:
            self._bridge.attach(self.services)
            self.attachment.started()
            if self.attachment.attached:
                self.use_settings(self.services.settings)  # the owner's, as it runs
        self._watch_refusals()
        await self.startup.probe_secrets(self.settings)
        screen = self.main_screen
        screen.starting = False
        screen.listener_url = started.url
        screen.refresh_status()
        screen.post_message(ServicesStarted(url=started.url, error=started.error))
        if self.collector is not None and not self.collector.freezes:
            self.call_after_refresh(self._quiet_collector)
        if not self._stopped and not self.attachment.attached:
            await self.reloads.start(self.services.settings)
        if self._first_start and self.services.secrets is not None:
            self._first_start = False
            self.push_screen(
                SetupDialog(
                    self.paths.config_file,
                    # The file gets the default port: a --port given for this start is not
                    # meant to outlive it.
                    Settings().port,
                    self.webhook_url,
                    self.settings.webhook_secret,
                    self.services.secrets,
                    secrets_backend=self.secrets_backend,
                ),
                self._setup_done,
            )

    def _watch_refusals(self) -> None:
        """Show the listener's refused requests in the status bar as they come."""
        if self._unwatch_refusals is not None:
            return
        screen = self.main_screen

        def told(summary: RejectionSummary) -> None:
            if screen is not None:
                screen.post_message(RefusalsChanged(summary))

        self._unwatch_refusals = self.services.subscribe_refusals(told)

    def action_refused(self) -> None:
        """List the requests the listener refused lately (never their bodies)."""
        self.openers.refused()

    def _quiet_collector(self) -> None:
        """Freeze what start-up made, then look again now and then (see :mod:`.collector`)."""
        if self.collector is not None and not self._stopped:
            self.set_interval(COLLECTOR_CHECK_SECONDS, self.collector.begin(), name="collector")

    @property
    def encrypted_file(self) -> Path:
        """The encrypted secrets file (a passphrase typed while it is missing creates it)."""
        return self.startup.encrypted_file

    def _setup_done(self, done: bool | None) -> None:
        self.recheck_problems()

    @work(group="problems", exclusive=True)
    async def recheck_problems(self) -> None:
        """Look at the secret store and the webhook secret again (after setup or a change)."""
        await self.startup.probe_secrets(self.settings)
        if self.main_screen is not None:
            self.main_screen.refresh_status()

    async def on_unmount(self) -> None:
        """Stop the services and wait for them (children killed, socket closed)."""
        await self.stop_services()

    async def stop_services(self) -> None:
        """Stop everything once (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self.collector is not None:
            self.collector.unwatch()
        await self.reloads.stop()
        task = self._start_task
        if task is not None:
            if not task.done():
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("start task failed")
        if self._bridge is not None:
            self._bridge.detach()
        if self._unwatch_refusals is not None:
            self._unwatch_refusals()
            self._unwatch_refusals = None
        try:
            await self.services.stop()
        except Exception:
            log.exception("stopping services failed")

    # -- palette -----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own commands plus pocketci's actions."""
        yield from pocketci_commands(self, screen)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # -- actions -----------------------------------------------------------------------------

    def key_rows(self) -> list[tuple[str, str, str]]:
        """(keys, description, id) for the help dialog, from the bindings, after remapping."""
        hidden = hidden_binding(self.attachment.attached)
        return key_rows(type(self), self.settings.keymap, hidden=hidden)

    def action_help(self) -> None:
        """Show the keys (built once, then reused: it opens at once even under load)."""
        if not self.is_screen_installed("help"):
            self.install_screen(HelpDialog(self.key_rows()), "help")
        self.push_screen("help")

    async def action_reload_config(self) -> None:
        """Read config.yaml again and use what can change while running (attached: the
        owner reads its own)."""
        if self.attachment.attached:
            if not self.attachment.refused():
                self.run_worker(self.attachment.reload(self.use_settings), group="reload")
            return
        await self.reloads.reload_now()

    def _apply_settings(self, settings: Settings) -> None:
        """Use a reloaded configuration: services (engine, intake), keymap, help."""
        self.services.apply_settings(settings)
        self.use_settings(settings)

    def use_settings(self, settings: Settings) -> None:
        """Show what ``settings`` say (forges, keymap, help); the owner's when attached."""
        self.settings = settings
        if self.main_screen is not None:
            self.main_screen.forges = _forge_names(settings)
        self.set_keymap(effective_keymap(settings.keymap))
        if self.is_screen_installed("help") and not isinstance(self.screen, HelpDialog):
            self.uninstall_screen("help")

    def action_webhook(self) -> None:
        """Show the webhook URL and (on request) the secret."""
        self.openers.webhook(self.webhook_url)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer unlock only while the secret store waits for its passphrase, and one way out:
        quit where this process owns the builds, detach where it shows another's."""
        if action == "unlock":
            return self.secrets_locked
        if action in LEAVING:
            return allowed(action, self.attachment.attached)
        return True

    def action_unlock(self) -> None:
        """Ask for the encrypted file's passphrase again (the prompt was cancelled), or, where
        no keyring answers, offer the encrypted file again; then start the services."""
        if not self.secrets_locked:
            self.notify("The secret store is open")
            return
        if self._start_task is not None and not self._start_task.done():
            return
        self.startup.locked = False
        self.refresh_bindings()
        self._start_task = asyncio.create_task(self._start_again())

    async def _start_again(self) -> None:
        """Stop what runs with the locked store, forget the start's problems, start again."""
        if self._bridge is not None:
            self._bridge.detach()
        if self._unwatch_refusals is not None:
            self._unwatch_refusals()
            self._unwatch_refusals = None
        await self.startup.restart_stop()
        if self.main_screen is not None:
            self.main_screen.listener_url = ""
            self.main_screen.starting = True
        await self._start_services()

    def action_secrets(self) -> None:
        """Manage secrets."""
        self.openers.secrets()

    async def action_quit(self) -> None:
        """Quit; while builds run or wait, ask first (attached, detach instead: see
        :mod:`.leaving`)."""
        if self.attachment.attached:
            self.action_detach()
            return
        await quit_asking(self, self.services)

    def action_detach(self) -> None:
        """Leave another process's builds at once: they go on."""
        self.exit(0)

    async def action_leave(self) -> None:
        """Quit or detach, whichever applies (``ctrl+q``, from anywhere)."""
        await self.action_quit()

    def open_fire_picker(self, event_id: int | None) -> None:
        """Open the fire picker; Enter fires the chosen event."""
        self.actions.open_fire_picker(event_id, self.fire_event)

    def fire_event(self, event_id: int) -> None:
        """Dispatch a stored event again, chosen outside the main screen (the fire picker, the
        palette): the command starts at the main screen, which follows the event's new runs,
        and comes up here."""
        if self.main_screen is not None:
            self.main_screen.post_message(Fire(event_id))
        else:
            self.actions.fire(event_id)

    # -- the main screen's commands ----------------------------------------------------------

    @on(OpenFirePicker)
    def _open_fire_picker(self, message: OpenFirePicker) -> None:
        self.open_fire_picker(message.event_id)

    @on(Fire)
    def _fire(self, message: Fire) -> None:
        self.actions.fire(message.event_id)

    @on(Rerun)
    def _rerun(self, message: Rerun) -> None:
        self.actions.rerun(message.run_id)

    @on(CancelRun)
    def _cancel_run(self, message: CancelRun) -> None:
        self.actions.cancel_run(message.run_id)

    @on(CancelEvent)
    def _cancel_event(self, message: CancelEvent) -> None:
        self.actions.cancel_event(message.event_id)

    @on(Approve)
    def _approve(self, message: Approve) -> None:
        self.actions.approve(message.stored)

    @on(OpenLog)
    def _open_log(self, message: OpenLog) -> None:
        self.open_in_pager(self.paths.logs_dir / message.log_path)

    @on(ShowEventDetails)
    def _show_details(self, message: ShowEventDetails) -> None:
        self.push_screen(EventDetails(message.stored, message.runs, self.clock, message.queue))

    @on(ShowRepositories)
    def _show_repositories(self, message: ShowRepositories) -> None:
        self.push_screen(RepositoriesDialog(message.summaries, self.clock))

    @on(CopyText)
    def _copy(self, message: CopyText) -> None:
        self.copy_to_clipboard(message.text)
        self.notify(copied_note(message), markup=False)

    @on(OwnerLinkChanged)
    def _link_changed(self, message: OwnerLinkChanged) -> None:
        self.attachment.link_changed(message.link)
        if message.link.up:
            self.use_settings(self.services.settings)  # a restarted owner's, as it runs now

    @on(OwnerSettingsChanged)
    def _owner_settings_changed(self, message: OwnerSettingsChanged) -> None:
        if self.attachment.attached:  # in process, the reload here applied them already
            self.use_settings(message.settings)

    @on(RecheckProblems)
    def _recheck(self, message: RecheckProblems) -> None:
        self.recheck_problems()

    def open_in_pager(self, path: Path) -> None:
        """Open a file in ``$PAGER`` (default ``less``), the UI suspended meanwhile."""
        argv = pager_argv(path)
        if self._pager is not None:
            self._pager(argv)
            return
        self.run_worker(page(self, argv), group="pager", exclusive=True)


def make_app(
    settings: Settings,
    *,
    paths: AppPaths,
    services: CoreClient,
    clock: Clock = local_now,
    pager: PagerRunner | None = None,
    first_start: bool | None = None,
    unlock_secrets: Unlock | None = None,
    services_with_passphrase: Callable[[str, bool], CoreClient] | None = None,
    quiet_gc: bool = False,
) -> PocketCIApp:
    """Build the app; the CLI, tests and the screenshot script all use this.

    Args:
        settings: The user configuration.
        paths: Where config and data live.
        services: Store, engine, secret store and listener, not started yet.
        clock: The current time (fixed for snapshots).
        pager: Runs a pager argv (tests replace it).
        first_start: Offer the setup flow; default: when the config file does not exist.
        unlock_secrets: Opens the encrypted-file secret store with a passphrase.
        services_with_passphrase: Builds new services given the encrypted file's passphrase
            (and True to switch to the encrypted file because no OS keyring answers), used
            when starting fails for the lack of it.
        quiet_gc: Freeze the long-lived objects once the services are up, so that full
            garbage collections stay short (see :mod:`.collector`); for the real process.

    Returns:
        The app, ready to ``run()``.
    """
    if first_start is None:
        first_start = not paths.config_file.exists()
    return PocketCIApp(
        settings,
        paths=paths,
        services=services,
        clock=clock,
        pager=pager,
        first_start=first_start,
        unlock_secrets=unlock_secrets,
        services_with_passphrase=services_with_passphrase,
        quiet_gc=quiet_gc,
    )


def _forge_names(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(name, vendor) of each forge the config names, for the main screen's hints."""
    return tuple((forge_name(vendor), vendor) for vendor in configured_forges(settings))
