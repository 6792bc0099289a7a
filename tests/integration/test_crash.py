"""D1/D2: a real `pocketci-tui serve` is SIGKILLed in the middle of a burst of deliveries.

After each restart every delivery that got a 2xx is in the database, `PRAGMA integrity_check`
is ok, and re-sending the whole burst adds no duplicate rows. Repeated several times against the
same database.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from signing import push_body, send_signed

pytestmark = pytest.mark.timeout(300)

ROUNDS = 4
BURST = 250


async def _burst(
    session: aiohttp.ClientSession,
    url: str,
    deliveries: list[tuple[str, bytes]],
    on_ack: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Send every delivery concurrently; return delivery id -> status for those answered."""
    answered: dict[str, int] = {}

    async def one(delivery: str, body: bytes) -> None:
        try:
            reply = await send_signed(session, url, WEBHOOK_SECRET, body, delivery=delivery)
        except (TimeoutError, aiohttp.ClientError):
            return
        answered[delivery] = reply.status
        if on_ack is not None:
            on_ack(len(answered))

    await asyncio.gather(*(one(d, b) for d, b in deliveries))
    return answered


def _db_state(db: Path) -> tuple[str, list[str]]:
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = [r[0] for r in conn.execute("SELECT delivery_id FROM events")]
    finally:
        conn.close()
    return check, ids


async def test_sigkill_during_burst_loses_no_acknowledged_delivery(
    hermetic_home: Path,
) -> None:
    write_serve_config(
        hermetic_home,
        # A configured repository whose clone fails at once, so the engine has work to do but
        # never reaches the network.
        repos="[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    db = hermetic_home / "data" / "pocketci.db"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    all_sent: dict[str, bytes] = {}
    acked_ever: set[str] = set()
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for round_no in range(ROUNDS):
            serve = await ServeProcess.start()
            burst = [
                (str(uuid.uuid4()), push_body(branch="main", n=round_no * BURST + i))
                for i in range(BURST)
            ]
            all_sent.update(burst)
            # The kill comes at a random point of the burst: after a random number of replies
            # plus a random few milliseconds, while the rest are in flight.
            kill_after = rng.randrange(1, BURST // 2)
            delay = rng.uniform(0, 0.01)
            reached = asyncio.Event()

            def on_ack(
                count: int, kill_after: int = kill_after, reached: asyncio.Event = reached
            ) -> None:
                if count >= kill_after:
                    reached.set()

            async def killer(
                serve: ServeProcess = serve, delay: float = delay, reached: asyncio.Event = reached
            ) -> None:
                await reached.wait()
                await asyncio.sleep(delay)
                await serve.kill()

            answered, _ = await asyncio.gather(
                _burst(session, serve.hook_url, burst, on_ack), killer()
            )
            acked = {d for d, status in answered.items() if 200 <= status < 300}
            assert all(s in (200, 202) for s in answered.values()), (seed, answered)
            acked_ever |= acked

            # Restart on the same database.
            serve = await ServeProcess.start()
            check, ids = _db_state(db)
            assert check == "ok", (seed, round_no)
            missing = acked_ever - set(ids)
            assert not missing, (
                f"seed {seed} round {round_no}: {len(missing)} acknowledged deliveries lost"
            )
            assert len(ids) == len(set(ids))

            # Re-send everything sent so far: all 2xx, no new row for what was stored.
            before = len(ids)
            replies = await _burst(session, serve.hook_url, list(all_sent.items()))
            assert len(replies) == len(all_sent)
            assert set(replies.values()) <= {200, 202}, (seed, round_no)
            _, ids_after = _db_state(db)
            assert len(ids_after) == len(set(ids_after)) == len(all_sent)
            assert len(ids_after) - before == len(all_sent) - before
            assert await serve.terminate() == 0
            print(
                f"round {round_no}: killed after {kill_after} replies + {delay * 1000:.1f} ms: "
                f"{len(acked)} of {BURST} acked"
            )
