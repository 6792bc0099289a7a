"""Matching Dagger functions to events (SPEC 4.6), case by case and by properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketci_tui.engine.match.matching import TIER_ARGS, function_tier, match, paths_allow
from pocketci_tui.engine.match.naming import tier_names
from pocketci_tui.model import ArgSpec, Event, FunctionSpec, MatchResult, ModuleCatalog

# -- Builders -----------------------------------------------------------------------------------

_NO = object()


def arg(
    name: str,
    type_name: str = "String",
    default: Any = _NO,
    *,
    raw: str | None = None,
    optional: bool = False,
) -> ArgSpec:
    """An argument; ``default`` is a Python value (JSON-encoded here), ``raw`` the engine's text."""
    default_json = raw if default is _NO else json.dumps(default)
    return ArgSpec(name=name, type_name=type_name, optional=optional, default_json=default_json)


SRC = arg("src", "Directory")
TRIGGER = arg("eventTrigger", "File")


def fn(name: str, *args: ArgSpec, base: bool = True) -> FunctionSpec:
    """A function; ``base`` adds the ``src`` and ``eventTrigger`` every trigger needs."""
    return FunctionSpec(name=name, args=((SRC, TRIGGER) if base else ()) + args)


def catalog(*functions: FunctionSpec) -> ModuleCatalog:
    return ModuleCatalog(module_name="ci", functions=functions)


def event(
    event_type: str = "pull_request", filter_value: str = "opened", vendor: str = "github"
) -> Event:
    return Event(
        vendor=vendor,
        event_type=event_type,
        filter=filter_value,
        repository="acme/api",
        ref="refs/heads/main",
        sha="a" * 40,
        base_ref="",
        base_sha="",
        pr_number=None,
        is_fork=False,
        delivery_id="d-1",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        body=b"{}",
    )


PR = event()
PUSH_MAIN = event("push", "main")


def run(
    cat: ModuleCatalog,
    ev: Event = PR,
    changes: list[str] | None = None,
    secrets: tuple[str, ...] = (),
) -> MatchResult:
    return match(cat, ev, [] if changes is None else changes, secrets)


def calls(result: MatchResult) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [(c.function, c.args) for c in result.calls]


def reason(result: MatchResult, function: str) -> str:
    (d,) = [d for d in result.decisions if d.function == function]
    return d.reason


# -- The four tiers ------------------------------------------------------------------------------


def test_tier_1_passes_no_plain_argument() -> None:
    result = run(catalog(fn("onGithubPullRequestOpened")))
    assert result.tier == 1
    assert calls(result) == [("onGithubPullRequestOpened", ())]
    assert result.decisions[0].matched
    assert "tier 1" in result.decisions[0].reason


def test_tier_2_passes_filter() -> None:
    result = run(catalog(fn("onGithubPullRequest", arg("filter"))))
    assert result.tier == 2
    assert calls(result) == [("onGithubPullRequest", (("filter", "opened"),))]


def test_tier_3_passes_filter_and_event() -> None:
    result = run(catalog(fn("onGithub", arg("filter"), arg("event"))))
    assert result.tier == 3
    assert calls(result) == [("onGithub", (("filter", "opened"), ("event", "pull_request")))]


def test_tier_4_passes_filter_event_and_vendor() -> None:
    result = run(catalog(fn("dispatch", arg("vendor"), arg("event"), arg("filter"))))
    assert result.tier == 4
    assert calls(result) == [
        ("dispatch", (("filter", "opened"), ("event", "pull_request"), ("vendor", "github")))
    ]


def test_push_to_main_and_the_seed_example() -> None:
    cat = catalog(
        fn("onGithubPullRequest", arg("filter")),
        fn("onGithubPushMain", arg("ghUsername", "Secret"), arg("ghPassword", "Secret")),
        fn("test", base=True),
        fn("publish", arg("tag")),
    )
    result = run(cat, PUSH_MAIN, secrets=("ghUsername", "ghPassword"))
    assert result.tier == 1
    assert [c.function for c in result.calls] == ["onGithubPushMain"]
    assert result.calls[0].secrets == ("ghUsername", "ghPassword")
    # Helpers and triggers of other events are not reported at all.
    assert [d.function for d in result.decisions] == ["onGithubPushMain"]


