"""GitHub Actions filter patterns: the cheat-sheet examples and a slow reference matcher."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pathspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pocketci_tui.engine.match.patterns import (
    PathBatch,
    PathFilter,
    PatternError,
    RefFilter,
    glob_to_regex,
    paths_csv,
    ref_matches,
    split_csv,
)

# -- A slow reference: parse the glob into tokens and match them by recursion ------------------


@dataclass(frozen=True)
class Tok:
    """One glob token: kind is lit, cls, star, any (``**``) or dirs (``**/``)."""

    kind: str
    chars: frozenset[str] = frozenset()
    quant: str = ""  # "", "?" (zero or one) or "+" (one or more)


def ref_tokens(glob: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            seg_start = i == 0 or glob[i - 1] == "/"
            if seg_start and glob.startswith("**/", i):
                toks.append(Tok("dirs"))
                i += 3
            else:
                toks.append(Tok("any"))
                i += 2
        elif c == "*":
            toks.append(Tok("star"))
            i += 1
        elif c in "?+":
            last = toks[-1] if toks else None
            if last is not None and last.kind in ("lit", "cls") and not last.quant:
                toks[-1] = Tok(last.kind, last.chars, c)
            else:
                toks.append(Tok("lit", frozenset(c)))
            i += 1
        elif c == "[" and glob.find("]", i + 1) > i + 1:
            end = glob.find("]", i + 1)
            body = glob[i + 1 : end]
            chars: set[str] = set()
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    if body[j] > body[j + 2]:
                        raise PatternError("reversed")
                    chars.update(chr(k) for k in range(ord(body[j]), ord(body[j + 2]) + 1))
                    j += 3
                else:
                    chars.add(body[j])
                    j += 1
            toks.append(Tok("cls", frozenset(chars)))
            i = end + 1
        elif c == "\\" and i + 1 < len(glob):
            toks.append(Tok("lit", frozenset(glob[i + 1])))
            i += 2
        else:
            toks.append(Tok("lit", frozenset(c)))
            i += 1
    return toks


def ref_match(glob: str, path: str) -> bool:
    toks = ref_tokens(glob)

    @cache
    def m(t: int, p: int) -> bool:
        if t == len(toks):
            return p == len(path)
        tok = toks[t]
        if tok.kind == "star":
            q = p
            while True:
                if m(t + 1, q):
                    return True
                if q == len(path) or path[q] == "/":
                    return False
                q += 1
        if tok.kind == "any":
            return any(m(t + 1, q) for q in range(p, len(path) + 1))
        if tok.kind == "dirs":
            # zero directories, or anything ending with "/"
            if m(t + 1, p):
                return True
            return any(path[q - 1] == "/" and m(t + 1, q) for q in range(p + 1, len(path) + 1))
        ok = p < len(path) and path[p] in tok.chars
        if tok.quant == "":
            return ok and m(t + 1, p + 1)
        if tok.quant == "?":
            return m(t + 1, p) or (ok and m(t + 1, p + 1))
        # "+": one or more
        q = p
        while q < len(path) and path[q] in tok.chars:
            q += 1
            if m(t + 1, q):
                return True
        return False

    return m(0, 0)


def ref_filter(patterns: Sequence[str], path: str) -> bool:
    pats = [p.strip() for p in patterns if p.strip()]
    if pats and all(p.startswith("!") for p in pats):
        pats.insert(0, "**")
    decision = False
    for p in pats:
        neg = p.startswith("!")
        if ref_match(p[1:] if neg else p, path):
            decision = not neg
    return decision


# -- GitHub's cheat sheet: "Patterns to match file paths" -------------------------------------

PATH_CASES: list[tuple[list[str], list[str], list[str]]] = [
    # (patterns, paths that match, paths that do not)
    (["*"], ["README.md", "server.rb"], ["docs/README.md", "a/b"]),
    (["*.jsx?"], ["page.js", "page.jsx"], ["page.jsxx", "src/page.js", "page.j"]),
    (["**"], ["README.md", "a/b/c.txt", ".github/workflows/ci.yml"], []),
    (["*.js"], ["app.js", "index.js"], ["js/index.js", "src/js/app.js", "app.jsx"]),
    (["**.js"], ["index.js", "js/index.js", "src/js/app.js"], ["index.jsx", "js/index.ts"]),
    (
        ["docs/*"],
        ["docs/README.md", "docs/file.txt"],
        ["docs/mona/octocat.txt", "docs", "a/docs/x"],
    ),
    (["docs/**"], ["docs/README.md", "docs/mona/octocat.txt"], ["docs", "README.md", "a/docs/x"]),
    (
        ["docs/**/*.md"],
        ["docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/guide.md"],
        ["docs/a.txt", "README.md", "x/docs/a.md"],
    ),
    (
        ["**/docs/**"],
        ["docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"],
        ["docs", "mydocs/a.md", "dir/docs"],
    ),
    (["**/README.md"], ["README.md", "js/README.md"], ["README.mdx", "js/XREADME.md"]),
    (
        ["**/*src/**"],
        ["a/src/app.js", "my-src/code/js/app.js", "src/x"],
        ["a/srcs/app.js", "src"],
    ),
    (["**/*-post.md"], ["my-post.md", "path/their-post.md"], ["post.md", "path/post.md"]),
    (
        ["**/migrate-*.sql"],
        ["migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"],
        ["db/migrate.sql", "migrate-1.sqlx"],
    ),
    (["migrate-10909.sql"], ["migrate-10909.sql"], ["db/migrate-10909.sql", "migrate-10909sql"]),
    (["*.md", "!README.md"], ["hello.md"], ["README.md", "docs/hello.md"]),
    (["*.md", "!README.md", "README*"], ["hello.md", "README.md", "README.doc"], ["docs/x.md"]),
    # The seed's example and the spec's.
    (["**/**.go", "go.*"], ["main.go", "cmd/agent/main.go", "go.mod", "go.sum"], ["a/go.mod"]),
    # Brackets, ranges, + and escapes.
    (["[CB]at"], ["Cat", "Bat"], ["cat", "Hat", "CBat"]),
    (["[1-2]00"], ["100", "200"], ["300", "00"]),
    (["[0-9a-z]"], ["5", "q"], ["Q", "-", "55"]),
    (["a+b"], ["ab", "aab", "aaab"], ["b", "a+b"]),
    (["+a"], ["+a"], ["a"]),
    (["\\*.md"], ["*.md"], ["a.md"]),
    (["a[b"], ["a[b"], ["ab"]),
    (["!**/*.md"], ["a.txt", "docs/x.go"], ["a.md", "docs/x.md"]),
    (
        ["docs/**", "!docs/**/*.png", "docs/keep.png"],
        ["docs/a.md", "docs/keep.png"],
        ["docs/b.png"],
    ),
    (["a/**/b"], ["a/b", "a/x/b", "a/x/y/b"], ["a/xb", "ab"]),
    (["a**b"], ["ab", "a/b", "axx/yyb"], ["a/c"]),
]


@pytest.mark.parametrize(("patterns", "yes", "no"), PATH_CASES)
def test_path_cheat_sheet(patterns: list[str], yes: list[str], no: list[str]) -> None:
    f = PathFilter(patterns)
    for path in yes:
        assert f.matches(path), (patterns, path)
        assert ref_filter(patterns, path), (patterns, path)
    for path in no:
        assert not f.matches(path), (patterns, path)
        assert not ref_filter(patterns, path), (patterns, path)
    assert f.any_match(yes) is bool(yes)
    assert not f.any_match(no)
    assert f.matching([*no, *yes]) == yes


def test_later_patterns_override_and_the_deciding_pattern_is_reported() -> None:
    f = PathFilter(["*.md", "!README.md", "README*"])
    assert f.deciding_pattern("hello.md") == "*.md"
    assert f.deciding_pattern("README.md") == "README*"
    assert f.deciding_pattern("docs/x.md") is None
    g = PathFilter(["*.md", "!README.md"])
    assert g.deciding_pattern("README.md") == "!README.md"
    assert not g.matches("README.md")


def test_paths_are_case_sensitive_and_anchored() -> None:
    f = PathFilter(["docs/*.md"])
    assert f.matches("docs/a.md")
    assert not f.matches("Docs/a.md")
    assert not f.matches("docs/a.MD")
    assert not f.matches("x/docs/a.md")
    assert not f.matches("/docs/a.md")


def test_a_bare_directory_name_matches_only_itself() -> None:
    # Unlike gitignore: "docs" is the path "docs", not everything under it.
    f = PathFilter(["docs"])
    assert f.matches("docs")
    assert not f.matches("docs/a.md")


def test_empty_filter_and_stripping() -> None:
    assert PathFilter([]).empty
    assert PathFilter(["", "  "]).empty
    assert not PathFilter([]).matches("a")
    assert not PathFilter([]).any_match(["a", "b"])
    f = PathFilter(["  *.md  "])
    assert f.raw == ("*.md",)
    assert f.matches("a.md")


def test_from_csv_and_paths_csv() -> None:
    assert paths_csv("**/**.go, go.*,,") == ["**/**.go", "go.*"]
    f = PathFilter.from_csv("**/**.go,go.*")
    assert f.matches("pkg/x.go")
    assert f.matches("go.mod")
    assert not f.matches("README.md")


def test_only_negated_patterns_mean_everything_except() -> None:
    f = PathFilter(["!docs/**", "!*.md"])
    assert f.matches("src/main.go")
    assert not f.matches("docs/a.txt")
    assert not f.matches("README.md")
    assert str(f.patterns[0].pattern) == "**"


def test_patterns_are_pathspec_regex_patterns() -> None:
    f = PathFilter(["*.md", "!README.md"])
    assert all(isinstance(p, pathspec.RegexPattern) for p in f.patterns)
    assert [p.include for p in f.patterns] == [True, False]
    spec = pathspec.PathSpec(f.patterns)
    assert spec.check_file("a.md", separators=()).include is True
    assert spec.check_file("README.md", separators=()).include is False


def test_reversed_range_is_an_error() -> None:
    with pytest.raises(PatternError):
        PathFilter(["[z-a]"])
    with pytest.raises(PatternError):
        RefFilter("main,[9-0]")


def test_newlines_in_file_names() -> None:
    f = PathFilter(["**.md", "docs/**"])
    assert f.matches("a\nb.md")
    assert f.matches("docs/x\ny")
    assert not PathFilter(["*"]).matches("a\n/b")


def test_glob_to_regex_shapes() -> None:
    assert glob_to_regex("**/README.md") == r"(?:.*/)?README\.md"
    assert glob_to_regex("*.jsx?") == r"[^/]*\.jsx?"
    assert glob_to_regex("v[12].[0-9]+.[0-9]+") == r"v[12]\.[0-9]+\.[0-9]+"


def test_many_patterns_and_mixed_negations() -> None:
    pats = []
    for i in range(60):
        pats.append(f"svc{i}/**")
        if i % 3 == 0:
            pats.append(f"!svc{i}/**/*.md")
        if i % 7 == 0:
            pats.append(f"svc{i}/docs/keep.md")
    f = PathFilter(pats)
    paths = [
        "svc0/a.go",
        "svc0/x/b.md",
        "svc0/docs/keep.md",
        "svc3/c.md",
        "svc4/c.md",
        "svc99/a.go",
        "other",
    ]
    assert [f.matches(p) for p in paths] == [ref_filter(pats, p) for p in paths]
    assert f.matching(paths) == ["svc0/a.go", "svc0/docs/keep.md", "svc4/c.md"]


# -- Property tests against the reference and pathspec's own evaluation -----------------------

PATH_ALPHABET = "ab./-"
GLOB_ALPHABET = "ab./-*?+[]!\\"

paths_st = st.text(alphabet=PATH_ALPHABET, max_size=12)
glob_st = st.text(alphabet=GLOB_ALPHABET, min_size=1, max_size=10)


def _compiles(patterns: Sequence[str]) -> bool:
    try:
        PathFilter(patterns)
    except PatternError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(glob_st, min_size=1, max_size=5), st.lists(paths_st, min_size=1, max_size=8))
def test_path_filter_agrees_with_the_reference(patterns: list[str], paths: list[str]) -> None:
    assume(_compiles(patterns))
    f = PathFilter(patterns)
    expected = [ref_filter(patterns, p) for p in paths]
    assert [f.matches(p) for p in paths] == expected
    assert f.any_match(paths) == any(expected)
    assert f.matching(paths) == [p for p, e in zip(paths, expected, strict=True) if e]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(glob_st, min_size=1, max_size=6),
    st.lists(st.text(alphabet=PATH_ALPHABET + "\n", max_size=12), max_size=20),
)
def test_scanning_a_batch_agrees_with_the_reference(patterns: list[str], paths: list[str]) -> None:
    assume(_compiles(patterns))
    f = PathFilter(patterns)
    batch = PathBatch(paths)
    verdict = {p: ref_filter(patterns, p) for p in set(paths)}
    expected = [p for p in paths if verdict[p]]
    assert f.matching(batch) == expected
    assert f.any_match(batch) == bool(expected)
    assert f.count(batch) == len(expected)
    # Long lists take the batch path on their own.
    long_paths = paths * (70 // max(1, len(paths)) + 1) if paths else []
    assert f.matching(long_paths) == [p for p in long_paths if verdict[p]]
    assert f.any_match(long_paths) == bool(expected)


def test_one_batch_serves_many_filters_small_and_large() -> None:
    paths = [f"d{i % 5}/e{i % 4}/f{i}.{('go', 'md', 'txt')[i % 3]}" for i in range(600)]
    batch = PathBatch(paths)
    small = ["d1/**", "!**/*.md", "**/e2/*.txt"]
    large = [f"d{i % 5}/e{i % 4}/f{i}.*" for i in range(0, 600, 7)] + ["!d3/**", "**/f1?.go"]
    for pats in (small, large, ["!d2/**"], ["d0/**", "d1/**"]):
        f = PathFilter(pats)
        expected = [p for p in paths if ref_filter(pats, p)]
        assert f.matching(batch) == expected, pats
        assert f.count(batch) == len(expected)
        assert f.any_match(batch) == bool(expected)
    assert not PathFilter(["nothing/**"]).any_match(batch)
    assert not PathFilter(["nothing/**", "!d1/**"]).any_match(batch)


def test_batches_with_newlines_fall_back_to_one_path_at_a_time() -> None:
    paths = [f"src/f{i}.go" for i in range(100)] + ["docs/a\nb.md", "x.md"]
    batch = PathBatch(paths)
    assert not batch.scannable
    f = PathFilter(["**.md"])
    assert f.matching(batch) == ["docs/a\nb.md", "x.md"]
    g = PathFilter(["a\nb", "src/**"])
    assert g.count(PathBatch(["a\nb", *paths[:80]])) == 81
    assert PathBatch(paths[:80]).scannable


def test_a_large_batch_with_negations() -> None:
    paths = [f"pkg{i % 7}/sub{i % 3}/file{i}.{('go', 'md', 'png')[i % 3]}" for i in range(1000)]
    pats = ["pkg1/**", "!**/*.png", "pkg2/**/*.go", "!pkg1/sub1/**", "**/file1*.md"]
    f = PathFilter(pats)
    expected = [p for p in paths if ref_filter(pats, p)]
    assert expected
    assert f.matching(paths) == expected
    assert f.matching(PathBatch(paths)) == expected
    assert f.count(paths) == len(expected)
    assert f.any_match(paths)
    assert not f.any_match([p for p in paths if p not in set(expected)])


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_st, min_size=1, max_size=5), paths_st)
def test_pathspec_evaluates_the_same_patterns_identically(patterns: list[str], path: str) -> None:
    assume(_compiles(patterns))
    assume(not path.startswith(("/", "./")))  # pathspec strips those before matching
    f = PathFilter(patterns)
    spec = pathspec.PathSpec(f.patterns)
    assert bool(spec.check_file(path, separators=()).include) == f.matches(path)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["*", "**", "**/", "a", "b", ".", "/", "[ab]", "a+", "a?"]),
        min_size=1,
        max_size=6,
    ),
    paths_st,
)
def test_structured_globs_agree_with_the_reference(parts: list[str], path: str) -> None:
    glob = "".join(parts)
    assert PathFilter([glob]).matches(path) == ref_match(glob, path)


# -- Branch and tag patterns ("Patterns to match branches and tags") -------------------------

REF_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "feature/*",
        ["feature/my-branch", "feature/your-branch"],
        ["feature/your-branch/x", "feature"],
    ),
    (
        "feature/**",
        ["feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"],
        ["feature", "features/x"],
    ),
    (
        "main,releases/mona-the-octocat",
        ["main", "releases/mona-the-octocat"],
        ["mainline", "releases/other", "Main"],
    ),
    ("*", ["main", "releases"], ["releases/x", "feature/a"]),
    ("**", ["all/the/branches", "every/tag", "main"], []),
    ("*feature", ["mona-feature", "feature", "ver-10-feature"], ["feature-x", "a/feature"]),
    ("v2*", ["v2", "v2.0", "v2.9"], ["v1", "v3.0", "v2/x"]),
    ("v[12].[0-9]+.[0-9]+", ["v1.10.1", "v2.0.0"], ["v3.0.0", "v1.x.1", "v1.0", "v1.0.0-rc1"]),
    ("release/**", ["release/v1", "release/v1/hotfix"], ["release", "releases/v1"]),
    ("opened,synchronize,reopened", ["opened", "synchronize", "reopened"], ["closed", "open"]),
    (" opened , synchronize ", ["opened", "synchronize"], ["closed", " opened "]),
    ("pull_request", ["pull_request"], ["push", "pull_requests"]),
    ("**,!main", ["develop", "feature/x"], ["main"]),
    ("!main", ["develop", "feature/x", ""], ["main"]),
    ("release/**,!release/**-rc*", ["release/v1"], ["release/v1-rc1"]),
]


@pytest.mark.parametrize(("csv", "yes", "no"), REF_CASES)
def test_ref_cheat_sheet(csv: str, yes: list[str], no: list[str]) -> None:
    f = RefFilter(csv)
    for value in yes:
        assert f.matches(value), (csv, value)
        assert ref_matches(csv, value)
    for value in no:
        assert not f.matches(value), (csv, value)
        assert not ref_matches(csv, value)


@pytest.mark.parametrize("csv", ["", "   ", ",", " , ,"])
def test_empty_ref_filter_accepts_anything(csv: str) -> None:
    f = RefFilter(csv)
    assert f.accepts_anything
    for value in ["", "main", "feature/x", "anything at all"]:
        assert f.matches(value)
        assert ref_matches(csv, value)


def test_ref_filter_from_entries_keeps_each_entry_whole() -> None:
    f = RefFilter.from_entries(["a,b", " main "])
    assert f.entries == ("a,b", "main")
    assert f.matches("a,b")
    assert f.matches("main")
    assert not f.matches("a")
    assert RefFilter.from_entries([]).accepts_anything


def test_split_csv() -> None:
    assert split_csv(" a, b ,,c ,") == ["a", "b", "c"]
    assert split_csv("") == []


@given(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True))
def test_a_plain_name_matches_exactly_itself(name: str) -> None:
    assume(not name.startswith("!"))
    assert ref_matches(name, name)
    assert not ref_matches(name, name + "x")
    assert not ref_matches(name, "x" + name)


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_st, min_size=1, max_size=4), paths_st)
def test_ref_filter_agrees_with_the_reference(entries: list[str], value: str) -> None:
    entries = [e for e in entries if "," not in e]
    assume(entries and _compiles(entries))
    f = RefFilter(",".join(entries))
    stripped = [e.strip() for e in entries if e.strip()]
    expected = True if not stripped else ref_filter(stripped, value)
    assert f.matches(value) == expected
