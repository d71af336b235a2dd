"""Memory per open screen: the server's resident memory before, with N bedside screens open
(over S running sessions) and after they close, beside the same for the bare broadcast server
(the baseline of bench/fanout.py) with the same number of connections, in the same run.

    .venv/bin/python bench/screen_memory.py               # 450 screens over 10 sessions
    .venv/bin/python bench/screen_memory.py --screens 200
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from fanout import (
    SERVER_PIDS,
    Screen,
    baseline_server,
    open_screens,
    running_session,
    sign_in,
    stepwise_servers,
)


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def settled_kib(pid: int) -> int:
    await asyncio.sleep(2.0)  # snapshots sent, presence settled, buffers drained
    return resident_kib(pid)


async def opened_and_closed(
    pid: int, open_them: Callable[[], Awaitable[list[Screen]]]
) -> tuple[int, int, int]:
    """The server's memory before `open_them()` opens the screens, with them open, and once
    they have closed."""
    before = await settled_kib(pid)
    opened = await open_them()
    readers = [asyncio.create_task(s.read()) for s in opened]
    during = await settled_kib(pid)
    for s in opened:
        await s.connection.close()  # type: ignore[attr-defined]
    for r in readers:
        r.cancel()
    return before, during, await settled_kib(pid)


async def stepwise_memory(base: str, screens: int, sessions: int) -> tuple[int, int, int]:
    team = {r: await sign_in(base, r) for r in ("nurse", "physician", "pharmacist")}
    ids = [await running_session(team, n) for n in range(sessions)]
    ws = base.replace("http://", "ws://")
    cookie = "; ".join(f"{k}={v}" for k, v in team["nurse"].cookies.items())
    figures = await opened_and_closed(
        SERVER_PIDS[base],
        lambda: open_screens(
            lambda i: (str(ids[i % sessions]), f"{ws}/ws/sessions/{ids[i % sessions]}"),
            screens,
            {"Cookie": cookie},
            base,
        ),
    )
    for client in team.values():
        await client.aclose()
    return figures


async def bare_memory(screens: int) -> tuple[int, int, int]:
    with baseline_server() as url:
        return await opened_and_closed(
            SERVER_PIDS[url], lambda: open_screens(lambda i: ("all", url), screens, {}, None)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=450, help="bedside screens to open")
    parser.add_argument("--sessions", type=int, default=10, help="running sessions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, stepwise_servers(Path(tmp), 1, None) as bases:
        product = asyncio.run(stepwise_memory(bases[0], args.screens, args.sessions))
    bare = asyncio.run(bare_memory(args.screens))
    print(f"memory per open screen: {args.screens} screens over {args.sessions} sessions, SQLite")
    print(f"{'KiB resident':<34}{'before':>9}{'open':>9}{'closed':>9}{'per screen':>12}{'kept':>9}")
    for label, (before, during, after) in (("stepwise", product), ("bare broadcast", bare)):
        per_screen = (during - before) / args.screens
        print(f"{label:<34}{before:>9}{during:>9}{after:>9}{per_screen:>12.1f}{after - before:>9}")


if __name__ == "__main__":
    main()
