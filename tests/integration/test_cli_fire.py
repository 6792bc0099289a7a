"""`pocketci-tui fire` against a real `pocketci-tui serve`, and `events --json` listing it."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config

pytestmark = pytest.mark.timeout(180)


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pocketci_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_fire_file_then_stored_event_then_listed(
    hermetic_home: Path, payloads_dir: Path
) -> None:
    write_serve_config(
        hermetic_home, repos="[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]"
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        payload = payloads_dir / "push_branch.json"
        code, out, err = await _cli(
            "fire", "--file", str(payload), "--event", "push", "--url", serve.hook_url
        )
        assert code == 0, err
        first_line, reply = out.splitlines()[0], json.loads(out.splitlines()[1])
        assert first_line.startswith("202 delivery=")
        assert reply["status"] == "stored"
        delivery = first_line.split("delivery=")[1].split()[0]
        assert reply["delivery_id"] == delivery

        code, out, err = await _cli("events", "--json")
        assert code == 0, err
        events = json.loads(out)
        assert [e["delivery_id"] for e in events] == [delivery]
        listed = events[0]
        assert (listed["event_type"], listed["filter"], listed["repository"]) == (
            "push",
            "main",
            "acme/api",
        )
        assert listed["sha"] == "9f2c1a7e3b5d4c6e8f0a1b2c3d4e5f60718293a4"
        # Who sent it, its commits and its page, read from the payload by the listener.
        assert (listed["author"], listed["commits"]) == ("octocat", 1)
        assert listed["url"] == "https://github.com/acme/api/compare/3c1b8a2d4e6f...9f2c1a7e3b5d"

        # Re-fire the stored event: a new delivery id, so a new event that runs again.
        code, out, err = await _cli("fire", str(listed["id"]), "--url", serve.hook_url)
        assert code == 0, err
        refired = json.loads(out.splitlines()[1])
        assert refired["status"] == "stored"
        assert refired["delivery_id"] != delivery
        assert refired["event_id"] != listed["id"]
        code, out, _ = await _cli("events", "--json", "--limit", "1")
        assert json.loads(out)[0]["delivery_id"] == refired["delivery_id"]

        # The default URL comes from the config's listen address (port 0 here, so it fails).
        code, out, err = await _cli("fire", str(listed["id"]), "--port", "9")
        assert code == 1
        assert "cannot reach http://127.0.0.1:9/webhooks/github" in err

        # A listener answering non-2xx makes fire exit 1.
        code, out, err = await _cli(
            "fire",
            "--file",
            str(payload),
            "--event",
            "push",
            "--url",
            serve.url + "/webhooks/nowhere",
        )
        assert code == 1
        assert out.startswith("404")
    finally:
        assert await serve.terminate() == 0
    assert any("event 1 stored: push acme/api main" in line for line in serve.lines)
    assert serve.lines[-1].endswith("stopped")


async def test_fire_with_another_secret_is_refused(hermetic_home: Path, payloads_dir: Path) -> None:
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        other = hermetic_home / "other"
        other.mkdir()
        (other / "config.yaml").write_text("secrets: {backend: plaintext}\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pocketci_tui",
            "--config",
            str(other / "config.yaml"),
            "secrets",
            "set",
            "webhook-secret",
            "--stdin",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await proc.communicate(b"a-different-secret")
        code, out, _ = await _cli(
            "--config",
            str(other / "config.yaml"),
            "fire",
            "--file",
            str(payloads_dir / "push_branch.json"),
            "--event",
            "push",
            "--url",
            serve.hook_url,
        )
        assert code == 1
        assert out.startswith("401")
    finally:
        await serve.terminate()


async def test_fire_signs_with_the_secret_of_the_forge(
    hermetic_home: Path, payloads_dir: Path
) -> None:
    """forges.github.webhook-secret names the entry both serve and fire use for GitHub."""
    write_serve_config(hermetic_home, extra="forges: {github: {webhook-secret: gh-hook}}\n")
    set_secret_cli("gh-hook", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        payload = str(payloads_dir / "push_branch.json")
        code, out, err = await _cli(
            "fire", "--file", payload, "--event", "push", "--vendor", "github"
        )
        assert code == 0, err
        assert out.startswith("202 delivery=")
        # A stored event is sent again to its own forge's URL, signed with that forge's secret.
        stored = json.loads(out.splitlines()[1])["event_id"]
        code, out, err = await _cli("fire", str(stored))
        assert code == 0, err
        assert json.loads(out.splitlines()[1])["status"] == "stored"
        code, _, err = await _cli("fire", str(stored), "--vendor", "github")
        assert code == 2
        assert "--vendor goes with --file" in err
    finally:
        await serve.terminate()


@pytest.mark.parametrize(("vendor", "event"), [("gitea", "push"), ("gitlab", "Push Hook")])
async def test_fire_vendor_signs_as_that_forge_does(
    hermetic_home: Path, payloads_dir: Path, vendor: str, event: str
) -> None:
    """fire --vendor: the forge's own signing, its secret, its URL; the route takes it."""
    write_serve_config(
        hermetic_home,
        repos=f"[{{name: acme/api, vendor: {vendor}}}]",
        extra=f"forges: {{{vendor}: {{url: https://git.example.org, webhook-secret: hook}}}}\n",
    )
    set_secret_cli("hook", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        payload = str(payloads_dir / "push_branch.json")
        code, out, err = await _cli("fire", "--file", payload, "--event", event, "--vendor", vendor)
        assert code == 0, err
        reply = json.loads(out.splitlines()[1])
        code, out, err = await _cli("events", "--json", "--limit", "1")
        listed = json.loads(out)[0]
        assert (listed["id"], listed["vendor"]) == (reply["event_id"], vendor)
    finally:
        await serve.terminate()


async def test_serve_logs_ping_and_stops_on_sigterm(
    hermetic_home: Path, payloads_dir: Path
) -> None:
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    code, out, err = await _cli(
        "fire",
        "--file",
        str(payloads_dir / "ping.json"),
        "--event",
        "ping",
        "--url",
        serve.hook_url,
    )
    assert code == 0, err
    assert out.startswith("200")
    assert await serve.terminate() == 0
    text = "\n".join(serve.lines)
    assert "webhook URL: " + serve.hook_url in text
    assert "status=ignored (ping: hook verified)" in text
    assert "stopping" in text


async def test_serve_warns_when_webhook_secret_missing(hermetic_home: Path) -> None:
    write_serve_config(hermetic_home)
    serve = await ServeProcess.start()
    await asyncio.sleep(0.5)
    assert await serve.terminate() == 0
    assert any("pocketci-tui secrets set webhook-secret" in line for line in serve.lines)


async def test_serve_warns_when_a_forge_secret_is_missing(hermetic_home: Path) -> None:
    write_serve_config(
        hermetic_home,
        repos="[{name: me/app, vendor: gitea}]",
        extra="forges: {gitea: {url: https://git.example.org, webhook-secret: gitea-hook}}\n",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    await asyncio.sleep(0.5)
    assert await serve.terminate() == 0
    warned = [line for line in serve.lines if "pocketci-tui secrets set gitea-hook" in line]
    assert warned
    assert "the deliveries of gitea will be refused" in warned[0]


async def test_serve_port_in_use_exits_1_before_touching_the_data(hermetic_home: Path) -> None:
    """The port is bound before the database is opened (or a passphrase asked for)."""
    write_serve_config(hermetic_home)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        code, _, err = await _cli("serve", "--port", port)
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert not (hermetic_home / "data" / "pocketci.db").exists()
