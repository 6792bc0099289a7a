"""Speed of path patterns and function matching (SPEC 6: 10,000 changed files x 100 patterns).

Run: ``python tests/bench/bench_matching.py``. Prints figures; asserts nothing. ``run()``
returns the same figures as rows for ``tests/bench/run_all.py``.

Workload: 10,000 changed paths shaped like a monorepo (services, libraries, docs, CI files,
vendored code, generated files) and 100 patterns of the kinds people write (``services/x/**``,
``**/*.go``, ``docs/**/*.md``, ``**/README.md``, ``!**/testdata/**``...), a few negations among
them. The worst case for a filter is a change list where no path matches: every path is then
checked against every pattern. Figures are medians of several runs.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pathspec

from pocketci_tui.engine.match import patterns as patterns_module
from pocketci_tui.engine.match.matching import match
from pocketci_tui.engine.match.patterns import PathFilter
from pocketci_tui.model import ArgSpec, Event, FunctionSpec, ModuleCatalog

TARGET_MS = 100.0
N_PATHS = 10_000
N_PATTERNS = 100
N_FUNCTIONS = 50
REPEAT = 7

SERVICES = [f"svc-{name}" for name in ("auth", "billing", "search", "mail", "web", "api")]
EXTS = ["go", "py", "ts", "tsx", "md", "json", "yaml", "sql", "proto", "txt", "png", "lock"]
WORDS = ["handler", "model", "util", "client", "server", "config", "store", "index", "main"]
TOPS = ["services", "libs", "docs", "tools", "web", "vendor", "deploy", "internal"]


def changed_paths(
    rnd: random.Random,
    n: int = N_PATHS,
    tops: list[str] = TOPS,
    exts: list[str] = EXTS,
) -> list[str]:
    """Return ``n`` distinct repository paths shaped like a large monorepo change."""
    out: set[str] = set()
    while len(out) < n:
        top = rnd.choice(tops)
        parts = [top]
        if top in ("services", "libs"):
            parts.append(rnd.choice(SERVICES) if top == "services" else f"lib{rnd.randint(0, 40)}")
        for _ in range(rnd.randint(0, 4)):
            parts.append(rnd.choice([*WORDS, "internal", "pkg", "src", "testdata", "gen"]))
        name = f"{rnd.choice(WORDS)}_{rnd.randint(0, 999)}.{rnd.choice(exts)}"
        out.add("/".join([*parts, name]))
    return sorted(out)


def unmatched_paths(rnd: random.Random, n: int = N_PATHS) -> list[str]:
    """Return ``n`` paths that none of :func:`pattern_list` matches (the full-scan case)."""
    return changed_paths(rnd, n, tops=["assets", "third_party", "scripts"], exts=["bin", "dat"])


def pattern_list(rnd: random.Random, n: int = N_PATTERNS) -> list[str]:
    """Return ``n`` patterns of the usual kinds, ending with a few negations."""
    kinds: list[Callable[[int], str]] = [
        lambda i: f"services/{SERVICES[i % len(SERVICES)]}/**/*.{EXTS[i % 4]}",
        lambda i: f"libs/lib{i % 41}/**",
        lambda i: f"**/*.{rnd.choice(EXTS)}{i}",
        lambda i: f"docs/**/{WORDS[i % len(WORDS)]}_{i}*.md",
        lambda i: f"**/module{i}/**",
        lambda i: f"tools/tool{i}/*.py",
        lambda i: f"**/README{i}.md",
        lambda i: f"deploy/{WORDS[i % len(WORDS)]}/*.yaml",
        lambda i: f"**/*-gen{i}.go",
        lambda i: f"web/app{i}/src/**/*.tsx?",
    ]
    out = [kinds[i % len(kinds)](i) for i in range(n - 5)]
    out += [f"!**/testdata{i}/**" for i in range(3)] + ["!vendor/**", "!**/*.lock"]
    return out


def median_ms(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    """Return the median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _cold_compile(patterns: list[str]) -> PathFilter:
    # Clear the per-pattern cache so compilation is measured from scratch.
    patterns_module._compile_one.cache_clear()
    patterns_module._pieces.cache_clear()
    patterns_module._compiled.cache_clear()
    re.purge()
    return PathFilter(patterns)


def _event() -> Event:
    return Event(
        vendor="github",
        event_type="pull_request",
        filter="synchronize",
        repository="acme/monorepo",
        ref="refs/pull/1/head",
        sha="a" * 40,
        base_ref="main",
        base_sha="b" * 40,
        pr_number=1,
        is_fork=False,
        delivery_id="bench",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        body=b"{}",
    )


