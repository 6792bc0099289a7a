"""Masking of secret values: checklist rows M1-M6 and property tests.

M7 (terminal control sequences and Rich markup shown literally) belongs to the runner and the UI
and is tested there.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re
from urllib.parse import quote, quote_plus

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pocketci_tui.engine.masking import MASK, Masker, StreamMasker, encoded_forms
from pocketci_tui.secrets import MIN_SECRET_LENGTH

TOKEN = "ghp_R2d2C3poBB8Luke0Leia1Han2Solo3Yoda"


def stream(masker: Masker, chunks: list[str]) -> str:
    """Feed ``chunks`` through a StreamMasker and return everything it emitted."""
    sm = StreamMasker(masker)
    return "".join(sm.feed(c) for c in chunks) + sm.flush()


def stable_b64(secret: bytes, prefix: bytes) -> str:
    """The base64 characters of ``prefix + secret + <anything>`` that depend only on ``secret``.

    Computed independently of the masker: a character is stable when its 6 bits all come from
    ``secret``.
    """
    k = len(prefix) % 3
    encoded = base64.b64encode(prefix + secret).decode().rstrip("=")
    skip = len(prefix) // 3 * 4 + {0: 0, 1: 2, 2: 3}[k]
    stop = (8 * (len(prefix) + len(secret))) // 6
    return encoded[skip:stop]


# --- M1: raw value, split across writes, at a chunk boundary --------------------------------


def test_m1_raw_value_is_masked() -> None:
    m = Masker([TOKEN])
    assert m.mask(f"token is {TOKEN}.") == f"token is {MASK}."


def test_m1_value_split_across_two_writes_is_masked() -> None:
    m = Masker([TOKEN])
    out = stream(m, [f"token is {TOKEN[:10]}", f"{TOKEN[10:]} end\n"])
    assert out == f"token is {MASK} end\n"


def test_m1_value_ending_exactly_at_a_chunk_boundary() -> None:
    m = Masker([TOKEN])
    sm = StreamMasker(m)
    first = sm.feed("x" * 100 + TOKEN)
    rest = sm.feed("\nnext line\n") + sm.flush()
    assert TOKEN not in first
    assert first + rest == "x" * 100 + MASK + "\nnext line\n"


def test_m1_every_split_point_of_a_line() -> None:
    m = Masker([TOKEN])
    line = f"clone https://x-access-token:{TOKEN}@github.com/acme/api.git failed\n"
    expected = m.mask(line)
    for i in range(len(line) + 1):
        assert stream(m, [line[:i], line[i:]]) == expected


def test_stream_holds_back_only_a_bounded_tail() -> None:
    m = Masker([TOKEN])
    sm = StreamMasker(m)
    emitted = sm.feed("a" * 1000)
    assert len(emitted) >= 1000 - m.max_len


def test_stream_without_secrets_passes_text_through() -> None:
    sm = StreamMasker(Masker([]))
    assert sm.feed("abc") == "abc"
    assert sm.flush() == ""


# --- M2: multi-line values ------------------------------------------------------------------

PEM = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBnLr1lXUWwTQ5Yz1XsHqpcKgEZ2DEfQhYWl0e2c0k3XAAAAJgSr8RcEq/E
-----END OPENSSH PRIVATE KEY-----"""


def test_m2_each_line_of_a_multiline_value_is_masked_line_by_line() -> None:
    m = Masker([PEM])
    for line in PEM.splitlines():
        assert m.mask(f"  {line}  ") == f"  {m.token}  "


def test_m2_pem_echoed_unquoted_lines_joined_with_spaces() -> None:
    m = Masker([PEM])
    joined = " ".join(PEM.splitlines())  # what `echo $KEY` prints
    out = m.mask(joined)
    for line in PEM.splitlines():
        assert line not in out
    assert out == " ".join([m.token] * len(PEM.splitlines()))


def test_m2_crlf_lines_are_masked() -> None:
    value = "first-line-secret\r\nsecond-line-secret"
    m = Masker([value])
    assert m.mask("first-line-secret") == MASK
    assert m.mask("second-line-secret") == MASK


