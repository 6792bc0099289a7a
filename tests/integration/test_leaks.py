"""No secret value leaks: a function prints its secrets in many encodings, and afterwards no
form of any value is found under the data folder, in argv (recorded or live), or in the app's
own environment.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from dataclasses import replace
from pathlib import Path

from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.model import RunOutput, RunState

PASSWORD = "hunter2-Very/Secret+Value?&="
PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0cQ8V2Jr1Pq3Ow7Lm5Nv6\n-----END KEY-----"
TOKEN = "ghp_cloneTokenValue0123456789abcdef"


def encodings(value: str) -> list[str]:
    """The forms of a value a build might print (SPEC 5, checklist M1-M3)."""
    raw = value.encode()
    forms = [
        value,
        base64.b64encode(raw).decode(),
        base64.b64encode(b"user:" + raw).decode(),
        base64.b64encode(b"x" + raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
        raw.hex(),
    ]
    forms += [line for line in value.splitlines() if len(line) >= 8]
    return forms


def needles(value: str) -> list[bytes]:
    """What must not be found: each form, minus the padding that alignment changes."""
    out = set()
    for form in encodings(value):
        out.add(form.rstrip("=").encode())
    out.add(base64.b64encode(value.encode())[4:-4])
    return sorted(out)


async def test_no_secret_survives_anywhere(tmp_path: Path) -> None:
    printed = [
        f"{name}: {form}"
        for name, value in (("pw", PASSWORD), ("pem", PEM))
        for form in encodings(value)
    ]
    printed.append(" ".join(PEM.splitlines()))  # a PEM echoed unquoted (M2)
    printed.append(f"fatal: could not read from https://x-access-token:{TOKEN}@example.invalid/")
    printed.append("{secret:ghPassword} and {secret_b64:ghPassword}")
    output = [line for chunk in printed for line in chunk.splitlines()]
    call = {"output": output, "exit": 1}
    functions = [
        fn(
            "onGithubPushMain",
            arg("src", "Directory"),
            arg("eventTrigger", "File"),
            arg("ghPassword", "Secret"),
            arg("deployKey", "Secret"),
        )
    ]
    spec = {
        "secrets": [
            {"name": "ghPassword", "from-keyring": "gh-password"},
            {"name": "deployKey", "from-keyring": "pem"},
        ]
    }
    async with EngineKit(
        tmp_path,
        functions=functions,
        spec=spec,
        secrets={"gh-password": PASSWORD, "pem": PEM, "gh-token": TOKEN},
        grant_secrets=["gh-password", "pem"],
        dagger_env={"FAKE_DAGGER_CALL_ON_GITHUB_PUSH_MAIN": json.dumps(call)},
    ) as kit:
        kit.engine.settings = replace(
            kit.settings, repos=(replace(kit.settings.repos[0], token="gh-token"),)
        )
        stored = await kit.deliver(kit.push({"main.go": "leak\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        [run] = [r for r in runs if r.function == "onGithubPushMain"]
        assert run.state is RunState.FAILED

        [recorded] = kit.calls()
        assert recorded["secrets"] == {"ghPassword": PASSWORD, "deployKey": PEM}
        live_output = "\n".join(
            line for n in kit.notices if isinstance(n, RunOutput) for line in n.lines
        )
        log_text = (kit.paths.logs_dir / run.log_path).read_text()
        # The lines are there, with the values masked (the test would be empty otherwise).
        assert log_text.count("pw: ***") >= 5
        assert "x-access-token:***@example.invalid" in log_text
        assert log_text.count("\n") >= len(output) - 1

        for value in (PASSWORD, PEM, TOKEN):
            for needle in needles(value):
                text = needle.decode()
                assert text not in live_output, f"{text!r} reached the UI"
                assert text not in log_text, f"{text!r} reached the log"
                assert text not in " ".join(recorded["argv"])
                assert text not in run.reason
                assert all(text not in v for v in os.environ.values())
        assert PASSWORD not in str(run.args)
        assert ("secret", "ghPassword") in run.args

    # Nothing under the data folder holds any form of the run's secret: database (with its
    # WAL), logs, catalog cache, work folders.
    found = []
    for path in kit.paths.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in (PASSWORD, PEM, TOKEN):
                found += [(path, n) for n in needles(value) if n in data]
    assert found == []
