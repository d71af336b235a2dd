"""Fan-out benchmark: vitals saved on one tablet -> the fragment on every open screen.

Starts the real server (a subprocess on a fresh SQLite file), signs in, opens N websocket
screens spread over S running sessions (bedside views) and the board, posts vitals M times and
measures, for every screen that shows the change, the time from the start of the POST to the
arrival of the fragment carrying it. In the same run it measures a bare-bones baseline: a
minimal websocket server (a subprocess too) that broadcasts a message of the same size to the
same number of clients when told to. Prints p50/p95/p99/max of both and their ratio.

    .venv/bin/python bench/fanout.py                 # 500 screens, 10 sessions, 30 posts
    .venv/bin/python bench/fanout.py --screens 100 --posts 10
    .venv/bin/python bench/fanout.py --roles nurse,physician     # screens of two roles
    .venv/bin/python bench/fanout.py --growth         # how each cost grows (several minutes)
    .venv/bin/python bench/fanout.py --processes 3 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

With --processes N (PostgreSQL), N servers share a fresh database; the run measures screens on
the first process only (the single-process figure) and then screens spread over all N with
the vitals still posted to the first (the cross-process figure), beside the same baseline.

product-spec §10 sets the bar: p99 <= 50 ms with 500 screens on a 2-core machine, and within
1.5x of the bare broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OK_VITALS = {
    "systolic_bp": 124,
    "diastolic_bp": 78,
    "spo2": 98,
    "respiratory_rate": 14,
    "temperature_c": "36.8",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> tuple[float, float, float, float]:
    return (
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        max(values),
    )


# --- the servers -------------------------------------------------------------------------------


# Base URL -> process id of each server a bench started (for its memory, /proc/PID/status).
SERVER_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def stepwise_servers(
    workdir: Path, count: int, database_url: str | None, extra_env: dict[str, str] | None = None
):
    """`count` server processes on one database: a fresh SQLite file, or a fresh PostgreSQL
    database made on the server `database_url` names (dropped afterwards)."""
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres(database_url))
            if database_url
            else f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        )
        env = {
            **os.environ,
            "STEPWISE_DATABASE_URL": url,
            "STEPWISE_LOG_LEVEL": "warning",
            "STEPWISE_SESSION_IDLE_MINUTES": "600",
            # A bench screen reads as fast as it can; give it the room a slow ward network would.
            "STEPWISE_LIVE_QUEUE_SIZE": "1000",
            **(extra_env or {}),
        }
        stepwise = str(BIN / "stepwise")
        for args in (["db", "upgrade"], ["user", "seed-demo"]):
            subprocess.run([stepwise, *args], env=env, check=True, capture_output=True, cwd=ROOT)
        processes, bases = [], []
        try:
            for _ in range(count):
                port = free_port()
                processes.append(
                    subprocess.Popen(
                        [stepwise, "serve"], env={**env, "STEPWISE_PORT": str(port)}, cwd=ROOT
                    )
                )
                bases.append(f"http://127.0.0.1:{port}")
                SERVER_PIDS[bases[-1]] = processes[-1].pid
            for base in bases:
                wait_for_http(base + "/healthz")
            yield bases
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(20)


@contextlib.contextmanager
def fresh_postgres(server_url: str):
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(server_url)
    name = f"stepwise_bench_{secrets.token_hex(4)}"
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def baseline_server(script: str = __file__):
    """Run ``script --baseline-server PORT`` (this file's bare broadcast, or another bench's
    own baseline) as a subprocess; yield its websocket URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, script, "--baseline-server", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the baseline server did not start")
            time.sleep(0.1)
        SERVER_PIDS[f"ws://127.0.0.1:{port}"] = process.pid
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


def wait_for_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.2)


