"""``pocketci-tui secrets set|list|delete`` as a user runs it: a real subprocess, real backends.

Each run is a new session with no controlling terminal, so any attempt to prompt would fail or
hang (and the timeout would show it). The encrypted file uses the production Argon2 parameters.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyringenv import session_secret_service

from pocketci_tui.secrets import (
    ENCRYPTED_FILE,
    INDEX_FILE,
    MIN_SECRET_LENGTH,
    PASSPHRASE_CREDENTIAL,
    PLAINTEXT_FILE,
    SERVICE,
    open_secret_store,
)

ENTRY = [sys.executable, "-m", "pocketci_tui", "secrets"]
"""The command as users run it (``pocketci-tui`` is ``python -m pocketci_tui``)."""

TOKEN = "ghp_cliTestToken0123456789abcdef"
PASSPHRASE = "correct horse battery staple"


def run_cli(
    home: Path,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the secrets command with ``POCKETCI_TUI_HOME=home`` and no terminal."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND", "CREDENTIALS_DIRECTORY"}
    }
    base["POCKETCI_TUI_HOME"] = str(home)
    base.update(env or {})
    return subprocess.run(
        [*ENTRY, *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
        start_new_session=True,  # no controlling terminal: a prompt could not reach anyone
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed run: exactly one line, prefixed like every CLI error."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pocketci-tui: error: ")
    return lines[0]


def all_bytes_under(folder: Path) -> bytes:
    """Every file's content under ``folder``, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh POCKETCI_TUI_HOME."""
    path = tmp_path / "cli-home"
    path.mkdir()
    return path


def use_file_backend(home: Path) -> None:
    (home / "config.yaml").write_text("secrets:\n  backend: file\n")


def credential(tmp_path: Path, passphrase: str, mode: int = 0o400) -> dict[str, str]:
    """A systemd-style credentials folder holding the passphrase; returns the env to use it."""
    creds = tmp_path / "credentials"
    creds.mkdir(exist_ok=True)
    path = creds / PASSPHRASE_CREDENTIAL
    if path.exists():
        path.chmod(0o600)
    path.write_text(passphrase + "\n")
    path.chmod(mode)
    return {"CREDENTIALS_DIRECTORY": str(creds)}


# --- no backend: K1 and K3 through the CLI ---------------------------------------------------


@pytest.mark.parametrize("command", [["set", "github-token", "--stdin"], ["delete", "x-token"]])
def test_no_backend_is_a_clear_exit_2(home: Path, command: list[str]) -> None:
    result = run_cli(home, *command, stdin=TOKEN + "\n")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "no OS keyring" in line
    assert "DBUS_SESSION_BUS_ADDRESS is unset" in line
    assert "backend: file" in line
    assert result.stdout == ""
    assert TOKEN.encode() not in all_bytes_under(home)


def test_null_keyring_fails_closed_exit_2(home: Path) -> None:
    result = run_cli(
        home,
        "set",
        "github-token",
        "--stdin",
        stdin=TOKEN,
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    )
    assert result.returncode == 2
    assert "null keyring" in one_line_error(result)


def test_list_needs_no_backend_and_shows_no_values(home: Path) -> None:
    result = run_cli(home, "list")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no secrets stored yet" in result.stderr


# --- usage errors ----------------------------------------------------------------------------


def test_value_never_comes_from_a_non_terminal_without_stdin_flag(home: Path) -> None:
    result = run_cli(home, "--backend", "plaintext", "set", "github-token")
    assert result.returncode == 2
    assert "--stdin" in one_line_error(result)


@pytest.mark.parametrize("name", ["-x", "has space", "a/b", "x" * 200])
def test_bad_names_exit_2(home: Path, name: str) -> None:
    result = run_cli(home, "--backend", "plaintext", "set", "--stdin", "--", name, stdin=TOKEN)
    assert result.returncode == 2
    assert "invalid secret name" in one_line_error(result)


