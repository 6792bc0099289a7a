"""``pocketci-tui fire``: send a stored event or a payload file to a running listener, signed.

Each fire uses a NEW delivery id (a random UUID), so the listener stores it as a new event and
runs it again; re-sending with the original id would only be recorded as a redelivery. The
listener refuses a body it already stored under another delivery id (a replay), so a fire also
signs the new delivery id (``X-Pocketci-Refire``): only a holder of the secret can run a body
again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.launch import CommandFailed, passphrase_for, run_command, settings_from_args
from pocketci_tui.model import VENDORS

if TYPE_CHECKING:
    from pocketci_tui.config import Settings
    from pocketci_tui.paths import AppPaths
    from pocketci_tui.secrets import SecretStore

EXAMPLES = ("push",)
"""The kinds of example event ``fire --example`` can send."""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``fire`` subcommand."""
    parser = sub.add_parser(
        "fire",
        parents=[common],
        help="send a stored event or a payload file to a running listener, signed",
        description="Send a stored event (by id) or a JSON payload file to a running listener, "
        "signed with the forge's webhook secret as the forge would. Every fire gets a new "
        "delivery id, so it is processed again.",
    )
    parser.add_argument("event_id", nargs="?", type=int, metavar="EVENT_ID")
    parser.add_argument(
        "--example",
        choices=EXAMPLES,
        metavar="KIND",
        help="send an example event of a configured repository: push (the tip of its default "
        "branch, every file counted as changed)",
    )
    parser.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="the repository of --example (default: the first configured one)",
    )
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the payload instead of sending it (--example only)",
    )
    parser.add_argument("--file", type=Path, metavar="PAYLOAD.json", help="a payload file")
    parser.add_argument(
        "--event",
        metavar="NAME",
        help="the forge's event name (push, pull_request, 'Push Hook' for GitLab...)",
    )
    parser.add_argument(
        "--vendor",
        choices=VENDORS,
        help="the forge of --file: signed and sent as it would (default: github)",
    )
    parser.add_argument(
        "--url", metavar="URL", help="where to send it (default: the configured listener)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds to wait (30)"
    )
    parser.set_defaults(func=cmd_fire)


def cmd_fire(args: argparse.Namespace) -> int:
    """Send the delivery; exit 0 on a 2xx answer, 1 otherwise."""

    def body() -> int:
        given = [x is not None for x in (args.event_id, args.file, args.example)]
        if sum(given) != 1:
            raise CommandFailed(
                "give one of EVENT_ID, --file PAYLOAD.json --event NAME, or --example push", 2
            )
        if args.file is not None and not args.event:
            raise CommandFailed("--file needs --event NAME (push, pull_request, ...)", 2)
        if args.example is None and (args.repo or args.print_only):
            raise CommandFailed("--repo and --print go with --example", 2)
        if args.vendor is not None and args.file is None:
            raise CommandFailed(
                "--vendor goes with --file (a stored event is sent to its own forge)", 2
            )
        settings, paths = settings_from_args(args)
        base = _owner_url(args, paths) or _default_url(settings.host, settings.port)
        passphrase = passphrase_for(settings, paths)
        return asyncio.run(_fire(args, settings, paths, base, passphrase))

    return run_command(body)


