"""``pocketci.yaml`` is read from the repository: every size in it is bounded.

A few hundred bytes of nested YAML aliases stand for billions of values; quoting such a value in
an error message used to build a string of gigabytes while holding the interpreter lock. The file
size, the values once aliases are expanded, the nesting, the number of patterns and secrets and
the length of anything quoted back are all bounded now.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pocketci_tui.config import (
    MAX_SPEC_BYTES,
    MAX_SPEC_PATHS,
    MAX_SPEC_SECRETS,
    MAX_SPEC_VALUES,
    ConfigError,
    FileTooLarge,
    load_repo_specs,
    parse_repo_spec,
    read_bounded_file,
    shown,
)
from pocketci_tui.model import MAX_DETAIL, bounded


def alias_bomb(levels: int, key: str = "module-path") -> str:
    """A document whose ``key`` expands to 9**(levels + 1) strings through nested aliases."""
    lines = [f"{key}:", "  - &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  - &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [5, 6])
def test_an_alias_bomb_is_refused_with_a_short_message(levels: int) -> None:
    # 9**6 = 531,441 strings at 5 levels: the old message quoted all of them (4 MB; at 8 levels
    # 3 GB, built in one call that held the interpreter lock for minutes).
    with pytest.raises(ConfigError) as info:
        parse_repo_spec(alias_bomb(levels))
    message = str(info.value)
    assert len(message) < 300
    assert "alias" in message
    assert str(MAX_SPEC_VALUES) in message


def test_aliases_nested_in_plain_lists_are_counted_too() -> None:
    text = (
        "paths:\n"
        " - &a [x,x,x,x,x,x,x,x,x,x]\n"
        " - &b [[*a,*a,*a,*a,*a],[*a,*a,*a,*a,*a]]\n"
        " - &c [[*b,*b,*b,*b,*b],[*b,*b,*b,*b,*b]]\n"
        " - &d [[*c,*c,*c,*c,*c],[*c,*c,*c,*c,*c]]\n"
    )
    with pytest.raises(ConfigError, match="alias"):
        parse_repo_spec(text)


def test_a_few_aliases_still_work() -> None:
    spec = parse_repo_spec("module-path: &m ./ci\npaths: [&g '**/*.go', *g, 'go.*']\n")
    assert spec.module_path == "./ci"
    assert spec.paths == ("**/*.go", "**/*.go", "go.*")


def test_deep_nesting_is_refused_without_recursing() -> None:
    for depth in (100, 100_000):
        with pytest.raises(ConfigError, match="nested deeper"):
            parse_repo_spec("paths: " + "[" * depth + "]" * depth + "\n")


def test_too_many_paths_or_secrets_are_refused() -> None:
    paths = "paths:\n" + "".join(f"  - a{i}/**\n" for i in range(MAX_SPEC_PATHS + 1))
    with pytest.raises(ConfigError, match=f"more than the {MAX_SPEC_PATHS}"):
        parse_repo_spec(paths)
    secrets = "secrets:\n" + "".join(
        f"  - {{name: s{i}, from-env: V{i}}}\n" for i in range(MAX_SPEC_SECRETS + 1)
    )
    with pytest.raises(ConfigError, match=f"more than the {MAX_SPEC_SECRETS}"):
        parse_repo_spec(secrets)
    ok = "paths:\n" + "".join(f"  - a{i}/**\n" for i in range(MAX_SPEC_PATHS))
    assert len(parse_repo_spec(ok).paths) == MAX_SPEC_PATHS


def test_values_quoted_in_errors_are_cut() -> None:
    long_key = "k" * 100_000
    with pytest.raises(ConfigError) as info:
        parse_repo_spec(f"? {long_key}\n: 1\n")
    assert len(str(info.value)) < 300
    assert "100000 characters" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_repo_spec(f"paths: ['{'p' * 50_000}']\n")
    assert len(str(info.value)) < 300
    with pytest.raises(ConfigError) as info:
        parse_repo_spec("module-path: {a: [1, 2, 3]}\n")
    assert "got a mapping" in str(info.value)


def test_a_huge_integer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        parse_repo_spec("module-path: " + "9" * 5000 + "\n")


def test_a_large_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    # Comments only: a valid, empty spec that the old code read whole and accepted.
    (checkout / "pocketci.yaml").write_text("# padding\n" * (MAX_SPEC_BYTES // 10 + 1))
    with pytest.raises(FileTooLarge, match="KiB"):
        load_repo_specs(checkout)
    # A sparse file of 4 GiB is refused by its size: nothing is read or allocated.
    with open(checkout / "pocketci.yaml", "wb") as f:
        f.truncate(4 * 2**30)
    with pytest.raises(FileTooLarge):
        load_repo_specs(checkout)


def test_only_a_regular_file_is_read(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "elsewhere.yaml").write_text("module-path: ./ci\n")
    (checkout / "pocketci.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(ConfigError, match="symbolic link"):
        load_repo_specs(checkout)
    (checkout / "pocketci.yaml").unlink()
    os.mkfifo(checkout / "pocketci.yaml")  # opening it for reading must not block
    with pytest.raises(ConfigError, match="regular file"):
        load_repo_specs(checkout)
    (checkout / "pocketci.yaml").unlink()
    assert load_repo_specs(checkout)[0].found is False
    (checkout / "pocketci.yaml").write_bytes(b"module-path: \xff\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        read_bounded_file(checkout / "pocketci.yaml", 1024, "pocketci.yaml")


def test_shown_and_bounded() -> None:
    assert shown("main") == "'main'"
    assert shown("x" * 1000).endswith("(1000 characters)")
    assert len(shown("x" * 1000)) < 100
    assert shown([1, 2]) == "a list"
    assert shown(10**1000) == "a very large number"
    assert bounded("short") == "short"
    cut = bounded("y" * 10_000)
    assert len(cut) == MAX_DETAIL
    assert cut.endswith("more characters]")