async def run_baseline_server(port: int) -> None:
    """A bare broadcast: a message "go <size> <marker>" from any client makes the server send a
    message of that size, carrying the marker, to every other connected client."""
    clients: set = set()

    async def handler(connection) -> None:
        clients.add(connection)
        try:
            async for message in connection:
                _, size, marker = str(message).split(" ", 2)
                payload = marker + "x" * max(0, int(size) - len(marker))
                websockets.broadcast([c for c in clients if c is not connection], payload)
        finally:
            clients.discard(connection)

    async with websockets.serve(handler, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


# --- the clients --------------------------------------------------------------------------


async def sign_in(
    base: str, role: str, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=base, headers={"origin": base}, timeout=30, transport=transport
    )
    page = await client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token, "no login form"
    answer = await client.post(
        "/login",
        data={
            "username": role,
            "password": f"{role}-demo-pass",
            "login_token": token.group(1),
            "next": "/",
        },
    )
    assert answer.status_code == 303, answer.text
    home = await client.get("/")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert csrf, "no CSRF token"
    client.headers["x-csrf-token"] = csrf.group(1)
    return client


async def call(client: httpx.AsyncClient, path: str, body: dict) -> dict:
    answer = await client.post(path, json=body)
    assert answer.status_code < 300, (path, answer.status_code, answer.text)
    return answer.json()


BRIGHAM_12 = {"template": "brigham-12", "dose": "500", "unit": "mg"}


async def checked(team: dict[str, httpx.AsyncClient], sid: int) -> dict:
    """The checks the coming pump start needs, done as at the bedside: the wristband and the
    due bag's label scanned; the body that carries the second clinician's co-signature."""
    nurse = team["nurse"]
    path = f"/api/v1/sessions/{sid}"
    view = (await nurse.get(path)).json()
    checks = view["checks"]
    if checks["wristband_due"]:
        mrn = (await nurse.get(f"/api/v1/patients/{view['patient_id']}")).json()["mrn"]
        await call(nurse, f"{path}/scans", {"kind": "wristband", "code": mrn})
    if checks["bag_due"] is not None:
        labels = (await nurse.get(f"{path}/labels")).json()["labels"]
        code = next(label["code"] for label in labels if label["bag"] == checks["bag_due"])
        await call(nurse, f"{path}/scans", {"kind": "bag", "code": code})
    if not checks["double_check_due"]:
        return {}
    return {"cosigner_username": "physician", "cosigner_password": "physician-demo-pass"}


async def running_session(
    team: dict[str, httpx.AsyncClient], n: int, protocol: dict = BRIGHAM_12, start: bool = True
) -> int:
    """A session of ``protocol``, approved, checked and with baseline vitals; started unless
    ``start`` is False."""
    nurse = team["nurse"]
    patient = await call(
        nurse,
        "/api/v1/patients",
        {
            "mrn": f"B{secrets.token_hex(4)}",
            "family_name": f"Bench{n}",
            "given_name": "Pat",
            "birth_date": "1970-01-01",
            "weight_kg": 70,
            "asthma": False,
        },
    )
    session = await call(
        nurse,
        "/api/v1/sessions",
        {
            "patient_id": patient["id"],
            "drug": "carboplatin",
            "protocol": protocol,
            "index_reaction": {"reactions": ["urticaria"]},
        },
    )
    sid = session["id"]
    for role, command, body in (
        ("physician", "approve", {}),
        ("pharmacist", "verify-bags", {}),
        ("nurse", "checklist", {"item": "consent"}),
        ("nurse", "checklist", {"item": "rescue_kit"}),
        ("nurse", "checklist", {"item": "premedications", "none_reason": "bench"}),
        ("nurse", "vitals", {**OK_VITALS, "heart_rate": 70}),
    ):
        await call(team[role], f"/api/v1/sessions/{sid}/{command}", body)
    if start:
        await call(team["nurse"], f"/api/v1/sessions/{sid}/start", await checked(team, sid))
    return sid


@dataclass
class Screen:
    topic: str
    connection: object
    expect: str | None = None
    started: float = 0.0
    latencies: list[float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    sizes: list[int] = field(default_factory=list)

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.connection:  # type: ignore[attr-defined]
                now = time.perf_counter()
                if self.expect is not None and self.expect in message:
                    self.latencies.append((now - self.started) * 1000)
                    self.sizes.append(len(message))
                    self.expect = None
                    self.arrived.set()


async def open_screens(
    url_of, count: int, headers: dict[str, str], origin: str | None
) -> list[Screen]:
    screens = []
    for i in range(count):
        topic, url = url_of(i)
        connection = await websockets.connect(
            url, additional_headers=headers, origin=origin, max_size=None, open_timeout=30
        )
        screens.append(Screen(topic, connection))
    return screens


async def measure_stepwise(
    args, bases: list[str], spread: bool
) -> tuple[list[float], int, str, list[float]]:
    """Screens on every process (`spread`) or on the first only; vitals posted to the first."""
    post_base = bases[0]
    team = {r: await sign_in(post_base, r) for r in ("nurse", "physician", "pharmacist")}
    roles = args.roles.split(",")
    watchers = {(base, role): await sign_in(base, role) for base in bases for role in roles}
    sessions = [await running_session(team, n) for n in range(args.sessions)]
    board_screens = max(1, args.screens // 10)
    screen_bases = bases if spread else bases[:1]

    def url_of(i: int) -> tuple[str, str]:
        ws_base = screen_bases[i % len(screen_bases)].replace("http://", "ws://")
        if i < board_screens:
            return "board", ws_base + "/ws/board"
        sid = sessions[i % len(sessions)]
        return str(sid), f"{ws_base}/ws/sessions/{sid}"

    screens = []
    for i in range(args.screens):
        topic, url = url_of(i)
        base = screen_bases[i % len(screen_bases)]
        client = watchers[base, roles[i % len(roles)]]
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        connection = await websockets.connect(
            url,
            additional_headers={"Cookie": cookie},
            origin=base,
            max_size=None,
            open_timeout=30,
        )
        screens.append(Screen(topic, connection))
    readers = [asyncio.create_task(s.read()) for s in screens]
    await asyncio.sleep(1.0)  # snapshots delivered
    collector_before = await collector_of(team["nurse"])
    # Within every alarm limit and within 40 % of the baseline (70): nothing to confirm.
    heart_rates = (60 + n % 38 for n in range(10**6))
    answered: list[float] = []
    for n in range(args.posts):
        sid = sessions[n % len(sessions)]
        rate = next(heart_rates)
        targets = [s for s in screens if s.topic in (str(sid), "board")]
        started = time.perf_counter()
        for s in targets:
            s.arrived.clear()
            s.started = started
            s.expect = (
                f"<small>HR</small> {rate}<" if s.topic == "board" else f'big-number">{rate}<'
            )
        await call(
            team["nurse"], f"/api/v1/sessions/{sid}/vitals", {**OK_VITALS, "heart_rate": rate}
        )
        answered.append((time.perf_counter() - started) * 1000)
        await asyncio.wait_for(asyncio.gather(*(s.arrived.wait() for s in targets)), 30)
        await asyncio.sleep(args.gap)
    COLLECTOR_RUNS.append((collector_before, await collector_of(team["nurse"])))
    latencies = [x for s in screens for x in s.latencies]
    sizes = [x for s in screens if s.topic != "board" for x in s.sizes]
    for s in screens:
        await s.connection.close()  # type: ignore[attr-defined]
    for r in readers:
        r.cancel()
    for client in [*team.values(), *watchers.values()]:
        await client.aclose()
    per_post = f"{len(latencies) / args.posts:.0f}"
    return latencies, int(statistics.mean(sizes)), per_post, answered


# The posting process's collector (from /healthz) before and after each timed run.
COLLECTOR_RUNS: list[tuple[dict, dict]] = []


async def collector_of(client: httpx.AsyncClient) -> dict:
    answer = await client.get("/healthz")
    return answer.json().get("gc", {}) if answer.status_code == 200 else {}


def collector_line(before: dict, after: dict) -> str:
    """What the collector did during one timed run, from two readings of /healthz."""
    if not before or not after:
        return "collector: not reported by the server"
    runs = [b - a for a, b in zip(before["collections"], after["collections"], strict=True)]
    long_ones = after["pauses_over_20_ms"] - before["pauses_over_20_ms"]
    paused = after["total_pause_ms"] - before["total_pause_ms"]
    longest = after["longest_pause_ms"]
    if longest > before["longest_pause_ms"]:
        worst = f"longest {longest:.1f} ms"
    else:  # the longest was before the run: this run's own longest is at most that
        worst = f"longest <= {before['longest_pause_ms']:.1f} ms (set before the run)"
    return (
        f"collector during the run: {runs} collections by generation, {paused:.1f} ms in all, "
        f"{long_ones} pauses over 20 ms (target 0), {worst}"
    )


async def measure_baseline(args, size: int, per_post_screens: int) -> list[float]:
    with baseline_server() as url:
        control = await websockets.connect(url)
        screens = await open_screens(lambda i: ("all", url), per_post_screens, {}, None)
        readers = [asyncio.create_task(s.read()) for s in screens]
        await asyncio.sleep(0.5)
        for n in range(args.posts):
            marker = f"m{n:06d}"
            started = time.perf_counter()
            for s in screens:
                s.arrived.clear()
                s.started = started
                s.expect = marker
            await control.send(f"go {size} {marker}")
            await asyncio.wait_for(asyncio.gather(*(s.arrived.wait() for s in screens)), 30)
            await asyncio.sleep(args.gap)
        latencies = [x for s in screens for x in s.latencies]
        for s in [*screens]:
            await s.connection.close()  # type: ignore[attr-defined]
        await control.close()
        for r in readers:
            r.cancel()
        return latencies


# How each cost grows, each beside its baseline in the same run: the board with 10 / 50 / 200
# sessions and a 450-screen reconnect storm; the POST and the fragments with 10 / 100 / 500
# vitals sets; database bytes per completed session; memory per open screen.
GROWTH_BENCHES = ("board_growth.py", "history_growth.py", "storage.py", "screen_memory.py")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The options every bench shares: how many servers, on which database; and the hidden one
    that makes the script its own baseline server."""
    parser.add_argument("--processes", type=int, default=1, help="app processes (PostgreSQL)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to run on, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/"
        "postgres (a fresh database is made there and dropped); SQLite by default",
    )
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=500, help="open websocket screens")
    parser.add_argument("--sessions", type=int, default=10, help="running sessions")
    parser.add_argument("--posts", type=int, default=30, help="vitals posts to time")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between posts")
    parser.add_argument(
        "--roles",
        default="physician",
        help="who watches, in turn screen by screen (e.g. nurse,physician: a ward where both "
        "have screens open, so each view is shown to two roles)",
    )
    parser.add_argument(
        "--growth",
        action="store_true",
        help="instead: how each cost grows (the benches in GROWTH_BENCHES, one after another)",
    )
    add_server_options(parser)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(run_baseline_server(args.baseline_server))
        return
    if args.growth:
        for script in GROWTH_BENCHES:
            print(f"\n$ bench/{script}", flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / script)], check=True, cwd=ROOT)
        return
    if args.posts > 200:
        parser.error("at most 200 posts (each uses its own heart rate as a marker)")

    if args.processes > 1 and not args.database_url:
        parser.error("--processes above 1 needs PostgreSQL: give --database-url")
    rows: list[tuple[str, tuple[float, float, float, float]]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        stepwise_servers(Path(tmp), args.processes, args.database_url) as bases,
    ):
        one, size, per_post, answered = asyncio.run(measure_stepwise(args, bases, False))
        rows.append(("stepwise, 1 process: POST -> screens", summary(one)))
        if args.processes > 1:
            spread, _, _, _ = asyncio.run(measure_stepwise(args, bases, True))
            rows.append((f"stepwise, {args.processes} processes", summary(spread)))
    fan = round(len(one) / args.posts)
    baseline = asyncio.run(measure_baseline(args, size, fan))
    bare = summary(baseline)
    board = max(1, args.screens // 10)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"fan-out on {backend}: {args.screens} screens ({args.screens - board} bedside views "
        f"over {args.sessions} sessions, {board} boards), {args.posts} vitals posts; each post "
        f"reaches {per_post} screens; fragment ~{size} bytes; watched by {args.roles}; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'ms':<40}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    for label, figures in rows:
        print(f"{label:<40}" + "".join(f"{v:8.1f}" for v in figures))
    print(f"{'bare broadcast, same size & count':<40}" + "".join(f"{v:8.1f}" for v in bare))
    for label, figures in rows:
        ratio = "".join(f"{a / b:7.1f}x" for a, b in zip(figures, bare, strict=True))
        print(f"{'ratio ' + label.split(':')[0]:<40}" + ratio)
    if len(rows) > 1:
        cross = "".join(f"{a / b:7.1f}x" for a, b in zip(rows[1][1], rows[0][1], strict=True))
        print(f"{'cross-process / single-process':<40}" + cross)
    post = summary(answered)
    print(f"{'(the POST alone: commit + answer)':<40}" + "".join(f"{v:8.1f}" for v in post))
    for before, after in COLLECTOR_RUNS[:1]:  # the posting process, single-process run
        print(collector_line(before, after))


if __name__ == "__main__":
    main()