def _owner_url(args: argparse.Namespace, paths: AppPaths) -> str:
    """The listener URL of the running owner of the data folder, unless --host/--port say
    where to send; empty when nobody owns it (or its record has no URL)."""
    from urllib.parse import urlsplit

    from pocketci_tui.datalock import lock_owner

    if getattr(args, "host", None) is not None or getattr(args, "port", None) is not None:
        return ""
    owner = lock_owner(paths.lock_file)
    if owner is None or not owner.url:
        return ""
    try:
        parts = urlsplit(owner.url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    if not host or port is None:
        return ""
    return _default_url(host, port)


def _default_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def _fire(
    args: argparse.Namespace, settings: Settings, paths: AppPaths, base: str, passphrase: str | None
) -> int:
    import aiohttp

    from pocketci_tui import __version__
    from pocketci_tui.launch import open_secrets
    from pocketci_tui.model import webhook_path
    from pocketci_tui.secrets import SecretStoreError

    try:
        secrets = await open_secrets(settings, paths, passphrase=passphrase)
    except SecretStoreError as exc:
        raise CommandFailed(f"cannot open the secret store: {exc}", 1) from exc
    if args.file is not None:
        try:
            body = args.file.read_bytes()
        except OSError as exc:
            raise CommandFailed(f"cannot read {args.file}: {exc.strerror}", 2) from exc
        event_name, vendor = str(args.event), args.vendor or "github"
    elif args.example is not None:
        body, event_name = await _example(args.example, args.repo, settings, paths, secrets)
        vendor = "github"
        if args.print_only:
            print(body.decode())
            return 0
    else:
        body, event_name, vendor = await _stored(paths, args.event_id)
    name = settings.webhook_secret_of(vendor)
    try:
        secret = await asyncio.wait_for(secrets.get(name), 30)
    except (SecretStoreError, TimeoutError) as exc:
        raise CommandFailed(f"cannot read the webhook secret: {exc or 'timed out'}", 1) from exc
    if not secret:
        raise CommandFailed(
            f"the webhook secret {name!r} is not set; run `pocketci-tui secrets set {name}`", 2
        )
    delivery = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"pocketci-tui-fire/{__version__}",
        **_signed(vendor, body, secret, event_name, delivery),
    }
    url = args.url or base + webhook_path(vendor)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=headers) as resp,
        ):
            status = resp.status
            text = (await resp.read()).decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CommandFailed(f"cannot reach {url}: {exc or 'timed out'}", 1) from exc
    from pocketci_tui.logging_setup import safe_text

    print(f"{status} delivery={delivery} event={event_name}")
    print(safe_text(text.strip(), 4000))
    if not 200 <= status < 300:
        print(f"pocketci-tui: error: the listener answered {status}", file=sys.stderr)
        return 1
    return 0


def _signed(
    vendor: str, body: bytes, secret: str, event_name: str, delivery: str
) -> dict[str, str]:
    """The headers a forge sends with ``body``, and the proof that it is run again on purpose.

    The forge's own signing helper signs it; its own verifier then gives the body's digest,
    which the re-fire proof covers (the listener refuses a known body without it).
    """
    from pocketci_tui.forges.base import REFIRE_HEADER, refire_signature
    from pocketci_tui.forges.registry import UnknownVendor, forge_for

    try:
        forge = forge_for(vendor)
    except UnknownVendor as exc:
        raise CommandFailed(f"cannot sign as {vendor}: {exc.args[0]}", 2) from None
    headers = forge.sign(body, secret, event_name=event_name, delivery_id=delivery)
    check = forge.verifier(secret).start(headers)
    check.update(body)
    if not check.verified():  # pragma: no cover - a forge that cannot check its own signature
        raise CommandFailed(f"the {forge.display_name} signature does not verify", 1)
    headers[REFIRE_HEADER] = refire_signature(secret, delivery, check.digest())
    return headers


