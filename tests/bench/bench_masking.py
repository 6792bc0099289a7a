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


def main() -> None:
    """Print lines/s for clean lines, lines with a secret, random lines, and streamed chunks."""
    rnd = random.Random(1)
    alphabet = string.ascii_letters + string.digits
    secrets = ["ghp_" + "".join(rnd.choice(alphabet) for _ in range(36)) for _ in range(5)]
    masker = Masker(secrets)
    n = 200_000
    clean = [LINE] * n
    dirty = [LINE[:100] + secrets[2] + LINE[100:160]] * n
    noisy = ["".join(rnd.choice(alphabet + "+/=") for _ in range(200)) for _ in range(20_000)]
    print(f"needles: {len(masker.needles)} from {len(secrets)} secrets, longest {masker.max_len}")
    print(f"mask(), 200-char line, no secret:   {rate(masker.mask, clean):>12,.0f} lines/s")
    print(f"mask(), 200-char line, one secret:  {rate(masker.mask, dirty):>12,.0f} lines/s")
    print(f"mask(), 200 random base64 chars:    {rate(masker.mask, noisy):>12,.0f} lines/s")
    sm = StreamMasker(masker)
    print(f"StreamMasker.feed(), 200-char chunk: {rate(sm.feed, clean):>11,.0f} chunks/s")
    body = base64.b64encode(rnd.randbytes(1200)).decode()
    pem = "\n".join(
        ["-----BEGIN RSA PRIVATE KEY-----"]
        + [body[i : i + 64] for i in range(0, len(body), 64)]
        + ["-----END RSA PRIVATE KEY-----"]
    )
    with_pem = Masker([*secrets, pem])
    print(f"with a PEM key too: {len(with_pem.needles)} needles")
    print(f"mask(), 200-char line, no secret:   {rate(with_pem.mask, clean):>12,.0f} lines/s")
    print(f"mask(), 200 random base64 chars:    {rate(with_pem.mask, noisy):>12,.0f} lines/s")


if __name__ == "__main__":
    main()
