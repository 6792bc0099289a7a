"""The ``forges:`` map of config.yaml and each repository's forge (issue 13's contract)."""

from __future__ import annotations

from typing import Literal, get_args, get_origin, get_type_hints

import pytest
import yaml

from pocketci_tui.config import ConfigError, ForgeSettings, RepoConfig, Settings, parse_settings
from pocketci_tui.config_reload import RESTART_KEYS
from pocketci_tui.forges.registry import default_registry

CONTRACT = """
forges:
  github: {url: https://github.com}
  gitea:  {url: https://git.example.org/, webhook-secret: gitea-webhook}
  gitlab: {url: https://gitlab.example.org, api-url: https://gitlab.example.org/api/v4}
repos:
  - {name: me/app, vendor: gitea}
  - {name: team/sub/api, vendor: gitlab, clone-url: https://gitlab.example.org/team/sub/api.git}
  - {name: acme/api}
"""


def _parse(text: str) -> Settings:
    return parse_settings(yaml.safe_load(text), "config.yaml")


def test_the_contract_of_the_issue_parses() -> None:
    settings = _parse(CONTRACT)
    assert settings.forges["gitea"] == ForgeSettings(
        url="https://git.example.org", webhook_secret="gitea-webhook"
    )
    assert settings.forges["gitlab"].api_url == "https://gitlab.example.org/api/v4"
    assert [(r.name, r.vendor) for r in settings.repos] == [
        ("me/app", "gitea"),
        ("team/sub/api", "gitlab"),
        ("acme/api", "github"),
    ]
    assert settings.forge_url("gitea") == "https://git.example.org"
    assert settings.forge_url("forgejo") == ""
    assert settings.forge_url("gitlab") == "https://gitlab.example.org"


def test_a_forge_secret_defaults_to_the_top_level_one() -> None:
    settings = _parse(CONTRACT + "webhook-secret: shared-hook\n")
    assert settings.webhook_secrets() == {
        "github": "shared-hook",
        "gitea": "gitea-webhook",
        "forgejo": "shared-hook",
        "gitlab": "shared-hook",
    }
    own = settings.own_secrets()
    assert "shared-hook" in own
    assert own["gitea-webhook"] == "the webhook secret of gitea"
    assert _parse("").webhook_secret_of("gitlab") == "webhook-secret"


def test_a_gitea_repository_without_a_url_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(ConfigError) as err:
        _parse("repos: [{name: me/app, vendor: gitea}]")
    assert str(err.value).startswith("config.yaml: repos[0].vendor: ")
    assert "me/app" in str(err.value)
    assert "forges.gitea.url" in err.value.fix
    assert "clone-url" in err.value.fix
    # Either one is enough.
    assert (
        _parse("repos: [{name: me/app, vendor: forgejo, clone-url: https://f.example/me/app.git}]")
        .repos[0]
        .clone_url
    )
    assert _parse(
        "forges: {forgejo: {url: https://f.example}}\nrepos: [{name: me/*, vendor: forgejo}]"
    )


def test_a_pattern_of_a_forge_without_a_url_needs_the_url() -> None:
    with pytest.raises(ConfigError) as err:
        _parse("repos: [{name: me/*, vendor: gitea}]")
    assert "a pattern needs the URL" in err.value.fix


def test_gitlab_names_hold_nested_groups_and_others_do_not() -> None:
    assert _parse("repos: [{name: a/b/c/d, vendor: gitlab}]").repos[0].name == "a/b/c/d"
    with pytest.raises(ConfigError, match=r"repos\[0\]\.name: expected owner/name"):
        _parse("repos: [{name: a/b/c}]")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("forges: {bitbucket: {}}", "forges.bitbucket"),
        ("forges: {gitea: {token: x}}", "forges.gitea.token"),
        ("forges: {gitea: {url: git.example.org}}", "forges.gitea.url"),
        ("forges: {gitea: {url: 'https://me:pw@git.example.org'}}", "forges.gitea.url"),
        ("forges: {gitea: {url: 'https://git.example.org/?a=b'}}", "forges.gitea.url"),
        ("forges: {gitlab: {api-url: ftp://x}}", "forges.gitlab.api-url"),
        ("forges: {gitea: {webhook-secret: 'not a name'}}", "forges.gitea.webhook-secret"),
        ("forges: [gitea]", "forges"),
    ],
)
def test_forge_errors_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(text)
    assert f"config.yaml: {key}" in str(err.value)


def test_a_changed_forge_secret_waits_for_a_restart() -> None:
    get = RESTART_KEYS["forges.*.webhook-secret"]
    before = _parse(CONTRACT)
    after = _parse(CONTRACT.replace("gitea-webhook", "gitea-hook-2"))
    assert get(before) != get(after)


def test_a_repository_may_name_its_own_webhook_secret() -> None:
    settings = _parse("repos: [{name: acme/api, webhook-secret: api-hook}, {name: acme/web}]")
    assert [r.webhook_secret for r in settings.repos] == ["api-hook", ""]
    assert settings.own_secrets()["api-hook"] == "the webhook secret of acme/api"
    with pytest.raises(ConfigError, match=r"repos\[0\]\.webhook-secret: a secret NAME"):
        _parse("repos: [{name: acme/api, webhook-secret: 'the value itself!'}]")


def test_the_webhook_secrets_in_use_say_whose_they_are() -> None:
    settings = _parse(
        CONTRACT + "  - {name: acme/web, webhook-secret: web-hook}\n"
        "  - {name: acme/docs, webhook-secret: gitea-webhook}\n"
    )
    assert settings.webhook_secrets_in_use() == {
        "webhook-secret": "",
        "gitea-webhook": "gitea",
        "web-hook": "acme/web",
    }
    assert _parse("").webhook_secrets_in_use() == {"webhook-secret": ""}


def test_the_forges_in_use_are_the_named_ones_else_github() -> None:
    assert _parse(CONTRACT).forges_in_use() == ("github", "gitea", "gitlab")
    assert _parse("").forges_in_use() == ("github",)
    only_gitea = "repos: [{name: a/b, vendor: gitea, clone-url: https://g.example/a/b.git}]"
    assert _parse(only_gitea).forges_in_use() == ("gitea",)


def test_a_repository_vendor_is_a_literal_of_the_registered_forges() -> None:
    """The type names every forge the registry serves, so mypy refuses a misspelt vendor."""
    hint = get_type_hints(RepoConfig)["vendor"]
    assert get_origin(hint) is Literal
    assert get_args(hint) == default_registry().vendors


def test_an_unknown_vendor_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        _parse("repos: [{name: a/b, vendor: bitbucket}]")
    message = str(err.value)
    assert "repos[0].vendor" in message
    assert "'bitbucket'" in message
    assert "github, gitea, forgejo, gitlab" in message


@pytest.mark.parametrize(
    "text",
    [
        "forges: {gitea: {url: 'https://me:tok3n-s3cret@git.example.org'}}",
        "forges: {gitea: {url: 'ftp://me:tok3n-s3cret@git.example.org/x'}}",
        "forges: {gitlab: {api-url: 'https://oauth2:tok3n-s3cret@gitlab.example.org/api/v4'}}",
        "public-url: 'https://tok3n-s3cret@ci.example.org/?q=1'",
    ],
)
def test_a_url_with_a_token_pasted_in_is_refused_without_repeating_the_token(text: str) -> None:
    """A token pasted into a URL is refused, and the message (shown on screen and logged)
    names the URL without it."""
    with pytest.raises(ConfigError) as err:
        _parse(text)
    assert "tok3n-s3cret" not in str(err.value)
    assert "***@" in str(err.value)
