"""``pocketci.yaml`` listing several named specs: each read alone, hostile lists refused."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import yaml

from pocketci_tui.config import (
    MAX_SPEC_SECRETS,
    MAX_SPECS,
    ConfigError,
    RepoSpec,
    SecretRef,
    parse_repo_spec,
    parse_repo_specs,
    parse_settings,
)
from pocketci_tui.engine.dispatch.runs import cap_runs
from pocketci_tui.engine.match import MAX_RUNS_PER_EVENT, RUN_CAP_REASON
from pocketci_tui.model import Decision, FunctionCall, MatchResult
from pocketci_tui.statuses.routing import render_context

MONOREPO = """
specs:
  - name: api
    module-path: ./api/ci
    paths: [api/**, go.mod]
    secrets: [{name: deployToken, from-keyring: api-deploy}]
  - name: web
    module-path: ./web/ci
    paths: [web/**]
    secrets: [{name: npmToken, from-keyring: web-npm}]
"""


def test_each_named_spec_keeps_its_own_module_paths_and_secrets() -> None:
    api, web = parse_repo_specs(MONOREPO)
    assert api == RepoSpec(
        module_path="./api/ci",
        paths=("api/**", "go.mod"),
        secrets=(SecretRef("deployToken", from_keyring="api-deploy"),),
        name="api",
    )
    assert web.name == "web"
    assert web.secret_names == frozenset({"npmToken"})


def test_the_single_spec_form_is_one_unnamed_spec() -> None:
    text = "module-path: ./build\nsecrets: [{name: ghPassword, from-keyring: gh}]\n"
    [spec] = parse_repo_specs(text)
    assert spec.name == ""
    assert spec.module_path == "./build"
    assert parse_repo_spec(text) == spec


def _specs(*items: Mapping[str, object]) -> str:
    return yaml.safe_dump({"specs": list(items)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _specs(*({"name": f"a{i}"} for i in range(MAX_SPECS + 1))),
            f"specs: {MAX_SPECS + 1} specs, more than the {MAX_SPECS}",
        ),
        (
            _specs({"name": "api"}, {"name": "api"}),
            "specs[1].name: the spec name api is used twice",
        ),
        (
            _specs({"name": "api", "module-path": "../../etc"}),
            "specs[0].module-path: '../../etc' points outside the repository",
        ),
        (
            _specs({"name": "api", "module-path": "api/../../x"}),
            "specs[0].module-path: 'api/../../x' points outside",
        ),
        (_specs({"name": "api", "module-path": "/etc"}), "specs[0].module-path: must be relative"),
        (_specs({"name": "Api/../x"}), "specs[0].name: expected a short name"),
        (_specs({"name": ""}), "specs[0].name: expected a short name"),
        (_specs({"module-path": "./ci"}), "specs[0].name: expected a short name"),
        (_specs({"name": "a" * 33}), "specs[0].name: expected a short name"),
        (_specs({"name": "api", "token": "x"}), "specs[0].token: unknown key"),
        (
            _specs({"name": "api", "secrets": [{"name": "ok", "from-keyring": "x"}] * 2}),
            "specs[0].secrets[1].name: ok is listed twice",
        ),
        (
            _specs(
                {
                    "name": "api",
                    "secrets": [
                        {"name": f"s{i}", "from-keyring": "x"} for i in range(MAX_SPEC_SECRETS + 1)
                    ],
                }
            ),
            f"specs[0].secrets: {MAX_SPEC_SECRETS + 1} secrets",
        ),
        (_specs({"name": "api", "paths": "api/**"}), "specs[0].paths: expected a list"),
        ("specs: []\n", "specs: expected a list of specs"),
        ("specs: api\n", "specs: expected a list of specs"),
        ("specs: [api]\n", "specs[0]: expected a mapping"),
        (
            "specs: [{name: api}]\nmodule-path: ./ci\n",
            "module-path: unknown key (known keys: specs)",
        ),
    ],
)
def test_a_hostile_list_of_specs_is_refused_with_the_key_and_the_fix(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_repo_specs(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("pocketci.yaml: ")


def test_a_single_spec_reader_refuses_a_list() -> None:
    with pytest.raises(ConfigError, match="expected a single spec"):
        parse_repo_spec(MONOREPO)


@pytest.mark.parametrize(
    ("template", "spec", "context"),
    [
        ("pocketci/{function}", "", "pocketci/build"),
        ("pocketci/{function}", "api", "pocketci/api/build"),
        ("ci/{spec}/{function}", "", "ci/build"),
        ("ci/{spec}/{function}", "web", "ci/web/build"),
        ("{event}: {function} ({spec})", "web", "push: build (web)"),
    ],
)
def test_the_status_context_names_the_spec(template: str, spec: str, context: str) -> None:
    assert render_context(template, "build", "push", spec) == context


def test_status_context_may_use_spec() -> None:
    settings = parse_settings({"status-context": "ci/{spec}/{function}"})
    assert settings.status_context == "ci/{spec}/{function}"


def _matched(count: int, prefix: str) -> MatchResult:
    names = [f"{prefix}{i}" for i in range(count)]
    return MatchResult(1, tuple(Decision(n, 1, True, "", FunctionCall(n)) for n in names))


def test_the_run_cap_holds_for_all_the_specs_of_an_event_together() -> None:
    first, second = cap_runs([_matched(20, "api"), _matched(20, "web")])
    assert len(first.calls) == 20
    assert len(second.calls) == MAX_RUNS_PER_EVENT - 20
    capped = [d for d in second.decisions if not d.matched]
    assert len(capped) == 40 - MAX_RUNS_PER_EVENT
    assert all(d.reason.startswith(RUN_CAP_REASON) and d.call is None for d in capped)
    assert [d.function for d in capped] == [f"web{i}" for i in range(MAX_RUNS_PER_EVENT - 20, 20)]