async def _example(
    kind: str, repo_name: str | None, settings: Settings, paths: AppPaths, secrets: SecretStore
) -> tuple[bytes, str]:
    """Build an example delivery for a configured repository, at a commit it really has.

    The commit is the tip of the repository's default branch, asked of its configured clone
    URL (with its clone token) through the same git code the engine uses, so the event checks
    out and runs like a real push. ``before`` is all zeros: every file counts as changed.
    """
    import json

    from pocketci_tui.engine.dispatch.repos import clone_url, git_auth
    from pocketci_tui.engine.git import GitError, Workspace
    from pocketci_tui.model import ZERO_SHA
    from pocketci_tui.secrets import SecretStoreError

    assert kind == "push"
    if not settings.repos:
        raise CommandFailed(
            f"no repository in {paths.config_file}: add one under `repos:` "
            "(for example `repos: [{name: owner/name, token: github-token}]`) and try again",
            2,
        )
    on_github = [r for r in settings.repos if r.vendor == "github"]
    if repo_name is None:
        if not on_github:
            raise _not_github(settings.repos[0].name, settings.repos[0].vendor)
        repo = on_github[0]
        repo_name = repo.name
    else:
        found = settings.repo_for("github", repo_name)
        if found is None:
            elsewhere = next((r for r in settings.repos if r.matches(r.vendor, repo_name)), None)
            if elsewhere is not None:
                raise _not_github(repo_name, elsewhere.vendor)
            names = ", ".join(r.name for r in settings.repos)
            raise CommandFailed(f"{repo_name} is not in the config (configured: {names})", 2)
        repo = found
    if any(c in repo_name for c in "*?["):
        raise CommandFailed(
            f"{repo_name} is a pattern; name one repository with --repo OWNER/NAME", 2
        )
    token = None
    if repo.token:
        try:
            token = await asyncio.wait_for(secrets.get(repo.token), 30)
        except (SecretStoreError, TimeoutError) as exc:
            raise CommandFailed(f"cannot read the clone token {repo.token!r}: {exc}", 1) from exc
        if token is None:
            raise CommandFailed(
                f"the clone token {repo.token!r} is not set; "
                f"run `pocketci-tui secrets set {repo.token}`",
                2,
            )
    try:
        # Where the engine fetches from (clone-url, else forges.github.url), the token in
        # the form the forge takes it.
        url = clone_url(settings, repo, repo_name)
        secret, user = git_auth(repo, token)
        # A private, throw-away git home: fire never writes into the owner's data folder.
        with tempfile.TemporaryDirectory(prefix="pocketci-fire-") as tmp:
            workspace = Workspace(Path(tmp), timeout=60)
            ref, sha = await workspace.resolve_commit(url, secret, (), username=user)
    except (GitError, ValueError) as exc:
        raise CommandFailed(
            f"cannot ask {repo_name} for the tip of its default branch: {exc}", 1
        ) from exc
    branch = ref.removeprefix("refs/heads/")
    owner, _, name = repo_name.partition("/")
    payload = {
        "ref": ref,
        "before": ZERO_SHA,
        "after": sha,
        "created": True,
        "deleted": False,
        "forced": False,
        "repository": {
            "full_name": repo_name,
            "name": name,
            "owner": {"login": owner},
            "default_branch": branch,
        },
        "head_commit": {"id": sha, "message": "Example push sent by pocketci-tui fire"},
        "pusher": {"name": "pocketci-tui"},
        "sender": {"login": "pocketci-tui"},
    }
    return json.dumps(payload, indent=2).encode(), "push"


def _not_github(repo_name: str, vendor: str) -> CommandFailed:
    """``--example`` builds GitHub's push: say so, and how to send another forge's."""
    event = "'Push Hook'" if vendor == "gitlab" else "push"
    return CommandFailed(
        f"`fire --example` builds a GitHub push, and {repo_name} is on {vendor}: save one of "
        f"{vendor}'s push payloads and send it with `pocketci-tui fire --file PAYLOAD.json "
        f"--event {event} --vendor {vendor}`",
        2,
    )


async def _stored(paths: AppPaths, event_id: int) -> tuple[bytes, str, str]:
    from pocketci_tui.store import Store, StoreError

    try:
        # Read-only: fire runs beside the owner and sends through its listener.
        store = await Store.open_read_only(paths.db_file)
    except FileNotFoundError:
        raise CommandFailed(f"no stored event with id {event_id} (no database yet)", 2) from None
    except StoreError as exc:
        raise CommandFailed(str(exc), 1) from exc
    try:
        stored = await store.get_event(event_id)
    finally:
        await store.close()
    if stored is None:
        raise CommandFailed(f"no stored event with id {event_id}", 2)
    event = stored.event
    return event.body, event.event_name or event.event_type, event.vendor
