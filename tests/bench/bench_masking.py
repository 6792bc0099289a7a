"""Throughput of the masker: lines per second for typical build-output lines.

Run: ``python tests/bench/bench_masking.py``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import base64
import random
import string
import time
from collections.abc import Callable

from pocketci_tui.engine.masking import Masker, StreamMasker

LINE = (
    "2026-11-27T20:01:02Z [build] #12 12.34 Step 3/7 : RUN go test ./... -run TestSomething -v "
    "-count=1 (cached) pkg/foo/bar_test.go:123: ok github.com/acme/api/internal/thing 0.123s "
    "coverage: 81.2% of statements"
)[:200]


def rate(fn: Callable[[str], object], lines: list[str]) -> float:
    """Return calls per second of ``fn`` over ``lines``."""
    start = time.perf_counter()
    for line in lines:
        fn(line)
    return len(lines) / (time.perf_counter() - start)


def run() -> list[dict[str, object]]:
    """Measure the masker; rows for the suite table (lines/s; the ingest target is 100,000)."""
    rnd = random.Random(1)
    alphabet = string.ascii_letters + string.digits
    secrets = ["ghp_" + "".join(rnd.choice(alphabet) for _ in range(36)) for _ in range(5)]
    masker = Masker(secrets)
    n = 200_000
    clean = [LINE] * n
    dirty = [LINE[:100] + secrets[2] + LINE[100:160]] * n
    noisy = ["".join(rnd.choice(alphabet + "+/=") for _ in range(200)) for _ in range(20_000)]
    body = base64.b64encode(rnd.randbytes(1200)).decode()
    pem = "\n".join(
        ["-----BEGIN RSA PRIVATE KEY-----"]
        + [body[i : i + 64] for i in range(0, len(body), 64)]
        + ["-----END RSA PRIVATE KEY-----"]
    )
    with_pem = Masker([*secrets, pem])
    sm = StreamMasker(masker)
    cases = [
        ("mask(), 5 tokens, 200-char line, no secret", masker.mask, clean),
        ("mask(), 5 tokens, 200-char line with a secret", masker.mask, dirty),
        ("mask(), 5 tokens, 200 random base64 chars", masker.mask, noisy),
        ("StreamMasker.feed(), 200-char chunks", sm.feed, clean),
        ("mask(), 5 tokens + a PEM key, plain line", with_pem.mask, clean),
        ("mask(), 5 tokens + a PEM key, random base64", with_pem.mask, noisy),
    ]
    rows: list[dict[str, object]] = []
    for name, fn, lines in cases:
        value = rate(fn, lines)
        rows.append(
            {
                "name": name,
                "target": ">= 100,000 lines/s",
                "value": round(value),
                "unit": "lines/s",
                "comparison": f"{len(masker.needles)} needles ({len(with_pem.needles)} with PEM)",
                "ok": value >= 100_000,
            }
        )
    return rows


def main() -> None:
    """Print lines/s for clean lines, lines with a secret, random lines, and streamed chunks."""
    for row in run():
        print(f"{row['name']:<48} {row['value']:>12,} lines/s")


if __name__ == "__main__":
    main()
