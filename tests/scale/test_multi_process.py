"""Several app processes on one PostgreSQL database, as real uvicorn subprocesses: a change
committed through one reaches screens on another; a LISTEN connection cut by the database is
noticed and its screens catch up; a process killed with SIGKILL loses nothing and its timers
are fired by the others, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import text

from app.db import create_engine
from tests.session.conftest import new_patient
from tests.support import SignedInClient, run_async

ROOT = Path(__file__).resolve().parents[2]
STEPWISE = Path(sys.executable).parent / "stepwise"
OK = {"systolic_bp": 124, "diastolic_bp": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share one truth on PostgreSQL only")
    return database_url


@dataclass
class Process:
    name: str
    base: str
    popen: subprocess.Popen

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, database_url: str, **env: str) -> Process:
    port = free_port()
    environment = {
        **os.environ,
        "STEPWISE_DATABASE_URL": database_url,
        "STEPWISE_PORT": str(port),
        "STEPWISE_LOG_LEVEL": "warning",
        "STEPWISE_SESSION_IDLE_MINUTES": "600",
        **env,
    }
    popen = subprocess.Popen([str(STEPWISE), "serve"], env=environment, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return Process(name, base, popen)
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"process {name} did not start")
        time.sleep(0.2)


@contextlib.contextmanager
def three_processes(database_url: str, **env: str) -> Iterator[dict[str, Process]]:
    started: dict[str, Process] = {}
    try:
        for name in ("A", "B", "C"):
            started[name] = start(name, database_url, **env)
        yield started
    finally:
        for process in started.values():
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(20)


@pytest.fixture
def processes(postgres_url: str) -> Iterator[dict[str, Process]]:
    with three_processes(postgres_url) as started:
        yield started


@pytest.fixture
def fast_processes(postgres_url: str) -> Iterator[dict[str, Process]]:
    """A training clock at 120x: a 15-minute step lasts 7.5 s. Every process reads the same
    anchor from the database, so they agree on the time."""
    with three_processes(postgres_url, STEPWISE_CLOCK_SPEED="120") as started:
        yield started


def cookie(client: SignedInClient) -> dict[str, str]:
    return {"Cookie": f"stepwise_session={client.cookies['stepwise_session']}"}


async def until_seen(socket, needle: str, within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen within {within} s")
        message = await asyncio.wait_for(socket.recv(), left)
        if needle in message:
            return message


def prepared_session(teams: dict[str, dict[str, SignedInClient]], via: str) -> int:
    team = teams[via]
    nurse = team["nurse"]
    body = {
        "patient_id": new_patient(nurse),
        "drug": "ceftazidime",
        "protocol": {"template": "brigham-12", "dose": "2000", "unit": "mg"},
        "index_reaction": {"reactions": ["urticaria"]},
    }
    created = nurse.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    for role, command, payload in (
        ("physician", "approve", {}),
        ("pharmacist", "verify-bags", {}),
        ("nurse", "checklist", {"item": "consent"}),
        ("nurse", "checklist", {"item": "rescue_kit"}),
        ("nurse", "checklist", {"item": "premedications", "none_reason": "none"}),
        ("nurse", "vitals", OK),
        ("nurse", "start", {}),
    ):
        answer = team[role].post(f"/api/v1/sessions/{sid}/{command}", json=payload)
        assert answer.status_code == 200, answer.text
    return sid


def sign_in_all(processes: dict[str, Process], accounts) -> dict[str, dict[str, SignedInClient]]:
    return {
        name: {
            role: SignedInClient(p.base, accounts[role])
            for role in ("nurse", "physician", "pharmacist")
        }
        for name, p in processes.items()
    }


def close_all(teams: dict[str, dict[str, SignedInClient]]) -> None:
    for team in teams.values():
        for client in team.values():
            client.close()


def test_a_change_through_one_process_reaches_screens_on_the_others(
    processes: dict[str, Process], accounts
) -> None:
    teams = sign_in_all(processes, accounts)
    try:
        sid = prepared_session(teams, "A")

        async def run() -> None:
            screens = {
                name: await websockets.connect(
                    f"{processes[name].ws}/ws/sessions/{sid}",
                    origin=processes[name].base,
                    additional_headers=cookie(teams[name]["nurse"]),
                )
                for name in ("B", "C")
            }
            for screen in screens.values():
                await until_seen(screen, 'id="status-panel"', 5)
            started = time.monotonic()
            answer = await asyncio.to_thread(
                teams["A"]["nurse"].post,
                f"/api/v1/sessions/{sid}/vitals",
                json={**OK, "heart_rate": 131},
            )
            assert answer.status_code == 200
            for screen in screens.values():
                await until_seen(screen, 'big-number">131<', 5)
            assert time.monotonic() - started < 2
            for screen in screens.values():
                await screen.close()

        asyncio.run(run())
    finally:
        close_all(teams)


def listen_backends(database_url: str, processes: dict[str, Process]) -> list[int]:
    """The LISTEN connections of these processes (others may share the test database)."""
    names = [f"stepwise-listen {p.popen.pid}" for p in processes.values()]

    async def read() -> list[int]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = ANY(:names)"),
                    {"names": names},
                )
                return [r[0] for r in rows]
        finally:
            await engine.dispose()

    return run_async(read)


def terminate(database_url: str, pids: list[int]) -> None:
    async def kill() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                for pid in pids:
                    await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await conn.commit()
        finally:
            await engine.dispose()

    run_async(kill)


def test_a_cut_listen_connection_is_noticed_and_its_screens_catch_up(
    processes: dict[str, Process], accounts, postgres_url: str
) -> None:
    teams = sign_in_all(processes, accounts)
    try:
        sid = prepared_session(teams, "A")
        before = listen_backends(postgres_url, processes)
        assert len(before) == 3  # one LISTEN connection per process

        async def run() -> None:
            screen = await websockets.connect(
                f"{processes['C'].ws}/ws/sessions/{sid}",
                origin=processes["C"].base,
                additional_headers=cookie(teams["C"]["nurse"]),
            )
            await until_seen(screen, 'id="status-panel"', 5)
            await asyncio.to_thread(terminate, postgres_url, before)  # every LISTEN is cut
            versions = []
            for rate in (141, 142, 143):  # committed while the listeners are away
                answer = await asyncio.to_thread(
                    teams["A"]["nurse"].post,
                    f"/api/v1/sessions/{sid}/vitals",
                    json={**OK, "heart_rate": rate},
                )
                versions.append(answer.json()["version"])
            # The health check notices within seconds; the catch-up shows the latest.
            update = await until_seen(screen, 'big-number">143<', 20)
            assert f'data-version="{versions[-1]}"' in update
            await screen.close()

        asyncio.run(run())
        deadline = time.monotonic() + 20
        while True:
            after = listen_backends(postgres_url, processes)
            if len(after) == 3 and not set(after) & set(before):
                break  # every process listens again, on new connections
            assert time.monotonic() < deadline, (before, after)
            time.sleep(0.2)
    finally:
        close_all(teams)


def test_a_killed_process_loses_nothing_and_the_others_fire_its_timers_once(
    fast_processes: dict[str, Process], accounts, postgres_url: str
) -> None:
    processes = fast_processes
    teams = sign_in_all(processes, accounts)
    try:
        sids = [prepared_session(teams, name) for name in ("A", "B", "C") for _ in range(3)]
        acknowledged = teams["B"]["nurse"].post(
            f"/api/v1/sessions/{sids[0]}/vitals", json={**OK, "heart_rate": 99}
        )
        assert acknowledged.status_code == 200
        processes["B"].popen.send_signal(signal.SIGKILL)
        processes["B"].popen.wait(10)

        # Nothing acknowledged by B is lost.
        view = teams["A"]["nurse"].get(f"/api/v1/sessions/{sids[0]}").json()
        assert any(v["values"]["heart_rate"]["value"] == "99" for v in view["vitals"])

        # The survivors' timer loops fire every step timer when it comes due, B's too.
        deadline = time.monotonic() + 30
        while True:
            states = [
                teams["C"]["nurse"].get(f"/api/v1/sessions/{sid}").json()["status"] for sid in sids
            ]
            if all(s == "step_due" for s in states):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.2)

        async def counts() -> list[tuple[int, int]]:
            engine = create_engine(postgres_url)
            try:
                async with engine.connect() as conn:
                    rows = await conn.execute(
                        text(
                            "SELECT session_id, count(*) FROM session_event "
                            "WHERE kind = 'step_due' AND session_id = ANY(:ids) "
                            "GROUP BY session_id"
                        ),
                        {"ids": sids},
                    )
                    return [tuple(r) for r in rows]
            finally:
                await engine.dispose()

        fired = dict(run_async(counts))
        assert fired == {sid: 1 for sid in sids}  # each step fired once, none twice
    finally:
        close_all(teams)