def test_prefixed_functions_of_one_tier_all_run() -> None:
    cat = catalog(
        fn("testOnGithubPullRequest", arg("filter")),
        fn("lintOnGithubPullRequest", arg("filter")),
        fn("onGithubPullRequest", arg("filter")),
    )
    result = run(cat)
    assert result.tier == 2
    assert [c.function for c in result.calls] == [
        "testOnGithubPullRequest",
        "lintOnGithubPullRequest",
        "onGithubPullRequest",
    ]
    assert all(c.args == (("filter", "opened"),) for c in result.calls)


def test_prefixed_dispatch_functions() -> None:
    cat = catalog(
        fn("buildDispatch", arg("filter"), arg("event"), arg("vendor")),
        fn("dispatch", arg("filter"), arg("event"), arg("vendor")),
    )
    assert [c.function for c in run(cat).calls] == ["buildDispatch", "dispatch"]


def test_an_earlier_tier_wins_and_later_ones_are_reported() -> None:
    cat = catalog(
        fn("dispatch", arg("filter"), arg("event"), arg("vendor")),
        fn("onGithub", arg("filter"), arg("event")),
        fn("onGithubPush", arg("filter")),
        fn("onGithubPushMain"),
        fn("lintOnGithubPushMain"),
    )
    result = run(cat, PUSH_MAIN)
    assert result.tier == 1
    assert [c.function for c in result.calls] == ["onGithubPushMain", "lintOnGithubPushMain"]
    assert [(d.function, d.tier, d.matched) for d in result.decisions] == [
        ("dispatch", 4, False),
        ("onGithub", 3, False),
        ("onGithubPush", 2, False),
        ("onGithubPushMain", 1, True),
        ("lintOnGithubPushMain", 1, True),
    ]
    assert reason(result, "dispatch") == "tier 1 (onGithubPushMain) matched first"
    assert reason(result, "onGithubPush") == "tier 1 (onGithubPushMain) matched first"


def test_a_later_tier_runs_when_no_function_of_an_earlier_one_is_accepted() -> None:
    cat = catalog(
        fn("onGithubPullRequest", arg("filter", default="synchronize,reopened")),
        fn("dispatch", arg("filter"), arg("event"), arg("vendor")),
    )
    result = run(cat)
    assert result.tier == 4
    assert [c.function for c in result.calls] == ["dispatch"]
    assert reason(result, "onGithubPullRequest") == (
        "filter 'opened' is not accepted by its default 'synchronize,reopened'"
    )


def test_tier_membership_is_by_suffix() -> None:
    # onGithubPullRequestOpened is tier 1 for "opened"; for "closed" it belongs to no tier.
    cat = catalog(fn("onGithubPullRequestOpened"), fn("onGithub", arg("filter"), arg("event")))
    closed = run(cat, event("pull_request", "closed"))
    assert closed.tier == 3
    assert [d.function for d in closed.decisions] == ["onGithub"]
    # onGithubPushMain does not belong to tier 2 of a push to develop.
    cat = catalog(fn("onGithubPushMain"), fn("onGithubPush", arg("filter")))
    result = run(cat, event("push", "develop"))
    assert [c.function for c in result.calls] == ["onGithubPush"]
    assert [d.function for d in result.decisions] == ["onGithubPush"]


def test_a_filter_that_cannot_form_an_identifier_skips_tier_1() -> None:
    cat = catalog(
        fn("onGithubPushFeatureLogin"),
        fn("onGithubPush", arg("filter", default="feature/*")),
    )
    result = run(cat, event("push", "feature/login"))
    assert result.tier == 2
    assert calls(result) == [("onGithubPush", (("filter", "feature/login"),))]
    assert [d.function for d in result.decisions] == ["onGithubPush"]


def test_no_trigger_function_means_no_match() -> None:
    result = run(catalog(fn("build"), fn("test"), fn("onGitlabPush", arg("filter"))))
    assert result.tier is None
    assert result.decisions == ()
    assert result.calls == ()


def test_nothing_accepted_reports_every_reason() -> None:
    cat = catalog(
        fn("onGithubPullRequestOpened", base=False),
        fn("onGithubPullRequest", arg("filter", default="closed")),
        fn("dispatch", arg("filter"), arg("event")),
    )
    result = run(cat)
    assert result.tier is None
    assert result.calls == ()
    assert reason(result, "onGithubPullRequestOpened") == "missing the src argument (Directory)"
    assert "default 'closed'" in reason(result, "onGithubPullRequest")
    assert reason(result, "dispatch") == (
        "missing the vendor argument that tier 4 (dispatch) passes"
    )


