"""Signature verification and strict JSON decoding of GitHub deliveries."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketci_tui.forges import github

VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_published_test_vector() -> None:
    """A1: GitHub's documented example."""
    assert github.sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIG
    assert github.verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIG)
    assert github.verify(VECTOR_SECRET.encode(), VECTOR_BODY, VECTOR_SIG)


def _flip(sig: str, i: int) -> str:
    c = sig[i]
    return sig[:i] + ("0" if c != "0" else "1") + sig[i + 1 :]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        _flip(VECTOR_SIG, len(VECTOR_SIG) - 1),
        _flip(VECTOR_SIG, 7),
        VECTOR_SIG.replace("sha256=", "sha1="),
        VECTOR_SIG.upper(),
        "sha256=" + VECTOR_SIG[7:].upper(),
        " " + VECTOR_SIG,
        VECTOR_SIG + " ",
        VECTOR_SIG + "\n",
        VECTOR_SIG[:-1],
        VECTOR_SIG + "0",
        VECTOR_SIG[7:],
        "sha256=" + "g" * 64,
    ],
)
def test_bad_signatures_refused(header: str | None) -> None:
    """A2/A3: missing, off by one, wrong prefix, upper case, whitespace."""
    assert not github.verify(VECTOR_SECRET, VECTOR_BODY, header)


def test_modified_or_reserialized_body_refused() -> None:
    """A5/A6: HMAC over the raw bytes."""
    body = b'{"a": 1, "b": [1, 2]}'
    sig = github.sign("s3cret-s3cret", body)
    assert github.verify("s3cret-s3cret", body, sig)
    assert not github.verify("s3cret-s3cret", body.replace(b"1", b"2", 1), sig)
    same_object = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert not github.verify("s3cret-s3cret", same_object, sig)


def test_empty_secret_never_verifies() -> None:
    assert not github.verify("", b"x", github.sign("", b"x"))


@given(st.binary(max_size=256), st.text(min_size=1, max_size=40), st.text(max_size=80))
def test_verify_only_accepts_own_signature(body: bytes, secret: str, header: str) -> None:
    assert github.verify(secret, body, github.sign(secret, body))
    if header != github.sign(secret, body):
        assert not github.verify(secret, body, header)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"a": "\xff\xfe"}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1, "a": 2}',
        b'{"x": {"b": 1, "b": 1}}',
        b"[1, 2]",
        b'"text"',
        b"",
        b"{",
        b"\xef\xbb\xbf{}",
    ],
)
def test_strict_json_refuses(body: bytes) -> None:
    """A17: deep nesting, invalid UTF-8, NaN/Infinity, duplicate keys, non-objects."""
    with pytest.raises(github.PayloadError):
        github.parse_payload(body)


def test_strict_json_accepts_normal_objects() -> None:
    assert github.parse_payload(b'{"a": [1, 2.5, null, true], "b": {"c": "\\u00e9"}}') == {
        "a": [1, 2.5, None, True],
        "b": {"c": "é"},
    }


@given(st.binary(max_size=512))
def test_parse_payload_only_raises_payload_error(body: bytes) -> None:
    try:
        result = github.parse_payload(body)
    except github.PayloadError:
        return
    assert isinstance(result, dict)


def test_header_validators() -> None:
    assert github.valid_event_name("pull_request")
    assert not github.valid_event_name("Pull Request")
    assert not github.valid_event_name("")
    assert not github.valid_event_name("x" * 65)
    assert github.valid_delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert not github.valid_delivery_id("../../etc")
    assert not github.valid_delivery_id("")
    assert not github.valid_delivery_id("a" * 200)
    assert github.clean_hook_id("512345678") == "512345678"
    assert github.clean_hook_id("12; drop") == ""
    assert github.clean_hook_id(None) == ""