def test_short_values_are_refused_unless_allowed(home: Path) -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    refused = run_cli(home, "--backend", "plaintext", "set", "pin", "--stdin", stdin=short)
    assert refused.returncode == 2
    assert "--allow-short" in one_line_error(refused)
    assert not (home / PLAINTEXT_FILE).exists()

    allowed = run_cli(
        home, "--backend", "plaintext", "set", "pin", "--stdin", "--allow-short", stdin=short
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "not masked" in allowed.stderr


def test_bad_config_is_exit_2(home: Path) -> None:
    (home / "config.yaml").write_text("secrets:\n  backend: vault\n")
    result = run_cli(home, "list")
    assert result.returncode == 2
    assert "backend" in one_line_error(result)


# --- plaintext: explicit opt-in, with the warning --------------------------------------------


def test_plaintext_backend_warns_and_keeps_the_file_private(home: Path) -> None:
    result = run_cli(home, "set", "github-token", "--stdin", "--backend", "plaintext", stdin=TOKEN)
    assert result.returncode == 0, result.stderr
    assert "UNENCRYPTED" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert stat.S_IMODE((home / PLAINTEXT_FILE).stat().st_mode) == 0o600
    listed = run_cli(home, "list")
    assert listed.stdout == "github-token  plaintext\n"


# --- the encrypted file: the headless path ---------------------------------------------------


def test_encrypted_file_headless_path(home: Path, tmp_path: Path) -> None:
    """The documented headless set-up: backend file, passphrase from a systemd credential."""
    use_file_backend(home)
    env = credential(tmp_path, PASSPHRASE)
    # Two trailing newlines: exactly one is removed.
    stored = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN + "\n\n", env=env)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith("stored a-token in encrypted file")
    assert TOKEN not in stored.stdout + stored.stderr

    # Without the config (backend auto) and without D-Bus, the existing file is used.
    (home / "config.yaml").unlink()
    again = run_cli(home, "set", "b-token", "--stdin", stdin=TOKEN + "b", env=env)
    assert again.returncode == 0, again.stderr
    assert "encrypted file" in again.stdout
    listed = run_cli(home, "list")
    assert listed.returncode == 0
    assert listed.stdout == "a-token  file\nb-token  file\n"
    # ... and without the passphrase, auto says the file needs it.
    locked = run_cli(home, "delete", "a-token")
    assert locked.returncode == 2
    assert "give its passphrase" in one_line_error(locked)

    assert TOKEN.encode() not in all_bytes_under(home)
    assert stat.S_IMODE((home / ENCRYPTED_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / INDEX_FILE).stat().st_mode) == 0o600

    async def read_back() -> tuple[str | None, str | None]:
        store = await open_secret_store(home, backend="file", passphrase=PASSPHRASE)
        return await store.get("a-token"), await store.get("b-token")

    assert asyncio.run(read_back()) == (TOKEN + "\n", TOKEN + "b")

    deleted = run_cli(home, "delete", "a-token", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert run_cli(home, "list", env=env).stdout == "b-token  file\n"


def test_k4_wrong_passphrase_is_exit_2_without_a_prompt(home: Path, tmp_path: Path) -> None:
    use_file_backend(home)
    first = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN, env=credential(tmp_path, "one"))
    assert first.returncode == 2  # too short to create the file
    assert "at least" in one_line_error(first)
    assert not (home / ENCRYPTED_FILE).exists()
    env = credential(tmp_path, PASSPHRASE)
    first = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN, env=env)
    assert first.returncode == 0, first.stderr
    wrong = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN, env=credential(tmp_path, "two"))
    assert wrong.returncode == 2
    assert "wrong passphrase" in one_line_error(wrong)
    assert wrong.stdout == ""


def test_k5_file_backend_without_any_passphrase_source_never_prompts(home: Path) -> None:
    use_file_backend(home)
    result = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN)
    assert result.returncode == 2
    assert "needs its passphrase" in one_line_error(result)
    assert not (home / ENCRYPTED_FILE).exists()


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_k8_credential_with_a_loose_mode_is_refused(home: Path, tmp_path: Path, mode: int) -> None:
    use_file_backend(home)
    env = credential(tmp_path, PASSPHRASE, mode)
    result = run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN, env=env)
    assert result.returncode == 2
    assert "must be 0400" in one_line_error(result)


# --- the real OS keyring ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bus_address() -> Iterator[str]:
    address, private = session_secret_service()
    try:
        yield address
    finally:
        if private is not None:
            private.close()


@pytest.mark.keyring
def test_set_list_delete_in_gnome_keyring(home: Path, bus_address: str, tmp_path: Path) -> None:
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

    env = {"DBUS_SESSION_BUS_ADDRESS": bus_address, "XDG_CONFIG_HOME": str(tmp_path / "x")}
    name = f"cli-test-{uuid.uuid4().hex[:10]}"
    stored = run_cli(home, "set", name, "--stdin", stdin=TOKEN, env=env)
    assert stored.returncode == 0, stored.stderr
    assert "SecretService" in stored.stdout
    with open_dbus_connection(bus_address) as conn:
        items = list(secretstorage.search_items(conn, {"service": SERVICE, "username": name}))
        assert [item.get_secret().decode() for item in items] == [TOKEN]
    assert run_cli(home, "list", env=env).stdout == f"{name}  keyring\n"
    assert TOKEN.encode() not in all_bytes_under(home)

    deleted = run_cli(home, "delete", name, env=env)
    assert deleted.returncode == 0, deleted.stderr
    with open_dbus_connection(bus_address) as conn:
        assert list(secretstorage.search_items(conn, {"service": SERVICE, "username": name})) == []
    assert run_cli(home, "list", env=env).stdout == ""


# --- hidden prompts on a real terminal -------------------------------------------------------


