"""Clone URLs, pull/merge request refs and token users of each forge (issue 13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketci_tui.engine.git import default_clone_url
from pocketci_tui.forges.git_access import GIT_ACCESS, check_base_url, git_access


@pytest.mark.parametrize(
    ("vendor", "base", "repository", "url"),
    [
        ("github", "", "octo-org/hello.world", "https://github.com/octo-org/hello.world.git"),
        ("github", "https://ghe.example.org/", "team/app", "https://ghe.example.org/team/app.git"),
        ("gitea", "https://git.example.org", "me/app", "https://git.example.org/me/app.git"),
        ("gitea", "https://example.org/gitea/", "me/app", "https://example.org/gitea/me/app.git"),
        ("forgejo", "http://192.168.1.5:3000", "me/app", "http://192.168.1.5:3000/me/app.git"),
        (
            "gitlab",
            "https://gitlab.example.org",
            "team/sub/api",
            "https://gitlab.example.org/team/sub/api.git",
        ),
        ("gitlab", "", "group/project", "https://gitlab.com/group/project.git"),
        ("gitlab", "https://gl.example.org", "a/b/c/d/e", "https://gl.example.org/a/b/c/d/e.git"),
    ],
)
def test_clone_url_is_built_from_the_forge_url_and_the_full_name(
    vendor: str, base: str, repository: str, url: str
) -> None:
    assert git_access(vendor).clone_url(base, repository) == url
    assert default_clone_url(vendor, repository, base) == url


@pytest.mark.parametrize("vendor", ["gitea", "forgejo"])
def test_a_self_hosted_forge_without_url_says_what_to_configure(vendor: str) -> None:
    with pytest.raises(ValueError, match=rf"set forges\.{vendor}\.url .* or the .* clone-url"):
        git_access(vendor).clone_url("", "me/app")


@pytest.mark.parametrize(
    ("vendor", "repository"),
    [
        ("gitea", "me"),
        ("gitea", "a/b/c"),  # Gitea has no nested groups
        ("gitea", "../x"),
        ("gitea", "me/.."),
        ("gitea", "-x/y"),
        ("gitea", ".x/y"),
        ("gitea", "me/app.git"),
        ("gitea", "me/a b"),
        ("gitea", "me/a?b"),
        ("gitea", "me/a#b"),
        ("gitea", "me//app"),
        ("gitlab", "project"),
        ("gitlab", "group/../project"),
        ("gitlab", "group/sub/-p"),
        ("gitlab", "group/sub/p.atom"),
        ("gitlab", "/".join(["g"] * 23)),
        ("github", "a/b/c"),
        ("github", "o/r.git"),
    ],
)
def test_names_a_forge_would_not_allow_build_no_url(vendor: str, repository: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        git_access(vendor).clone_url("https://forge.example.org", repository)


@pytest.mark.parametrize(
    "base",
    [
        "git.example.org",
        "ftp://git.example.org",
        "https://user:pw@git.example.org",
        "https://tok@git.example.org",
        "https://git.example.org/?x=1",
        "https://git.example.org/#top",
        "https://git.example.org/a b",
        "https://",
    ],
)
def test_unusable_forge_urls_are_refused(base: str) -> None:
    with pytest.raises(ValueError, match=r"forges\.gitea\.url"):
        git_access("gitea").clone_url(base, "me/app")
    with pytest.raises(ValueError, match="url"):
        check_base_url(base)


def test_each_forge_keeps_request_heads_under_its_own_ref() -> None:
    assert git_access("github").change_refs(7) == ("refs/pull/7/head",)
    assert git_access("gitea").change_refs(7) == ("refs/pull/7/head",)
    assert git_access("forgejo").change_refs(12) == ("refs/pull/12/head",)
    assert git_access("gitlab").change_refs(7) == ("refs/merge-requests/7/head",)
    for access in GIT_ACCESS.values():
        assert access.change_refs(None) == ()
        assert access.change_refs(0) == ()


def test_each_forge_gets_the_token_in_its_own_basic_auth_form() -> None:
    assert git_access("github").username == "x-access-token"
    assert git_access("gitlab").username == "oauth2"
    # Gitea and Forgejo take a token as the password of any user name.
    for vendor in ("gitea", "forgejo"):
        name = git_access(vendor).username
        assert name
        assert ":" not in name


def test_unknown_forge() -> None:
    with pytest.raises(ValueError, match="unknown forge 'bitbucket'"):
        git_access("bitbucket")


_SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,20}", fullmatch=True)


@given(st.lists(_SEGMENT, min_size=2, max_size=21))
def test_any_gitlab_path_maps_below_the_base_url(parts: list[str]) -> None:
    url = git_access("gitlab").clone_url("https://gl.example.org/prefix", "/".join(parts))
    assert url == "https://gl.example.org/prefix/" + "/".join(parts) + ".git"


@given(st.text(max_size=60))
def test_no_name_leaves_the_base_url(repository: str) -> None:
    for vendor in GIT_ACCESS:
        try:
            url = git_access(vendor).clone_url("https://forge.example.org/base", repository)
        except ValueError:
            continue
        rest = url.removeprefix("https://forge.example.org/base/")
        assert rest != url
        assert rest.endswith(".git")
        segments = rest.removesuffix(".git").split("/")
        assert all(s and s[0] not in ".-" and s != ".." for s in segments)
        assert not any(c in rest for c in "?#% \\@:")