def _catalog(pats: list[str]) -> ModuleCatalog:
    """About 50 trigger functions with onChanges defaults, plus helpers."""
    base = (ArgSpec("src", "Directory"), ArgSpec("eventTrigger", "File"))
    functions: list[FunctionSpec] = []
    for i in range(N_FUNCTIONS):
        chosen = [pats[(i * 2 + k) % (len(pats) - 5)] for k in range(4)] + ["!**/*.lock"]
        functions.append(
            FunctionSpec(
                name=f"check{i}OnGithubPullRequest",
                args=(
                    *base,
                    ArgSpec("filter", "String", default_json='"opened,synchronize,reopened"'),
                    ArgSpec("onChanges", "String", default_json='"' + ",".join(chosen) + '"'),
                    ArgSpec("ghToken", "Secret", optional=True),
                ),
            )
        )
    functions += [FunctionSpec(name=n, args=base) for n in ("build", "test", "publish")]
    functions.append(
        FunctionSpec(
            name="dispatch",
            args=(*base, ArgSpec("filter", "String"), ArgSpec("event", "String")),
        )
    )
    return ModuleCatalog(module_name="ci", functions=tuple(functions))


def run() -> list[dict[str, Any]]:
    """Measure and return the rows (name, target, value, unit, comparison, ok)."""
    rnd = random.Random(7)
    paths = changed_paths(rnd)
    pats = pattern_list(rnd)
    path_filter = PathFilter(pats)
    miss = unmatched_paths(rnd)  # nothing matches: the full 10,000 x 100 scan
    if path_filter.any_match(miss):
        raise RuntimeError("the unmatched paths match a pattern; fix the generator")
    selected = path_filter.matching(paths)

    rows: list[dict[str, Any]] = []

    def row(name: str, value: float, comparison: str, target: float | None = TARGET_MS) -> None:
        rows.append(
            {
                "name": name,
                "target": f"< {target:g} ms" if target is not None else "",
                "value": round(value, 2),
                "unit": "ms",
                "comparison": comparison,
                "ok": True if target is None else value < target,
            }
        )

    compile_ms = median_ms(lambda: _cold_compile(pats))
    row(
        f"compile {len(pats)} patterns",
        compile_ms,
        "cold: pattern caches and the re cache cleared",
        None,
    )

    worst = median_ms(lambda: path_filter.any_match(miss))
    # The same patterns evaluated one by one, last match wins, by pathspec (its best backend).
    spec = pathspec.PathSpec(path_filter.patterns)
    naive = median_ms(lambda: [spec.check_file(p, separators=()) for p in miss], repeat=1)
    row(
        f"any_match, {len(miss):,} paths x {len(pats)} patterns, none match",
        worst,
        f"pathspec.PathSpec.check_file loop: {naive:,.0f} ms ({naive / worst:,.0f}x slower)",
    )

    cold = median_ms(lambda: _cold_compile(pats).any_match(miss))
    row("compile + any_match, none match, all caches cold", cold, "first event of a module")

    full = median_ms(lambda: path_filter.matching(paths))
    row(
        f"matching(), {len(paths):,} paths x {len(pats)} patterns",
        full,
        f"{len(selected):,} selected",
    )

    first_hit = median_ms(lambda: path_filter.any_match(paths))
    row("any_match, typical change list (stops at first hit)", first_hit, "")

    alternating = [f"{'!' if i % 2 else ''}{p.lstrip('!')}" for i, p in enumerate(pats)]
    alt_filter = PathFilter(alternating)
    alt = median_ms(lambda: alt_filter.any_match(miss))
    row("any_match, 100 patterns alternating ! (worst ordering), none match", alt, "")

    catalog = _catalog(pats)
    event = _event()
    secrets = ("ghToken",)
    result = match(catalog, event, paths, secrets)
    full_match = median_ms(lambda: match(catalog, event, paths, secrets))
    n_patterns = sum(
        len(str(a.default).split(","))
        for f in catalog.functions
        for a in f.args
        if a.name == "onChanges"
    )
    row(
        f"match(), {N_FUNCTIONS} functions with onChanges, {len(paths):,} changed files",
        full_match,
        f"{n_patterns} onChanges patterns in all; {len(result.calls)} of "
        f"{len(result.decisions)} functions run",
        None,
    )
    miss_match = median_ms(lambda: match(catalog, event, miss, secrets))
    row(
        f"match(), {N_FUNCTIONS} functions, {len(paths):,} changed files, no onChanges hit",
        miss_match,
        "every function scans every file",
        None,
    )
    small = paths[:: len(paths) // 20][:20]
    small_match = median_ms(lambda: match(catalog, event, small, secrets), repeat=21)
    row(
        f"match(), {N_FUNCTIONS} functions with onChanges, {len(small)} changed files",
        small_match,
        "a typical pull request",
        None,
    )
    return rows


def main() -> None:
    """Print the figures and the target."""
    print(f"Target (SPEC 6): {N_PATHS:,} changed files x {N_PATTERNS} patterns < {TARGET_MS:g} ms")
    for r in run():
        ok = "" if not r["target"] else ("  ok" if r["ok"] else "  OVER TARGET")
        print(f"{r['name']:<75} {r['value']:>9,.2f} {r['unit']}  {r['target']}{ok}")
        if r["comparison"]:
            print(f"{'':<8}{r['comparison']}")


if __name__ == "__main__":
    main()