def run_on_pty(
    home: Path,
    args: list[str],
    answers: list[tuple[str, str]],
    *,
    entry: list[str] = ENTRY,
    env_extra: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run the command on a pseudo-terminal, typing each answer after its prompt appears.

    Returns the exit code and everything the terminal showed.
    """
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["POCKETCI_TUI_HOME"] = str(home)
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [*entry, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    shown = ""
    pending = list(answers)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
                shown += chunk
            if pending and pending[0][0] in shown:
                prompt, answer = pending.pop(0)
                shown = shown.replace(prompt, f"<{prompt}>", 1)
                os.write(master, answer.encode() + b"\n")
            elif proc.poll() is not None and not ready:
                break
        code = proc.wait(10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, shown


def test_hidden_prompts_for_passphrase_and_value(home: Path) -> None:
    use_file_backend(home)
    code, shown = run_on_pty(
        home,
        ["set", "a-token"],
        [
            ("New passphrase for the encrypted secrets file (at least 12 characters):", PASSPHRASE),
            ("Repeat the passphrase:", PASSPHRASE),
            ("Value (input hidden):", TOKEN),
        ],
    )
    assert code == 0, shown
    assert "stored a-token in encrypted file" in shown
    assert TOKEN not in shown  # nothing typed was echoed
    assert PASSPHRASE not in shown

    async def read_back() -> str | None:
        store = await open_secret_store(home, backend="file", passphrase=PASSPHRASE)
        return await store.get("a-token")

    assert asyncio.run(read_back()) == TOKEN


def test_check_on_a_terminal_asks_for_the_passphrase(home: Path, tmp_path: Path) -> None:
    """Issue 10: `check` in a terminal prompted nobody and failed the encrypted store."""
    use_file_backend(home)
    stored = run_cli(
        home, "set", "webhook-secret", "--stdin", stdin=TOKEN, env=credential(tmp_path, PASSPHRASE)
    )
    assert stored.returncode == 0, stored.stderr
    code, shown = run_on_pty(
        home,
        ["check"],
        [("Passphrase of the encrypted secrets file:", PASSPHRASE)],
        entry=[sys.executable, "-m", "pocketci_tui"],
        env_extra={"CREDENTIALS_DIRECTORY": str(tmp_path / "none")},
    )
    assert "<Passphrase of the encrypted secrets file:>" in shown, shown
    assert re.search(r"ok +secret store +secrets in encrypted file", shown), shown
    assert "webhook secret 'webhook-secret' is set" in shown, shown
    assert "to be prompted" not in shown
    assert "Repeat the passphrase" not in shown  # reading an existing file asks once
    assert PASSPHRASE not in shown
    assert code in (0, 1), shown  # the port or dagger may fail here; the store did not


def test_check_without_a_terminal_still_never_prompts(home: Path, tmp_path: Path) -> None:
    use_file_backend(home)
    env = credential(tmp_path, PASSPHRASE)
    assert run_cli(home, "set", "webhook-secret", "--stdin", stdin=TOKEN, env=env).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "check"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "POCKETCI_TUI_HOME": str(home)},
        timeout=120,
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 1
    assert "needs its passphrase" in result.stdout
    assert "Passphrase" not in result.stdout + result.stderr


def test_deleting_a_missing_name_is_an_error(home: Path) -> None:
    """Issue 10: `secrets delete` of a name never stored said "deleted" and exited 0."""
    (home / "config.yaml").write_text("secrets: {backend: plaintext}\n")
    missing = run_cli(home, "delete", "never-stored")
    assert missing.returncode == 1
    line = one_line_error(missing)
    assert "no secret named 'never-stored'" in line
    assert "nothing was deleted" in line
    assert missing.stdout == ""
    assert run_cli(home, "set", "a-token", "--stdin", stdin=TOKEN).returncode == 0
    deleted = run_cli(home, "delete", "a-token")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("deleted a-token from ")
    again = run_cli(home, "delete", "a-token")
    assert again.returncode == 1
    assert "no secret named 'a-token'" in one_line_error(again)


def test_a_short_new_passphrase_is_refused_on_a_terminal(home: Path) -> None:
    """The CLI's rule for a new encrypted file is the UI's: at least 12 characters."""
    use_file_backend(home)
    code, shown = run_on_pty(
        home,
        ["set", "a-token"],
        [("New passphrase for the encrypted secrets file (at least 12 characters):", "abc")],
    )
    assert code == 2, shown
    assert "a new passphrase needs at least 12 characters" in shown
    assert "Repeat the passphrase" not in shown
    assert not (home / ENCRYPTED_FILE).exists()


def test_check_creating_the_encrypted_file_asks_twice_with_the_same_rule(home: Path) -> None:
    """`check` (like `serve`) on a terminal with no encrypted file yet: the passphrase creates
    the file, so it gets the rule of `secrets set` and of the UI."""
    use_file_backend(home)
    code, shown = run_on_pty(
        home,
        ["check"],
        [("New passphrase for the encrypted secrets file (at least 12 characters):", "abc")],
        entry=[sys.executable, "-m", "pocketci_tui"],
    )
    assert "a new passphrase needs at least 12 characters" in shown, shown
    assert "Repeat the passphrase" not in shown
    assert code == 1, shown  # check reports the refusal as a failed check
    assert not (home / ENCRYPTED_FILE).exists()
