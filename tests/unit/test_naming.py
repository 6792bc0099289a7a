"""Name casing: camel words, kebab-case like strcase.ToKebab, tier names and tier membership."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketci_tui.engine.match.naming import (
    belongs_to,
    camel_words,
    filter_forms_identifier,
    kebab,
    lower_camel,
    pascal,
    tier_names,
)

# Words of at least two lower-case letters: the shape of ordinary Dagger names. (Single-letter
# words next to each other do not survive a kebab round trip in strcase either: ``aBC`` reads
# as the acronym ``bc``.)
lower_words = st.lists(st.from_regex(r"[a-z]{2,8}", fullmatch=True), min_size=1, max_size=6)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("pull_request", ["pull", "request"]),
        ("feature/login", ["feature", "login"]),
        ("v1.2.3", ["v1", "2", "3"]),
        ("myFeature", ["myFeature"]),
        ("  --a__b  ", ["a", "b"]),
        ("", []),
        ("///", []),
        ("fünf", ["f", "nf"]),
    ],
)
def test_camel_words_split_on_anything_not_ascii_letter_or_digit(
    text: str, words: list[str]
) -> None:
    assert camel_words(text) == words


@pytest.mark.parametrize(
    ("text", "expected_pascal", "expected_lower"),
    [
        ("pull_request", "PullRequest", "pullRequest"),
        ("push", "Push", "push"),
        ("main", "Main", "main"),
        ("github", "Github", "github"),
        ("ready_for_review", "ReadyForReview", "readyForReview"),
        ("release-candidate", "ReleaseCandidate", "releaseCandidate"),
        ("myFeature", "MyFeature", "myFeature"),
        ("v2", "V2", "v2"),
        ("2024-hotfix", "2024Hotfix", "2024Hotfix"),
        ("", "", ""),
    ],
)
def test_pascal_and_lower_camel(text: str, expected_pascal: str, expected_lower: str) -> None:
    assert pascal(text) == expected_pascal
    assert lower_camel(text) == expected_lower


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("testOnGithubPullRequest", "test-on-github-pull-request"),
        ("onChanges", "on-changes"),
        ("onGithubPushMain", "on-github-push-main"),
        ("dispatch", "dispatch"),
        ("eventTrigger", "event-trigger"),
        ("ghPassword", "gh-password"),
        # The strcase test vectors, in kebab form.
        ("testCase", "test-case"),
        ("TestCase", "test-case"),
        ("Test Case", "test-case"),
        (" Test Case ", "test-case"),
        ("test_case", "test-case"),
        ("ManyManyWords", "many-many-words"),
        ("AnyKind of_string", "any-kind-of-string"),
        ("numbers2and55with000", "numbers-2-and-55-with-000"),
        ("JSONData", "json-data"),
        ("userID", "user-id"),
        ("AAAbbb", "aa-abbb"),
        ("1A2", "1-a-2"),
        ("A1B", "a-1-b"),
        ("A1A2A3", "a-1-a-2-a-3"),
        ("AB1AB2AB3", "ab-1-ab-2-ab-3"),
        ("some string", "some-string"),
        ("", ""),
        # Digits and acronyms in trigger names.
        ("onGithubPushV2", "on-github-push-v-2"),
        ("buildHTTPServer", "build-http-server"),
        ("onGithubTagV1dot2", "on-github-tag-v-1-dot-2"),
    ],
)
def test_kebab_matches_strcase(name: str, expected: str) -> None:
    assert kebab(name) == expected


@given(lower_words)
def test_kebab_of_lower_camel_joins_words_with_hyphens(words: list[str]) -> None:
    assert kebab(lower_camel(" ".join(words))) == "-".join(words)


@given(lower_words)
def test_lower_camel_of_kebab_round_trips(words: list[str]) -> None:
    name = lower_camel(" ".join(words))
    assert lower_camel(kebab(name)) == name


@given(st.text())
def test_kebab_output_has_no_capitals_or_separators(text: str) -> None:
    out = kebab(text)
    assert not any("A" <= c <= "Z" for c in out)
    assert not any(c in " _." for c in out)


@given(st.text())
def test_pascal_is_an_identifier_or_empty(text: str) -> None:
    out = pascal(text)
    assert out == "" or (out.isascii() and out.isalnum())
    assert lower_camel(text).lower() == out.lower()


def test_tier_names_for_a_pull_request() -> None:
    assert tier_names("github", "pull_request", "opened") == [
        "onGithubPullRequestOpened",
        "onGithubPullRequest",
        "onGithub",
        "dispatch",
    ]


def test_tier_names_for_a_push_and_a_tag() -> None:
    assert tier_names("github", "push", "main") == [
        "onGithubPushMain",
        "onGithubPush",
        "onGithub",
        "dispatch",
    ]
    assert tier_names("github", "push", "release-candidate")[0] == "onGithubPushReleaseCandidate"
    assert tier_names("github", "pull_request", "ready_for_review")[0] == (
        "onGithubPullRequestReadyForReview"
    )
    assert tier_names("github", "tag", "v2")[0] == "onGithubTagV2"


@pytest.mark.parametrize(
    "filter_value",
    ["feature/login", "release/v1", "v1.2.3", "fix#12", "fünf", "", "-", "__", "a b"],
)
def test_a_filter_that_cannot_form_an_identifier_has_no_tier_1(filter_value: str) -> None:
    assert not filter_forms_identifier(filter_value)
    names = tier_names("github", "push", filter_value)
    assert names == [None, "onGithubPush", "onGithub", "dispatch"]


@pytest.mark.parametrize("filter_value", ["main", "a", "9", "release-candidate", "x_y", "-x-"])
def test_filters_that_form_identifiers(filter_value: str) -> None:
    assert filter_forms_identifier(filter_value)


def test_tier_names_degenerate_vendor_or_event() -> None:
    assert tier_names("github", "", "main") == [None, None, "onGithub", "dispatch"]
    assert tier_names("", "push", "main") == [None, None, None, "dispatch"]


@given(st.text(), st.text(), st.text())
def test_tier_names_shape(vendor: str, event_type: str, filter_value: str) -> None:
    names = tier_names(vendor, event_type, filter_value)
    assert len(names) == 4
    assert names[3] == "dispatch"
    # Each present tier name extends the next present one, and all are identifiers.
    present = [n for n in names[:3] if n is not None]
    for longer, shorter in itertools.pairwise(present):
        assert longer.startswith(shorter)
        assert len(longer) > len(shorter)
    for n in present:
        assert n.isascii()
        assert n.isalnum()
        assert n.startswith("on")


@pytest.mark.parametrize(
    ("function", "tier", "expected"),
    [
        ("onGithubPullRequest", "onGithubPullRequest", True),
        ("testOnGithubPullRequest", "onGithubPullRequest", True),
        ("lintOnGithubPullRequest", "onGithubPullRequest", True),
        ("onGithubPullRequestOpened", "onGithub", False),
        ("onGithubPullRequestOpened", "onGithubPullRequest", False),
        ("onGithubPushMain", "onGithubPush", False),
        ("pythonGithub", "onGithub", False),
        ("dispatch", "dispatch", True),
        ("buildDispatch", "dispatch", True),
        ("redispatch", "dispatch", False),
        ("dispatcher", "dispatch", False),
        ("onGithubPushMain", "onGithubPushMAIN", True),
        ("onGithubPushMAIN", "onGithubPushMain", True),
        ("test2OnGithubPush", "onGithubPush", True),
        ("OnGithubPush", "onGithubPush", True),
        ("anything", "", False),
    ],
)
def test_belongs_to(function: str, tier: str, expected: bool) -> None:
    assert belongs_to(function, tier) is expected


@given(st.from_regex(r"[a-z][A-Za-z0-9]{0,10}", fullmatch=True), lower_words)
def test_any_prefix_belongs_to_the_tier(prefix: str, words: list[str]) -> None:
    tier = lower_camel("on " + " ".join(words))
    assert belongs_to(tier, tier)
    assert belongs_to(prefix + pascal(tier), tier)