# -- Defaults of filter, event and vendor -------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "raw", "accepted"),
    [
        ("opened,synchronize", None, True),
        ("synchronize, opened ", None, True),
        ("synchronize", None, False),
        (["opened", "synchronize"], None, True),
        (["closed"], None, False),
        ([], None, True),
        ("", None, True),
        (None, None, True),  # JSON null: no default
        (_NO, None, True),  # the engine answers null
        (_NO, "", True),  # or ""
        ("op*", None, True),
        ("!opened", None, False),
        ("**,!closed", None, True),
        (_NO, '["opened", "closed"]', True),  # spacing differs by SDK
        (_NO, "opened", True),  # not JSON at all: read leniently as text
    ],
)
def test_filter_default(default: Any, raw: str | None, accepted: bool) -> None:
    result = run(catalog(fn("onGithubPullRequest", arg("filter", default=default, raw=raw))))
    assert bool(result.calls) is accepted
    if accepted:
        assert result.calls[0].args == (("filter", "opened"),)


def test_filter_default_with_branch_patterns() -> None:
    cat = catalog(fn("onGithubPush", arg("filter", default="main,release/**")))
    assert run(cat, event("push", "release/v1/hotfix")).calls
    assert run(cat, event("push", "main")).calls
    result = run(cat, event("push", "feature/x"))
    assert not result.calls
    assert reason(result, "onGithubPush") == (
        "filter 'feature/x' is not accepted by its default 'main,release/**'"
    )


def test_tag_filter_with_version_patterns() -> None:
    cat = catalog(fn("onGithubTag", arg("filter", default="v[12].[0-9]+.[0-9]+")))
    assert calls(run(cat, event("tag", "v1.2.3"))) == [("onGithubTag", (("filter", "v1.2.3"),))]
    assert not run(cat, event("tag", "v3.0.0")).calls


def test_event_default() -> None:
    cat = catalog(fn("onGithub", arg("filter"), arg("event", default="push,tag")))
    assert not run(cat).calls
    assert reason(run(cat), "onGithub") == (
        "event 'pull_request' is not accepted by its default 'push,tag'"
    )
    assert calls(run(cat, PUSH_MAIN)) == [("onGithub", (("filter", "main"), ("event", "push")))]


def test_vendor_default() -> None:
    dispatch = fn("dispatch", arg("filter"), arg("event"), arg("vendor", default="gitlab"))
    result = run(catalog(dispatch))
    assert not result.calls
    assert reason(result, "dispatch") == "vendor 'github' is not accepted by its default 'gitlab'"
    assert calls(run(catalog(dispatch), event("push", "main", vendor="gitlab"))) == [
        ("dispatch", (("filter", "main"), ("event", "push"), ("vendor", "gitlab")))
    ]


def test_vendor_is_checked_before_event_and_filter() -> None:
    dispatch = fn(
        "dispatch",
        arg("filter", default="closed"),
        arg("event", default="push"),
        arg("vendor", default="gitlab"),
    )
    assert reason(run(catalog(dispatch)), "dispatch").startswith("vendor ")


def test_defaults_are_checked_whatever_the_tier() -> None:
    # A tier-1 function may still narrow itself with an event default.
    cat = catalog(fn("onGithubPushMain", arg("event", default="tag")))
    result = run(cat, PUSH_MAIN)
    assert not result.calls
    assert reason(result, "onGithubPushMain") == "event 'push' is not accepted by its default 'tag'"
    # A default that accepts it: the argument is not passed (tier 1 passes none).
    cat = catalog(fn("onGithubPushMain", arg("filter", default="main")))
    assert calls(run(cat, PUSH_MAIN)) == [("onGithubPushMain", ())]


def test_a_required_argument_outside_the_tier_is_passed() -> None:
    cat = catalog(fn("onGithubPushMain", arg("filter"), arg("vendor")))
    assert calls(run(cat, PUSH_MAIN)) == [
        ("onGithubPushMain", (("filter", "main"), ("vendor", "github")))
    ]
    # Optional ones are left to their own default.
    cat = catalog(fn("onGithubPush", arg("filter"), arg("event", optional=True)))
    assert calls(run(cat, PUSH_MAIN)) == [("onGithubPush", (("filter", "main"),))]