# --- M3: encoded forms ----------------------------------------------------------------------


def test_m3_base64_of_the_value() -> None:
    m = Masker([TOKEN])
    encoded = base64.b64encode(TOKEN.encode()).decode()
    assert m.mask(f"x {encoded} y") == f"x {MASK} y"


def test_m3_base64_of_user_colon_value_basic_auth() -> None:
    m = Masker([TOKEN])
    header = "Authorization: Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
    out = m.mask(header)
    assert stable_b64(TOKEN.encode(), b"user:") not in out
    assert MASK in out


def test_m3_base64_with_every_prefix_alignment_and_suffix() -> None:
    m = Masker([TOKEN])
    for prefix in (b"", b"a", b"ab", b"abc", b"user:", b"x-access-token:"):
        for suffix in (b"", b"\n", b"!!", b":more"):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                text = enc(prefix + TOKEN.encode() + suffix).decode()
                out = m.mask(text)
                inner = stable_b64(TOKEN.encode(), prefix)
                if enc is base64.urlsafe_b64encode:
                    inner = inner.translate(str.maketrans("+/", "-_"))
                assert inner not in out, (prefix, suffix)
                assert MASK in out


def test_m3_url_encoded_json_escaped_and_hex() -> None:
    value = 'p@ss/w0rd+"quoted" & ünï\\côde'
    m = Masker([value])
    forms = [
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        value.encode().hex(),
        value.encode().hex().upper(),
    ]
    for form in forms:
        assert m.mask(f"<{form}>") == f"<{MASK}>", form


def test_m3_json_document_containing_the_value() -> None:
    value = 'line1\nline2 "q" \\ tab\t'
    m = Masker([value])
    out = m.mask(json.dumps({"token": value}))
    assert out == '{"token": "' + MASK + '"}'


# --- M4: values shorter than the minimum ----------------------------------------------------


def test_m4_short_values_are_not_masked_documented_limit() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    m = Masker([short])
    assert not m
    assert encoded_forms(short) == set()
    assert m.mask(f"value={short}") == f"value={short}"


def test_m4_value_of_minimum_length_is_masked() -> None:
    value = "k" * (MIN_SECRET_LENGTH - 1) + "Q"
    assert Masker([value]).mask(f"={value}=") == f"={MASK}="


def test_empty_and_no_values() -> None:
    assert Masker([]).mask("anything") == "anything"
    assert Masker(["", ""]).mask("anything") == "anything"


# --- M5: tokens in git errors and tracebacks ------------------------------------------------


def test_m5_token_inside_a_git_error_url() -> None:
    m = Masker([TOKEN])
    err = (
        f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/acme/api.git/': "
        "The requested URL returned error: 403"
    )
    out = m.mask(err)
    assert TOKEN not in out
    assert "https://x-access-token:***@github.com/acme/api.git/" in out


def test_m5_token_url_encoded_inside_a_url() -> None:
    value = "s3cr3t/with@odd:chars"
    m = Masker([value])
    url = f"https://user:{quote(value, safe='')}@example.com/repo.git"
    assert m.mask(url) == "https://user:***@example.com/repo.git"


def test_m5_value_in_a_python_traceback_repr() -> None:
    value = "it's\na \\secret\\ value"
    m = Masker([value])
    try:
        raise ValueError(value)
    except ValueError as exc:
        text = repr(exc) + " " + str({"password": value})
    out = m.mask(text)
    assert repr(value)[1:-1] not in out
    assert out.count(MASK) == 2


# --- M6: known gaps, asserted so the documentation stays true --------------------------------


def test_m6_reversed_value_is_not_masked_known_gap() -> None:
    m = Masker([TOKEN])
    assert m.mask(TOKEN[::-1]) == TOKEN[::-1]


def test_m6_value_printed_char_by_char_is_not_masked_known_gap() -> None:
    m = Masker([TOKEN])
    spaced = " ".join(TOKEN)
    assert m.mask(spaced) == spaced
    lines = [m.mask(ch) for ch in TOKEN]  # one character per output line
    assert "".join(lines) == TOKEN


