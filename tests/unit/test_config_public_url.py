"""``public-url``: the one address commit statuses link to, checked before anything is sent."""

from __future__ import annotations

import pytest
import yaml

from pocketci_tui.config import ConfigError, Settings, parse_settings


def _parse(text: str) -> Settings:
    return parse_settings(yaml.safe_load(text), "config.yaml")


def test_without_public_url_statuses_carry_no_link() -> None:
    s = _parse("concurrency: 1\n")
    assert s.public_url == ""
    assert s.status_target(42) is None


def test_a_public_url_links_each_status_to_its_event() -> None:
    s = _parse("public-url: https://ci.example.org/pocketci/\n")
    assert s.public_url == "https://ci.example.org/pocketci"
    assert s.status_target(42) == "https://ci.example.org/pocketci/#event-42"
    assert Settings(public_url="http://10.0.0.5:8080").status_target(7) == (
        "http://10.0.0.5:8080/#event-7"
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ftp://ci.example.org", "not an http(s) URL"),
        ("ci.example.org", "not an http(s) URL"),
        ("https://user:pw@ci.example.org", "user name or password"),
        ("https://ci.example.org/?a=1", "query"),
        ("https://ci.example.org/#x", "fragment"),
        ("[1, 2]", "expected text"),
    ],
)
def test_a_public_url_that_is_no_plain_address_is_refused(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(f"public-url: {value}\n")
    assert "public-url" in str(err.value)
    assert says in str(err.value)
