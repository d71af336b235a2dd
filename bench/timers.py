"""Timer benchmark: how long after a step's deadline its "step due" reaches the bedside screen.

Starts the real server (or N servers on one PostgreSQL database), runs S sessions at once with
short steps (brigham-12 with 1-minute steps, the shortest a protocol takes, on a training clock
fast enough that a step lasts --step-seconds of wall time), one bedside screen per
session, and the nurse's part done over HTTP: vitals in each step, the pump change confirmed
as soon as it is due. For every step of every session it measures the time from the deadline
the server gave to the arrival of the status panel saying "step due" on that session's screen.

In the same run it measures a bare baseline: a minimal websocket server that, told a deadline,
sleeps until it with asyncio and then sends a message of the same size, to as many clients,
with the same spread of deadlines. Prints p50/p95/p99/max of both and their ratio.

    .venv/bin/python bench/timers.py                       # 100 sessions, 2 steps each
    .venv/bin/python bench/timers.py --processes 3 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

product-spec §10 sets the bar: the step-due update on screens within 200 ms (p99) of the
deadline with 100 sessions running at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import websockets
from fanout import (
    OK_VITALS,
    add_server_options,
    baseline_server,
    call,
    checked,
    running_session,
    sign_in,
    stepwise_servers,
    summary,
)

STEP_DUE = 'class="panel status-panel status-step_due"'


@dataclass(frozen=True)
class ServerClock:
    """The server's training clock read once: its time at a wall instant, and its speed."""

    at: float  # the server clock's epoch seconds …
    wall: float  # … at this wall time
    speed: float

    def wall_of(self, server_time: float) -> float:
        return self.wall + (server_time - self.at) / self.speed


async def server_clock(client: httpx.AsyncClient) -> ServerClock:
    sent = time.time()
    answer = (await client.get("/api/v1/clock")).json()
    wall = (sent + time.time()) / 2
    return ServerClock(datetime.fromisoformat(answer["now"]).timestamp(), wall, answer["speed"])


@dataclass
class Bedside:
    sid: int
    base: str
    team: dict[str, httpx.AsyncClient]
    clock: ServerClock
    deadline: float = 0.0  # wall epoch seconds of the server's deadline
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    latencies: list[float] = field(default_factory=list)
    size: int = 0

    async def read(self, connection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in connection:
                now = time.time()
                if STEP_DUE in message and self.deadline and not self.arrived.is_set():
                    self.latencies.append((now - self.deadline) * 1000)
                    self.size = len(message)
                    self.arrived.set()

    async def command(self, name: str, body: dict) -> dict:
        return await call(self.team["nurse"], f"/api/v1/sessions/{self.sid}/{name}", body)

    def expect(self, view: dict) -> None:
        self.deadline = self.clock.wall_of(datetime.fromisoformat(view["deadline"]).timestamp())
        self.arrived.clear()

    async def run(self, steps: int) -> None:
        """Start, then for each step: vitals, wait for "step due", confirm the pump change."""
        self.expect(await self.command("start", await checked(self.team, self.sid)))
        for step in range(steps):
            await self.command("vitals", {**OK_VITALS, "heart_rate": 70 + step})
            await asyncio.wait_for(self.arrived.wait(), 60)
            if step + 1 < steps:
                body = await checked(self.team, self.sid)
                self.expect(await self.command("confirm-step", body))


async def measure_stepwise(args, bases: list[str]) -> tuple[list[float], int]:
    teams = {
        base: {r: await sign_in(base, r) for r in ("nurse", "physician", "pharmacist")}
        for base in bases
    }
    protocol = {
        "template": "brigham-12",
        "dose": "500",
        "unit": "mg",
        # A step is at least a minute (the protocol's plausible bounds); the servers' clock runs
        # fast enough to make it --step-seconds of wall time.
        "step_minutes": "1",
    }
    clocks = {base: await server_clock(teams[base]["nurse"]) for base in bases}
    bedsides = []
    for n in range(args.sessions):
        base = bases[n % len(bases)]  # each process has its share of screens and nurses
        sid = await running_session(teams[base], n, protocol, start=False)
        bedsides.append(Bedside(sid, base, teams[base], clocks[base]))
    connections, readers = [], []
    for bedside in bedsides:
        nurse = bedside.team["nurse"]
        connection = await websockets.connect(
            f"{bedside.base.replace('http://', 'ws://')}/ws/sessions/{bedside.sid}",
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in nurse.cookies.items())},
            origin=bedside.base,
            max_size=None,
            open_timeout=30,
        )
        connections.append(connection)
        readers.append(asyncio.create_task(bedside.read(connection)))
    await asyncio.sleep(1.0)  # snapshots delivered
    # The sessions start one after another, as fast as the server takes them: their deadlines
    # are spread the way the starts were.
    nurses = []
    for bedside in bedsides:
        nurses.append(asyncio.create_task(bedside.run(args.steps)))
        await asyncio.sleep(args.step_seconds / args.sessions)
    await asyncio.gather(*nurses)
    for connection in connections:
        await connection.close()
    for reader in readers:
        reader.cancel()
    for team in teams.values():
        for client in team.values():
            await client.aclose()
    latencies = [x for b in bedsides for x in b.latencies]
    size = max(b.size for b in bedsides)
    return latencies, size