def test_m6_compressed_value_is_not_masked_known_gap() -> None:
    m = Masker([TOKEN])
    blob = base64.b64encode(gzip.compress(TOKEN.encode())).decode()
    assert m.mask(blob) == blob
    assert gzip.decompress(base64.b64decode(m.mask(blob))).decode() == TOKEN


# --- corner cases ---------------------------------------------------------------------------


def test_regex_metacharacters_in_values() -> None:
    value = r"a.b*c+d?(e)[f]{g}|h^$\\i"
    m = Masker([value])
    assert m.mask("xx" + value + "yy") == f"xx{m.token}yy"
    assert m.mask("a-b-c-d-e") == "a-b-c-d-e"


def test_replacement_never_forms_a_secret_with_its_neighbours() -> None:
    # A secret that contains "*" could be re-created by "***" next to its other characters.
    a, b = "qqqqqqqq", "**abcdef"
    m = Masker([a, b])
    assert m.token != MASK
    out = m.mask("q" * 8 + "abcdef")
    assert b not in out
    assert a not in out


def test_longest_secret_wins_when_values_overlap() -> None:
    m = Masker(["abcdefgh", "abcdefghijkl"])
    assert m.mask("abcdefghijkl") == MASK
    assert m.mask("abcdefghijk") == MASK + "ijk"


def test_text_without_secrets_is_returned_unchanged() -> None:
    m = Masker([TOKEN])
    line = "Step 3/7 : RUN go test ./... (cached) ok github.com/acme/api 0.12s"
    assert m.mask(line) is line or m.mask(line) == line


# --- property tests -------------------------------------------------------------------------

secret_values = st.text(min_size=MIN_SECRET_LENGTH, max_size=40).filter(
    lambda s: len(s.strip()) >= 1
)
regexy = st.text(alphabet=".*+?()[]{}|^$\\/-_:@ab\n", min_size=MIN_SECRET_LENGTH, max_size=24)
any_secret = st.one_of(secret_values, regexy)


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    """Split ``text`` at random points."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return [text[i:j] for i, j in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(any_secret, min_size=1, max_size=4),
    pieces=st.lists(st.text(max_size=30), min_size=1, max_size=6),
    data=st.data(),
)
def test_property_no_secret_survives_any_chunking(
    secrets: list[str], pieces: list[str], data: st.DataObject
) -> None:
    masker = Masker(secrets)
    # Output: random text with secrets and their encoded forms mixed in.
    extra = data.draw(st.lists(st.sampled_from(sorted(masker.needles)), max_size=4))
    parts: list[str] = []
    for i, piece in enumerate(pieces):
        parts.append(piece)
        parts.append(secrets[i % len(secrets)])
    parts.extend(extra)
    whole = "".join(parts)
    masked = masker.mask(whole)
    streamed = stream(masker, data.draw(chunkings(whole)))
    assert streamed == masked
    for needle in masker.needles:
        assert needle not in masked


@settings(max_examples=300, deadline=None)
@given(secret=secret_values, text=st.text(max_size=200), data=st.data())
def test_property_text_without_secrets_is_unchanged(
    secret: str, text: str, data: st.DataObject
) -> None:
    masker = Masker([secret])
    assume(not any(n in text for n in masker.needles))
    assert masker.mask(text) == text
    assert stream(masker, data.draw(chunkings(text))) == text


@settings(max_examples=200, deadline=None)
@given(
    secret=st.binary(min_size=MIN_SECRET_LENGTH, max_size=40).map(lambda b: b.decode("latin-1")),
    prefix=st.binary(max_size=7),
    suffix=st.binary(max_size=4),
)
def test_property_base64_with_any_prefix_is_masked(
    secret: str, prefix: bytes, suffix: bytes
) -> None:
    masker = Masker([secret])
    raw = secret.encode("utf-8")
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        out = masker.mask(enc(prefix + raw + suffix).decode())
        inner = stable_b64(raw, prefix)
        if enc is base64.urlsafe_b64encode:
            inner = inner.translate(str.maketrans("+/", "-_"))
        assert inner not in out
        assert re.search(re.escape(masker.token), out)
