"""User configuration (config.yaml) and path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketci_tui.config import (
    ConfigError,
    RepoConfig,
    Settings,
    default_config_text,
    load_settings,
    parse_duration,
    parse_settings,
)
from pocketci_tui.paths import HOME_ENV, resolve_paths

FULL = """
listen: {host: 0.0.0.0, port: 9000}
webhook-secret: hook-secret
concurrency: 4
timeout: 90m
repos:
  - name: acme/api
    vendor: github
    clone-url: https://git.example.org/acme/api.git
    token: github-token
  - name: acme/*
fork-pull-requests: no-secrets
dagger:
  cli: /usr/local/bin/dagger
  runner-host: tcp://10.0.0.2:1234
  cloud-token: dagger-cloud
retention: {events: 100, days: 7}
secrets: {backend: file}
keymap: {run-rerun: ctrl+r}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "nope.yaml")
    assert s == Settings()
    assert (s.host, s.port, s.webhook_secret, s.concurrency) == (
        "127.0.0.1",
        8080,
        "webhook-secret",
        2,
    )
    assert s.timeout == 3600.0
    assert s.fork_pull_requests == "approve"
    assert (s.retention_events, s.retention_days) == (5000, 90.0)
    assert s.webhook_url == "http://127.0.0.1:8080/webhooks/github"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""))
    assert s.port == 8080
    assert s.repos == ()


def test_full_config(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    s = load_settings(path)
    assert (s.host, s.port, s.webhook_secret, s.concurrency) == ("0.0.0.0", 9000, "hook-secret", 4)
    assert s.timeout == 5400.0
    assert s.repos[0] == RepoConfig(
        name="acme/api",
        vendor="github",
        clone_url="https://git.example.org/acme/api.git",
        token="github-token",
    )
    assert s.fork_pull_requests == "no-secrets"
    assert s.dagger.cli == "/usr/local/bin/dagger"
    assert s.dagger.runner_host == "tcp://10.0.0.2:1234"
    assert s.dagger.cloud_token == "dagger-cloud"
    assert (s.retention_events, s.retention_days) == (100, 7.0)
    assert s.secrets_backend == "file"
    assert dict(s.keymap) == {"run-rerun": "ctrl+r"}
    assert s.source == path


def test_repo_matching_and_globs() -> None:
    s = parse_settings({"repos": [{"name": "acme/api"}, {"name": "tools/*"}]})
    assert s.repo_for("github", "acme/api") is not None
    assert s.repo_for("github", "ACME/API") is not None
    assert s.repo_for("github", "acme/web") is None
    assert s.repo_for("github", "tools/x") is not None
    assert s.repo_for("gitea", "acme/api") is None


def test_ipv6_listen_url() -> None:
    assert parse_settings({"listen": {"host": "::1", "port": 1}}).listen_url == "http://[::1]:1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bogus: 1", "bogus"),
        ("listen: {hots: x}", "listen.hots"),
        ("listen: {port: 70000}", "listen.port"),
        ("listen: {port: '8080'}", "listen.port"),
        ("listen: {port: true}", "listen.port"),
        ("listen: {host: ''}", "listen.host"),
        ("listen: 5", "listen"),
        ("concurrency: 0", "concurrency"),
        ("concurrency: 1.5", "concurrency"),
        ("timeout: soon", "timeout"),
        ("timeout: -5m", "timeout"),
        ("timeout: 0", "timeout"),
        ("timeout: true", "timeout"),
        ("fork-pull-requests: always", "fork-pull-requests"),
        ("webhook-secret: 'sha256 value with spaces'", "webhook-secret"),
        ("repos: acme/api", "repos"),
        ("repos: [{name: 'not a repo'}]", "repos[0].name"),
        ("repos: [{name: 'a/../b'}]", "repos[0].name"),
        ("repos: [{}]", "repos[0].name"),
        ("repos: [{name: a/b, vendor: bitbucket}]", "repos[0].vendor"),
        ("repos: [{name: a/b, tocken: x}]", "repos[0].tocken"),
        ("repos: [{name: a/b, clone-url: 'https://u:p@h/x.git'}]", "repos[0].clone-url"),
        ("repos: [{name: a/b, clone-url: 'ext::sh -c x'}]", "repos[0].clone-url"),
        ("repos: [{name: a/b, token: 'ghp_ab cd'}]", "repos[0].token"),
        ("dagger: {client: x}", "dagger.client"),
        ("dagger: {cloud-token: 'a b'}", "dagger.cloud-token"),
        ("retention: {events: 0}", "retention.events"),
        ("retention: {days: -1}", "retention.days"),
        ("retention: {weeks: 1}", "retention.weeks"),
        ("secrets: {backend: vault}", "secrets.backend"),
        ("keymap: {run-rerun: 5}", "keymap.run-rerun"),
        ("- a\n- b", "top level"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert key in message


def test_invalid_yaml_and_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: {host: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)
    path.write_bytes(b"listen: \xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path)  # a directory


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("60m", 3600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
        (" 5m ", 300.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, where="f: k") == seconds


def test_default_config_text_is_valid() -> None:
    import yaml

    s = parse_settings(yaml.safe_load(default_config_text(port=9123)))
    assert s.port == 9123
    assert s.repos == ()


# -- paths --------------------------------------------------------------------------------------


def test_home_env_puts_everything_under_one_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "h"))
    p = resolve_paths()
    assert p.config_file == tmp_path / "h" / "config.yaml"
    assert p.data_dir == tmp_path / "h" / "data"
    assert p.db_file == tmp_path / "h" / "data" / "pocketci.db"
    assert p.logs_dir == tmp_path / "h" / "data" / "logs"
    assert p.config_dir == tmp_path / "h"


def test_options_override_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "h"))
    p = resolve_paths(tmp_path / "c.yaml", tmp_path / "d")
    assert (p.config_file, p.data_dir) == (tmp_path / "c.yaml", tmp_path / "d")


def test_platformdirs_defaults_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "dat"))
    p = resolve_paths()
    assert p.config_file == tmp_path / "cfg" / "pocketci-tui" / "config.yaml"
    assert p.data_dir == tmp_path / "dat" / "pocketci-tui"


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = resolve_paths(Path("c.yaml"), Path("d"))
    assert p.config_file.is_absolute()
    assert p.data_dir == tmp_path / "d"


def test_names_with_a_newline_inside_are_refused() -> None:
    from pocketci_tui.config import ConfigError, parse_settings

    with pytest.raises(ConfigError, match="webhook-secret"):
        parse_settings({"webhook-secret": "to\nk"}, "c.yaml")
    with pytest.raises(ConfigError, match=r"repos\[0\]\.name"):
        parse_settings({"repos": [{"name": "acme/api\nx"}]}, "c.yaml")


def test_clone_url_needs_one_repository_not_a_pattern() -> None:
    from pocketci_tui.config import ConfigError, parse_settings

    with pytest.raises(ConfigError, match=r"repos\[0\]\.clone-url"):
        parse_settings({"repos": [{"name": "acme/*", "clone-url": "https://x/y.git"}]}, "c.yaml")


def test_repository_grants_parse_as_names() -> None:
    s = parse_settings(
        {
            "repos": [
                {
                    "name": "acme/api",
                    "token": "gh-token",
                    "secrets": ["gh-password", "npm-token", "gh-password"],
                    "env": ["GITHUB_TOKEN"],
                },
                {"name": "acme/*"},
            ]
        }
    )
    assert s.repos[0].secrets == ("gh-password", "npm-token")
    assert s.repos[0].env == ("GITHUB_TOKEN",)
    assert (s.repos[1].secrets, s.repos[1].env) == ((), ())
    # pocketci-tui's own entries, which a repository gets only when granted explicitly.
    assert set(s.own_secrets()) == {"webhook-secret", "gh-token"}


@pytest.mark.parametrize(
    ("grant", "key"),
    [
        ({"secrets": "gh-password"}, "repos[0].secrets"),
        ({"secrets": ["not a name"]}, "repos[0].secrets[0]"),
        ({"secrets": [{"from-keyring": "x"}]}, "repos[0].secrets[0]"),
        ({"env": ["1BAD"]}, "repos[0].env[0]"),
        ({"env": "GITHUB_TOKEN"}, "repos[0].env"),
    ],
)
def test_bad_grants_name_the_key(grant: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"repos": [{"name": "acme/api", **grant}]}, "config.yaml")
    assert f"config.yaml: {key}:" in str(err.value)


# -- keymap (issue 10) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keymap", "key", "says"),
    [
        ("{run-rerunn: ctrl+r}", "keymap.run-rerunn", "unknown binding id"),
        ("{run-rerun: f}", "keymap.run-rerun", "'f' is also the key of event-fire"),
        ("{secrets-show: q}", "keymap.secrets-show", "'q' is also the key of quit"),
        ("{event-fire: tab}", "keymap.event-fire", "reserved"),
        ("{event-fire: ''}", "keymap.event-fire", "expected keys"),
        ("{event-fire: 'ctrl r'}", "keymap.event-fire", "expected keys"),
        ("{confirm-yes: n}", "keymap.confirm-yes", "'n' is also the key of confirm-no"),
    ],
)
def test_keymap_unknown_ids_and_conflicts_are_errors_naming_the_key(
    tmp_path: Path, keymap: str, key: str, says: str
) -> None:
    path = write(tmp_path, f"keymap: {keymap}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert says in message


def test_keymap_swaps_and_free_keys_are_fine(tmp_path: Path) -> None:
    text = "keymap: {run-rerun: f, event-fire: r, run-cancel: 'ctrl+k,x', dialog-close: escape}\n"
    s = load_settings(write(tmp_path, text))
    assert s.keymap["run-cancel"] == "ctrl+k,x"


# -- YAML syntax errors (issue 10) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("listen: {host: [", "line 1, column 17"),
        ("repos:\n  - name: a/b\n   token: x\n", "line 3, column 4"),
        ("listen:\n\thost: x\n", "line 2, column 1"),
    ],
)
def test_yaml_syntax_errors_are_one_line_with_file_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}, {where}: not valid YAML: "), message
    assert "\n" not in message
    assert "<unicode string>" not in message
    assert "YAML" in err.value.fix