def test_an_invalid_default_pattern_is_reported() -> None:
    result = run(catalog(fn("onGithubPullRequest", arg("filter", default="[z-a]"))))
    assert not result.calls
    assert reason(result, "onGithubPullRequest").startswith("invalid filter default: ")


# -- onChanges ------------------------------------------------------------------------------------


def test_on_changes_matches_and_receives_all_changed_files() -> None:
    cat = catalog(
        fn("lintOnGithubPullRequest", arg("filter"), arg("onChanges", default="**/**.go,go.*")),
        fn("docsOnGithubPullRequest", arg("filter"), arg("onChanges", default="docs/**")),
    )
    result = run(cat, changes=["main.go", "go.mod", "README.md"])
    assert calls(result) == [
        (
            "lintOnGithubPullRequest",
            (("filter", "opened"), ("onChanges", "main.go,go.mod,README.md")),
        )
    ]
    assert reason(result, "lintOnGithubPullRequest") == (
        "matches tier 2 (onGithubPullRequest); 2 of 3 changed files match onChanges"
    )
    assert reason(result, "docsOnGithubPullRequest") == (
        "none of the 3 changed files matches onChanges 'docs/**'"
    )


def test_on_changes_list_default_and_negation() -> None:
    cat = catalog(fn("onGithubPushMain", arg("onChanges", "[String]", ["src/**", "!src/**/*.md"])))
    assert not run(cat, PUSH_MAIN, changes=["src/a.md", "README.md"]).calls
    assert calls(run(cat, PUSH_MAIN, changes=["src/a.md", "src/b.py"])) == [
        ("onGithubPushMain", (("onChanges", "src/a.md,src/b.py"),))
    ]


def test_on_changes_with_no_changed_file() -> None:
    cat = catalog(fn("onGithubPushMain", arg("onChanges", default="**")))
    result = run(cat, PUSH_MAIN, changes=[])
    assert not result.calls
    assert reason(result, "onGithubPushMain") == "no file changed, onChanges '**' needs one"


def test_unknown_changes_count_as_everything_changed() -> None:
    cat = catalog(fn("onGithubPushMain", arg("onChanges", default="docs/**")))
    result = match(cat, PUSH_MAIN, None, ())
    assert calls(result) == [("onGithubPushMain", (("onChanges", ""),))]
    assert "changed files unknown" in reason(result, "onGithubPushMain")


@pytest.mark.parametrize("default", [_NO, "", [], None])
def test_an_empty_on_changes_puts_no_condition(default: Any) -> None:
    cat = catalog(fn("onGithubPushMain", arg("onChanges", default=default)))
    assert calls(run(cat, PUSH_MAIN, changes=[])) == [("onGithubPushMain", (("onChanges", ""),))]
    assert calls(run(cat, PUSH_MAIN, changes=["a", "b"])) == [
        ("onGithubPushMain", (("onChanges", "a,b"),))
    ]


def test_on_changes_is_checked_after_the_defaults() -> None:
    cat = catalog(
        fn("onGithubPullRequest", arg("onChanges", default="docs/**"), arg("filter", default="x"))
    )
    assert reason(run(cat, changes=["a"]), "onGithubPullRequest").startswith("filter ")


def test_argument_order_is_stable() -> None:
    dispatch = fn(
        "dispatch",
        arg("onChanges", default="**"),
        arg("vendor"),
        arg("event"),
        arg("filter"),
    )
    (call,) = run(catalog(dispatch), changes=["x"]).calls
    assert [name for name, _ in call.args] == ["filter", "event", "vendor", "onChanges"]


# -- Arguments pocketci must supply --------------------------------------------------------------


def test_missing_src_or_event_trigger() -> None:
    cat = catalog(
        FunctionSpec("onGithubPullRequestOpened", (TRIGGER,)),
        FunctionSpec("lintOnGithubPullRequestOpened", (SRC,)),
        FunctionSpec("testOnGithubPullRequestOpened", (arg("src", "File"), TRIGGER)),
        FunctionSpec("docsOnGithubPullRequestOpened", (SRC, arg("eventTrigger", "String"))),
    )
    result = run(cat)
    assert result.tier is None
    assert [d.reason for d in result.decisions] == [
        "missing the src argument (Directory)",
        "missing the eventTrigger argument (File)",
        "the src argument must be a Directory, not File",
        "the eventTrigger argument must be a File, not String",
    ]


