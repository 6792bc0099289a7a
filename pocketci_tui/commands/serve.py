"""``pocketci-tui serve``: the listener and engine without a UI, logging to stdout."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING

from pocketci_tui.launch import CommandFailed, passphrase_for, run_command, settings_from_args

if TYPE_CHECKING:
    from pocketci_tui.config import Settings
    from pocketci_tui.datalock import DataLock
    from pocketci_tui.paths import AppPaths
    from pocketci_tui.services import Services

log = logging.getLogger("pocketci_tui.serve")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``serve`` subcommand."""
    parser = sub.add_parser(
        "serve",
        parents=[common],
        help="run the webhook listener and engine headless (for systemd), logging to stdout",
        description="Run the webhook listener and engine without the terminal UI. Logs one "
        "line per event and run to stdout, and each event's outcome once its runs finished; "
        "failures at WARNING (under systemd, `journalctl -p warning` shows them). SIGTERM or "
        "SIGINT stops it gracefully. config.yaml is reloaded when it changes and on SIGHUP "
        "(the listen address, secret store, webhook secret name, concurrency and Dagger CLI "
        "change at the next start).",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="also print run output, prefixed by run id"
    )
    parser.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; exit 0 after a graceful stop."""

    def body() -> int:
        from pocketci_tui import logging_setup
        from pocketci_tui.datalock import DataFolderBusy, DataLock
        from pocketci_tui.intake import ListenerError, bind_sockets

        settings, paths = settings_from_args(args)
        # Own the data folder before anything reads or changes it, and hold the port before
        # asking for a passphrase: a second instance fails here, having changed nothing.
        try:
            lock = DataLock.acquire(paths.lock_file, "serve")
        except DataFolderBusy as exc:
            raise CommandFailed(str(exc), 2) from exc
        except OSError as exc:
            raise CommandFailed(
                f"cannot start: cannot lock the data folder {paths.data_dir}: "
                f"{exc.strerror or exc}",
                1,
            ) from exc
        with lock:
            try:
                sockets = bind_sockets(settings.host, settings.port)
            except ListenerError as exc:
                raise CommandFailed(f"cannot start: {exc}", 1) from exc
            try:
                logging_setup.configure(sys.stdout)
                passphrase = passphrase_for(settings, paths)
                return asyncio.run(
                    _serve(
                        settings, paths, passphrase, verbose=args.verbose, lock=lock, socks=sockets
                    )
                )
            finally:
                for sock in sockets:
                    sock.close()

    return run_command(body)


async def _serve(
    settings: Settings,
    paths: AppPaths,
    passphrase: str | None,
    *,
    verbose: bool,
    lock: DataLock | None = None,
    socks: list[socket.socket] | None = None,
) -> int:
    from pocketci_tui import __version__, logging_setup
    from pocketci_tui.config_reload import ConfigReloader, Reload
    from pocketci_tui.model import Notice, RunOutput, webhook_path
    from pocketci_tui.services import Services, ServicesError

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    out = logging_setup.LineWriter(sys.stdout)

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, RunOutput):
            if verbose:
                for line in logging_setup.output_lines(notice):
                    out.raw(line)
            return
        text = logging_setup.describe_notice(notice)
        if text:
            out.log(logging_setup.notice_level(notice), text)

    services = Services(settings, paths, passphrase=passphrase, lock=lock, sockets=socks)
    log.info(
        "pocketci-tui %s starting (config %s, data %s)",
        __version__,
        paths.config_file,
        paths.data_dir,
    )
    try:
        await services.start()
    except ServicesError as exc:
        raise CommandFailed(f"cannot start: {exc}", 1) from exc
    assert services.engine is not None
    unsubscribe = services.engine.subscribe(on_notice)
    reloader = ConfigReloader(paths.config_file, settings, services.apply_settings)
    await reloader.prime()

    def report(result: Reload) -> None:
        level = logging.INFO if result.ok and not result.restart else logging.WARNING
        log.log(level, "%s", result.describe(paths.config_file))

    reloading: set[asyncio.Task[None]] = set()

    async def reload_now() -> None:
        report(await reloader.reload())

    async def reload_for_client() -> tuple[bool, str]:
        # An attached UI's reload key: the same reload as SIGHUP, answered with what it did.
        result = await reloader.reload()
        report(result)
        return result.ok, result.describe(paths.config_file)

    services.reload_config = reload_for_client

    def on_hangup() -> None:
        task = asyncio.create_task(reload_now(), name="pocketci-config-reload")
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    reloader.watch(report)
    try:
        log.info("listening on %s", services.url)
        for vendor in settings.forges_in_use():
            label = "webhook URL" if vendor == "github" else f"webhook URL for {vendor}"
            log.info("%s: %s", label, services.url + webhook_path(vendor))
        _log_polling(settings)
        await _log_start_warnings(services, settings, paths)
        await stop.wait()
        log.info("stopping")
    finally:
        services.reload_config = None
        loop.remove_signal_handler(signal.SIGHUP)
        await reloader.stop()
        for task in list(reloading):
            task.cancel()
        unsubscribe()
        out.flush()
        await services.stop()
    log.info("stopped")
    return 0


def _log_polling(settings: Settings) -> None:
    """Say which repositories are polled, and how often (none: nothing said)."""
    from pocketci_tui.polling import polled_repos

    polled = polled_repos(settings)
    if polled:
        shown = ", ".join(f"{r.name} every {r.poll:g}s" for r in polled[:10])
        more = f" and {len(polled) - 10} more" if len(polled) > 10 else ""
        log.info("polling %s%s (their first poll records the refs, runs nothing)", shown, more)


async def _log_start_warnings(services: Services, settings: Settings, paths: AppPaths) -> None:
    """Log what the user should fix, once the listener is up: a listener other machines
    reach, no webhook secret, files open to other users, a plaintext secret store, what the
    engine found missing, no repositories."""
    from pocketci_tui.intake.exposure import exposure_warning
    from pocketci_tui.paths import exposed_paths, exposure_fix

    port = services.listener.port if services.listener is not None else settings.port
    exposed = exposure_warning(settings.host, port)
    if exposed:
        log.warning("%s", exposed)
    problem = await services.webhook_secret_problem()
    if problem:
        log.warning("%s", problem)
    for path, what, mode in await asyncio.to_thread(exposed_paths, paths):
        log.warning(
            "%s (%s) is open to other users (%04o): run `%s`",
            path,
            what,
            mode,
            exposure_fix(path),
        )
    warning = services.secrets.warning if services.secrets is not None else None
    if warning:
        log.warning("%s", warning)
    if services.engine is not None:
        for found in services.engine.problems():
            log.warning("%s%s", found.detail, f"; {found.fix}" if found.fix else "")
    if not settings.repos:
        log.warning("no repositories are configured: every delivery is stored and ignored")
