"""Board growth benchmark: what one change costs the attending boards as the ward grows, and
what a ward reconnecting at once costs them.

Starts the real server (a subprocess on a fresh SQLite file, as bench/fanout.py does) and:

1. Reconnect storm: 10 running sessions, 50 boards open, 450 bedside screens (nurses and
   physicians in turn) over the 10 sessions all dropping and reconnecting at once. Prints the
   bytes the 50 boards received, beside what a whole-board-per-change design sends for the
   same storm (the whole board per screen connecting, as before the boards went per tile; and
   the whole board per update actually sent), both from the board size measured in this run.
2. Board change cost at 10 / 50 / 200 running sessions: vitals posted to one session, 5
   boards open. Prints the bytes each board receives per change and the time from the start
   of the POST to the tile's arrival on every board (the POST alone beside it), beside the
   whole board (what a whole-board-per-change design sends each board per change).

    .venv/bin/python bench/board_growth.py
    .venv/bin/python bench/board_growth.py --sizes 10,50 --posts 5

Targets (issue 18): per-change cost flat within ±25 % from 10 to 200 sessions; the storm
under 5 MB to 50 boards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
from fanout import OK_VITALS, percentile, running_session, sign_in, stepwise_servers

ROLES = ("nurse", "physician")


@dataclass
class Board:
    """A board screen: its snapshot, then every update (heartbeats left out)."""

    connection: websockets.ClientConnection
    snapshot: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    updates: list[tuple[float, str]] = field(default_factory=list)

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.connection:
                text = str(message)
                if not self.snapshot:
                    self.snapshot = text
                    self.ready.set()
                elif "data-heartbeat" not in text:
                    self.updates.append((time.perf_counter(), text))

    def bytes_since(self, start: float) -> int:
        return sum(len(text) for at, text in self.updates if at >= start)


def cookie_of(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


async def connect(url: str, client: httpx.AsyncClient, origin: str):
    return await websockets.connect(
        url,
        additional_headers={"Cookie": cookie_of(client)},
        origin=origin,
        max_size=None,
        open_timeout=60,
    )


async def open_boards(base: str, client: httpx.AsyncClient, count: int) -> list[Board]:
    ws = base.replace("http://", "ws://") + "/ws/board"
    boards = [Board(await connect(ws, client, base)) for _ in range(count)]
    for board in boards:
        asyncio.get_running_loop().create_task(board.read())
    await asyncio.gather(*(b.ready.wait() for b in boards))
    return boards


async def close(connections) -> None:
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


async def settle(boards: list[Board], quiet: float = 1.0) -> None:
    """Until no board has had an update for `quiet` seconds."""
    while True:
        last = max((at for b in boards for at, _ in b.updates), default=0.0)
        if time.perf_counter() - last >= quiet:
            return
        await asyncio.sleep(0.1)


async def grow(team: dict[str, httpx.AsyncClient], sessions: list[int], target: int) -> None:
    while len(sessions) < target:
        batch = min(4, target - len(sessions))  # more at once: SQLite answers busy
        made = await asyncio.gather(
            *(running_session(team, len(sessions) + i) for i in range(batch))
        )
        sessions.extend(made)


async def storm(base: str, team, watchers, sessions: list[int], args) -> dict[str, float]:
    boards = await open_boards(base, watchers["physician"], args.boards)
    board_size = statistics.mean(len(b.snapshot) for b in boards)
    ws = base.replace("http://", "ws://")

    async def bedsides() -> list:
        return await asyncio.gather(
            *(
                connect(
                    f"{ws}/ws/sessions/{sessions[i % len(sessions)]}",
                    watchers[ROLES[i % len(ROLES)]],
                    base,
                )
                for i in range(args.screens)
            )
        )

    screens = await bedsides()  # the ward as it was before the blip
    await settle(boards)
    started = time.perf_counter()
    await close(screens)  # every tablet drops at once...
    screens = await bedsides()  # ...and reconnects at once
    await settle(boards)
    received = sum(b.bytes_since(started) for b in boards)
    updates = statistics.mean(len([1 for at, _ in b.updates if at >= started]) for b in boards)
    await close(screens)
    await close([b.connection for b in boards])
    return {
        "board": board_size,
        "received": received,
        "updates": updates,
        # Before the boards went per tile: the whole board to every board per screen
        # connecting (the 22,650 messages), and per coalesced update.
        "per_connect": args.screens * args.boards * board_size,
        "per_update": updates * args.boards * board_size,
    }


async def change_cost(base: str, team, watchers, sessions: list[int], args) -> dict[str, float]:
    boards = await open_boards(base, watchers["physician"], args.board_screens)
    board_size = statistics.mean(len(b.snapshot) for b in boards)
    await settle(boards, 0.5)
    latencies, posts, per_change = [], [], []
    for n in range(args.posts):
        sid = sessions[n % 10]
        rate = 60 + (n * 7 + len(sessions)) % 38  # within every limit: no alarm, no prompt
        marker = f"<small>HR</small> {rate}<"
        for b in boards:
            b.updates.clear()
        started = time.perf_counter()
        answer = await team["nurse"].post(
            f"/api/v1/sessions/{sid}/vitals", json={**OK_VITALS, "heart_rate": rate}
        )
        assert answer.status_code == 200, answer.text
        posts.append((time.perf_counter() - started) * 1000)
        deadline = time.monotonic() + 30
        while not all(any(marker in t for _, t in b.updates) for b in boards):
            assert time.monotonic() < deadline, "the tile never came"
            await asyncio.sleep(0.002)
        for b in boards:
            at = next(at for at, t in b.updates if marker in t)
            latencies.append((at - started) * 1000)
        await asyncio.sleep(args.gap)
        per_change.append(statistics.mean(sum(len(t) for _, t in b.updates) for b in boards))
    await close([b.connection for b in boards])
    return {
        "board": board_size,
        "bytes": statistics.mean(per_change),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "post": percentile(posts, 50),
    }


async def run(base: str, args) -> None:
    team = {r: await sign_in(base, r) for r in ("nurse", "physician", "pharmacist")}
    watchers = {r: await sign_in(base, r) for r in ROLES}
    sessions: list[int] = []
    sizes = [int(s) for s in args.sizes.split(",")]
    await grow(team, sessions, 10)
    s = await storm(base, team, watchers, sessions, args)
    print(
        f"reconnect storm: {args.screens} bedside screens over 10 sessions drop and reconnect "
        f"at once, {args.boards} boards open (board {s['board'] / 1024:.1f} KB); "
        f"{os.cpu_count()} CPUs"
    )
    print(f"  {'bytes to the boards, per tile (now)':<52}{s['received'] / 1e6:10.2f} MB")
    print(
        f"  {'whole board per screen connecting (baseline)':<52}{s['per_connect'] / 1e6:10.2f} MB"
    )
    print(f"  {'whole board per update sent':<52}{s['per_update'] / 1e6:10.2f} MB")
    print(f"  {'updates per board':<52}{s['updates']:10.1f}")
    print(f"  target < 5 MB: {'met' if s['received'] < 5e6 else 'NOT met'}")
    rows = []
    for size in sizes:
        await grow(team, sessions, size)
        rows.append((size, await change_cost(base, team, watchers, sessions, args)))
    print(
        f"board change cost: vitals to one session, {args.board_screens} boards, "
        f"{args.posts} posts per size"
    )
    header = ("sessions", "board KB", "per change B", "ratio", "p50 ms", "p95 ms", "POST ms")
    print("  " + "".join(f"{h:>14}" for h in header))
    for size, r in rows:
        ratio = r["board"] / r["bytes"]
        figures = (size, r["board"] / 1024, r["bytes"], ratio, r["p50"], r["p95"], r["post"])
        print(
            "  " + "".join(f"{v:>14.1f}" if isinstance(v, float) else f"{v:>14}" for v in figures)
        )
    per_change = [r["bytes"] for _, r in rows]
    spread = max(per_change) / min(per_change) - 1
    print(
        f"  bytes per change: {min(per_change):.0f}..{max(per_change):.0f} B "
        f"({spread * 100:+.0f} %), the whole board {rows[0][1]['board'] / 1024:.1f}.."
        f"{rows[-1][1]['board'] / 1024:.1f} KB (baseline: a whole-board design sends that)"
    )
    latency = [r["p50"] for _, r in rows]
    print(f"  p50 arrival {min(latency):.1f}..{max(latency):.1f} ms")
    for client in [*team.values(), *watchers.values()]:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50,200", help="running sessions to measure at")
    parser.add_argument("--screens", type=int, default=450, help="bedside screens in the storm")
    parser.add_argument("--boards", type=int, default=50, help="boards open in the storm")
    parser.add_argument("--board-screens", type=int, default=5, help="boards for change cost")
    parser.add_argument("--posts", type=int, default=10, help="vitals posts per size")
    parser.add_argument("--gap", type=float, default=0.15, help="seconds after each post")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, stepwise_servers(Path(tmp), 1, None) as bases:
        asyncio.run(run(bases[0], args))


if __name__ == "__main__":
    main()