def test_missing_tier_argument() -> None:
    cat = catalog(fn("onGithubPullRequest"), fn("onGithub", arg("filter")))
    result = run(cat)
    assert result.tier is None
    assert reason(result, "onGithubPullRequest") == (
        "missing the filter argument that tier 2 (onGithubPullRequest) passes"
    )
    assert reason(result, "onGithub") == "missing the event argument that tier 3 (onGithub) passes"


def test_a_required_argument_nobody_supplies() -> None:
    cat = catalog(fn("onGithubPullRequestOpened", arg("version")))
    result = run(cat)
    assert not result.calls
    assert reason(result, "onGithubPullRequestOpened") == (
        "required argument version (String) has no default and no configured secret of that name"
    )
    # Optional or defaulted arguments are fine.
    for extra in (arg("version", optional=True), arg("version", default="1.0")):
        assert run(catalog(fn("onGithubPullRequestOpened", extra))).calls


def test_secrets_are_passed_only_when_declared() -> None:
    cat = catalog(
        fn("testOnGithubPullRequestOpened", arg("ghPassword", "Secret")),
        fn("lintOnGithubPullRequestOpened", arg("npmToken", "Secret", optional=True)),
        fn("docsOnGithubPullRequestOpened"),
    )
    result = run(cat, secrets=("ghPassword", "npmToken", "unused"))
    assert [(c.function, c.secrets) for c in result.calls] == [
        ("testOnGithubPullRequestOpened", ("ghPassword",)),
        ("lintOnGithubPullRequestOpened", ("npmToken",)),
        ("docsOnGithubPullRequestOpened", ()),
    ]


def test_a_required_secret_that_is_not_configured() -> None:
    cat = catalog(
        fn("onGithubPullRequestOpened", arg("ghPassword", "Secret")),
        fn("dispatch", arg("filter"), arg("event"), arg("vendor")),
    )
    result = run(cat, secrets=())
    assert [c.function for c in result.calls] == ["dispatch"]
    assert "ghPassword" in reason(result, "onGithubPullRequestOpened")


def test_reserved_names_are_never_secrets() -> None:
    cat = catalog(fn("onGithubPullRequest", arg("filter")))
    (call,) = run(cat, secrets=("filter", "src")).calls
    assert call.secrets == ()


def test_an_uncallable_function_of_an_earlier_tier_does_not_block_a_later_one() -> None:
    cat = catalog(
        fn("onGithubPushMain", base=False),
        fn("onGithubPush", arg("filter")),
    )
    result = run(cat, PUSH_MAIN)
    assert result.tier == 2
    assert [c.function for c in result.calls] == ["onGithubPush"]
    assert reason(result, "onGithubPushMain") == "missing the src argument (Directory)"


# -- Repository-level paths ----------------------------------------------------------------------


def test_paths_allow() -> None:
    assert paths_allow([], ["a"])
    assert paths_allow(["", " "], [])
    assert paths_allow(["**/**.go"], None)
    assert paths_allow(["**/**.go", "go.*"], ["README.md", "cmd/main.go"])
    assert not paths_allow(["**/**.go", "go.*"], ["README.md"])
    assert not paths_allow(["**/**.go"], [])
    assert not paths_allow(["docs/**", "!docs/**/*.png"], ["docs/a.png"])


# -- Properties -----------------------------------------------------------------------------------

VENDORS = ["github", "gitlab"]
EVENT_TYPES = ["push", "pull_request", "tag"]
FILTERS = ["main", "opened", "feature/x", "v1.2.3", "develop", ""]
NAMES = [
    "dispatch",
    "buildDispatch",
    "onGithub",
    "onGitlab",
    "onGithubPush",
    "onGithubPullRequest",
    "testOnGithubPullRequest",
    "onGithubPushMain",
    "lintOnGithubPushMain",
    "onGithubPullRequestOpened",
    "onGithubTag",
    "onGithubPushDevelop",
    "build",
    "publish",
]
DEFAULTS: list[Any] = [
    _NO,
    "",
    "main",
    "opened,closed",
    ["push", "tag"],
    "**",
    "!main",
    "feature/*",
]
PATH_DEFAULTS: list[Any] = [_NO, "", "**/*.go", "docs/**", ["src/**", "!src/x.md"], "*.md"]
CHANGES = ["main.go", "docs/a.md", "src/x.md", "src/y.py", "README.md"]