# --- the baseline ------------------------------------------------------------------------------


async def run_baseline_server(port: int) -> None:
    """A bare timer: "at <epoch> <size>" from a client makes the server sleep until that
    instant and then send that client a message of that size."""

    async def handler(connection) -> None:
        loop = asyncio.get_running_loop()
        async for message in connection:
            _, at, size = str(message).split(" ")
            delay = float(at) - time.time()
            loop.call_later(
                max(0.0, delay),
                lambda size=int(size): asyncio.ensure_future(connection.send("x" * size)),
            )

    async with websockets.serve(handler, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


async def measure_baseline(args, size: int) -> list[float]:
    with baseline_server(__file__) as url:
        latencies: list[float] = []

        async def one(n: int) -> None:
            async with websockets.connect(url, max_size=None) as connection:
                await asyncio.sleep(n * args.step_seconds / args.sessions)
                for _ in range(args.steps):
                    due = time.time() + args.step_seconds
                    await connection.send(f"at {due} {size}")
                    await connection.recv()
                    latencies.append((time.time() - due) * 1000)

        await asyncio.gather(*(one(n) for n in range(args.sessions)))
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100, help="sessions running at once")
    parser.add_argument("--steps", type=int, default=2, help="steps timed in each session")
    # 100 sessions with 30 s steps make about 3 step changes a second, each with its vitals,
    # confirmation and alarm checks: about 30 times a real ward's rate with 15-minute steps.
    parser.add_argument("--step-seconds", type=float, default=30.0, help="length of a step")
    add_server_options(parser)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(run_baseline_server(args.baseline_server))
        return
    if args.processes > 1 and not args.database_url:
        parser.error("--processes above 1 needs PostgreSQL: give --database-url")
    if not 2 <= args.steps <= 11:
        parser.error("--steps: 2 to 11 (brigham-12 has 12 steps; the last ends the infusion)")

    with (
        tempfile.TemporaryDirectory() as tmp,
        stepwise_servers(
            Path(tmp),
            args.processes,
            args.database_url,
            {
                "STEPWISE_CLOCK_MODE": "accelerated",
                "STEPWISE_CLOCK_SPEED": f"{60 / args.step_seconds:g}",
            },
        ) as bases,
    ):
        stepwise, size = asyncio.run(measure_stepwise(args, bases))
    bare = asyncio.run(measure_baseline(args, size))
    backend = "PostgreSQL" if args.database_url else "SQLite"
    mine, theirs = summary(stepwise), summary(bare)
    print(
        f"step due on screens, {backend}, {args.processes} process(es): {args.sessions} "
        f"sessions at once, {args.steps} steps of {args.step_seconds:g} s each "
        f"({len(stepwise)} deadlines); status panel ~{size} bytes; {os.cpu_count()} CPUs"
    )
    print(f"{'ms after the deadline':<32}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    print(f"{'stepwise':<32}" + "".join(f"{v:8.1f}" for v in mine))
    print(f"{'bare timer + send, same run':<32}" + "".join(f"{v:8.1f}" for v in theirs))


if __name__ == "__main__":
    main()