@st.composite
def functions(draw: st.DrawFn) -> FunctionSpec:
    name = draw(st.sampled_from(NAMES))
    args: list[ArgSpec] = []
    if draw(st.booleans()) or draw(st.booleans()):
        args.append(SRC)
    if draw(st.booleans()) or draw(st.booleans()):
        args.append(TRIGGER)
    for plain in ("filter", "event", "vendor"):
        if draw(st.booleans()):
            args.append(arg(plain, default=draw(st.sampled_from(DEFAULTS))))
    if draw(st.booleans()):
        args.append(arg("onChanges", default=draw(st.sampled_from(PATH_DEFAULTS))))
    if draw(st.integers(0, 4)) == 0:
        args.append(arg("token", "Secret", optional=draw(st.booleans())))
    return FunctionSpec(name=name, args=tuple(draw(st.permutations(args))))


scenario = st.tuples(
    st.lists(functions(), max_size=8).map(lambda fs: catalog(*fs)),
    st.builds(
        event,
        st.sampled_from(EVENT_TYPES),
        st.sampled_from(FILTERS),
        st.sampled_from(VENDORS),
    ),
    st.one_of(st.none(), st.lists(st.sampled_from(CHANGES), unique=True)),
    st.sampled_from([(), ("token",)]),
)


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_matcher_invariants(
    s: tuple[ModuleCatalog, Event, list[str] | None, tuple[str, ...]],
) -> None:
    cat, ev, changes, secrets = s
    result = match(cat, ev, changes, secrets)
    names = tier_names(ev.vendor, ev.event_type, ev.filter)

    # Only trigger functions are reported, in catalog order, with their tier.
    expected = [
        (f.name, function_tier(f.name, names))
        for f in cat.functions
        if function_tier(f.name, names) is not None
    ]
    assert [(d.function, d.tier) for d in result.decisions] == expected

    matched = [d for d in result.decisions if d.matched]
    if result.tier is None:
        assert not matched
    else:
        assert matched
        assert all(d.tier == result.tier for d in matched)
    for d in result.decisions:
        assert d.reason
        assert (d.call is not None) is d.matched
        if result.tier is not None and d.tier is not None and d.tier > result.tier:
            assert not d.matched
            assert d.reason.endswith("matched first")

    triggers = [f for f in cat.functions if function_tier(f.name, names) is not None]
    for d, spec in zip(result.decisions, triggers, strict=True):
        if not d.matched:
            continue
        assert d.call is not None
        assert d.call.function == spec.name
        # Never a call to a function that lacks src or eventTrigger.
        src, trig = spec.arg("src"), spec.arg("eventTrigger")
        assert src is not None
        assert src.type_name == "Directory"
        assert trig is not None
        assert trig.type_name == "File"
        arg_names = [n for n, _ in d.call.args]
        assert arg_names == sorted(arg_names, key=["filter", "event", "vendor", "onChanges"].index)
        assert d.tier is not None
        assert set(TIER_ARGS[d.tier]) <= set(arg_names)
        assert set(d.call.secrets) <= set(secrets)
        assert all(spec.arg(n) is not None for n in (*arg_names, *d.call.secrets))
        values = dict(d.call.args)
        for a in spec.args:
            if a.required:
                # Every required argument is one pocketci supplies.
                assert (
                    a.name in values
                    or a.name in d.call.secrets
                    or a.name
                    in (
                        "src",
                        "eventTrigger",
                    )
                )
        assert values.get("filter", ev.filter) == ev.filter
        assert values.get("event", ev.event_type) == ev.event_type
        assert values.get("vendor", ev.vendor) == ev.vendor
        if "onChanges" in values:
            assert values["onChanges"] == ("" if changes is None else ",".join(changes))

    # The winning tier is the lowest with an accepted function: each earlier tier, matched
    # alone, accepts nothing; the winning tier alone gives the same calls.
    for tier in range(1, 5):
        alone = catalog(*[f for f in cat.functions if function_tier(f.name, names) == tier])
        alone_result = match(alone, ev, changes, secrets)
        if result.tier is None or tier < result.tier:
            assert not alone_result.calls
        elif tier == result.tier:
            assert alone_result.calls == result.calls
