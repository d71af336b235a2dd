"""Several app processes on one PostgreSQL database, as real uvicorn subprocesses: a change
committed through one reaches screens on another; a LISTEN connection cut by the database is
noticed and its screens catch up; a process killed with SIGKILL while 50 sessions run whole
protocols loses nothing and its timers are fired by the others, every step exactly once; and
processes whose machine clocks are minutes off fire steps on the database's time."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx
import pytest
import websockets
from sqlalchemy import text

from app.db import create_engine
from tests.scale.ward import Front, Ward
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


def libfaketime() -> str:
    """The preloaded library that sets a process's clock wrong on purpose (Debian: faketime)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("libfaketime is missing: apt-get install faketime")
        pytest.skip("libfaketime is missing: apt-get install faketime")
    return found[0]


def start(
    name: str, database_url: str, skew_seconds: int = 0, *, stderr: IO | None = None, **env: str
) -> Process:
    """A ``stepwise serve`` process; ``skew_seconds`` sets its machine clock that far off;
    ``stderr``: where its log goes (default: the test's own)."""
    port = free_port()
    environment = {
        **os.environ,
        "STEPWISE_DATABASE_URL": database_url,
        "STEPWISE_PORT": str(port),
        "STEPWISE_LOG_LEVEL": "warning",
        "STEPWISE_SESSION_IDLE_MINUTES": "600",
        **env,
    }
    if skew_seconds:
        environment.update(
            LD_PRELOAD=libfaketime(),
            FAKETIME=f"{skew_seconds:+d}s",
            FAKETIME_DONT_FAKE_MONOTONIC="1",  # a wrong wall clock, as on a real machine
        )
    popen = subprocess.Popen([str(STEPWISE), "serve"], env=environment, cwd=ROOT, stderr=stderr)
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
def three_processes(
    database_url: str, skews: dict[str, int] | None = None, **env: str
) -> Iterator[dict[str, Process]]:
    started: dict[str, Process] = {}
    try:
        for name in ("A", "B", "C"):
            skew = (skews or {}).get(name, 0)
            started[name] = start(name, database_url, skew, **env)
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


def prepared_session(
    teams: dict[str, dict[str, SignedInClient]], via: str, start: bool = True
) -> int:
    """A brigham-12 session created through process ``via``, approved, checked, with
    baseline vitals, and started unless ``start`` is False."""
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
        *([("nurse", "start", {})] if start else []),
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
                json={**OK, "heart_rate": 99},
            )
            assert answer.status_code == 200
            for screen in screens.values():
                await until_seen(screen, 'big-number">99<', 5)
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
            for rate in (91, 92, 93):  # committed while the listeners are away
                answer = await asyncio.to_thread(
                    teams["A"]["nurse"].post,
                    f"/api/v1/sessions/{sid}/vitals",
                    json={**OK, "heart_rate": rate},
                )
                versions.append(answer.json()["version"])
            # The health check notices within seconds; the catch-up shows the latest.
            update = await until_seen(screen, 'big-number">93<', 20)
            assert f'data-version="{versions[-1]}"' in update
            # No gap: every change committed while no process listened is on the screen (the
            # table of recent vitals has a row for each heart rate).
            for rate in (91, 92, 93):
                assert f"<td>{rate}</td>" in update, rate
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


def fronts_of(
    processes: dict[str, Process], teams: dict[str, dict[str, SignedInClient]]
) -> list[Front]:
    return [
        Front(
            name,
            p.base,
            {
                "origin": p.base,
                "x-csrf-token": teams[name]["nurse"].csrf_token,
                **cookie(teams[name]["nurse"]),
            },
            lambda p=p: p.popen.poll() is None,
        )
        for name, p in processes.items()
    ]


WARD_SESSIONS = 50
WARD_SPEED = 300  # a 15-minute step lasts 3 s, the 30-minute observation 6 s


def test_fifty_whole_protocols_fire_every_step_exactly_once_through_a_sigkill(
    postgres_url: str, accounts
) -> None:
    """Three processes, 50 sessions through whole brigham-12 protocols at once; process B is
    killed with SIGKILL halfway. Every step timer fires once (counted in the event table),
    nothing B acknowledged is lost, and the survivors finish B's sessions."""
    with three_processes(postgres_url, STEPWISE_CLOCK_SPEED=str(WARD_SPEED)) as processes:
        teams = sign_in_all(processes, accounts)
        try:
            names = list(processes)
            sids = [
                prepared_session(teams, names[i % 3], start=False) for i in range(WARD_SESSIONS)
            ]
            steps = len(
                teams["A"]["nurse"].get(f"/api/v1/sessions/{sids[0]}").json()["plan"]["steps"]
            )
            ward_report = run_async(lambda: run_ward(processes, teams, sids, postgres_url))
        finally:
            close_all(teams)
    fired, timers, vitals = run_async(lambda: ward_counts(postgres_url, sids))

    # Exactly once: per session, one step_due per step but the last, one last_step_done,
    # one observation_done; every stored timer fired, none left pending.
    assert fired == {
        sid: {"step_due": steps - 1, "last_step_done": 1, "observation_done": 1} for sid in sids
    }
    assert timers == {("fired", WARD_SESSIONS * (steps + 1))}
    # Nothing acknowledged is lost: every vitals answer is in the record, and nothing else.
    assert vitals == ward_report.acknowledged_vitals
    print(
        f"ward: {WARD_SESSIONS} sessions x {steps} steps = {WARD_SESSIONS * steps} step timers "
        f"fired once each; {ward_report.resent} commands resent after B was killed; "
        f"{sum(len(v) for v in vitals.values())} vitals kept"
    )


async def run_ward(
    processes: dict[str, Process],
    teams: dict[str, dict[str, SignedInClient]],
    sids: list[int],
    database_url: str,
) -> Ward:
    engine = create_engine(database_url)
    names = list(processes)
    ward = Ward(
        engine, fronts_of(processes, teams), {sid: names[i % 3] for i, sid in enumerate(sids)}
    )
    stop = asyncio.Event()
    watcher = asyncio.create_task(ward.watch(stop))
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            nurses = asyncio.gather(*(ward.drive(client, sid) for sid in sids))
            # Halfway through (the mean session past step 6), B dies mid-run.
            while sum(p.current_step or 0 for p in ward.progress.values()) < len(sids) * 6:
                assert not nurses.done() or nurses.exception() is None
                await asyncio.sleep(0.1)
            processes["B"].popen.send_signal(signal.SIGKILL)
            await asyncio.wait_for(nurses, 300)
    finally:
        stop.set()
        await watcher
        await engine.dispose()
    return ward


async def ward_counts(
    database_url: str, sids: list[int]
) -> tuple[dict[int, dict[str, int]], set[tuple[str, int]], dict[int, set[str]]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            fired: dict[int, dict[str, int]] = {sid: {} for sid in sids}
            rows = await conn.execute(
                text(
                    "SELECT session_id, kind, count(*) FROM session_event "
                    "WHERE session_id = ANY(:ids) "
                    "AND kind IN ('step_due', 'last_step_done', 'observation_done') "
                    "GROUP BY session_id, kind"
                ),
                {"ids": sids},
            )
            for sid, kind, count in rows:
                fired[sid][kind] = count
            timers = {
                (status, count)
                for status, count in await conn.execute(
                    text(
                        "SELECT status, count(*) FROM timer "
                        "WHERE kind = 'step' AND session_id = ANY(:ids) GROUP BY status"
                    ),
                    {"ids": sids},
                )
            }
            vitals: dict[int, set[str]] = {}
            for sid, version in await conn.execute(
                text(
                    "SELECT session_id, version FROM session_event "
                    "WHERE session_id = ANY(:ids) AND kind = 'vitals_recorded' AND seq > "
                    # the baseline, before the start, was not the ward's
                    "(SELECT s.seq FROM session_event s "
                    "WHERE s.session_id = session_event.session_id AND s.kind = 'started')"
                ),
                {"ids": sids},
            ):
                vitals.setdefault(sid, set()).add(str(version))
            return fired, timers, vitals
    finally:
        await engine.dispose()


SKEW_SECONDS = 300
SKEW_SPEED = 120


def test_processes_with_clocks_five_minutes_apart_fire_steps_on_the_database_clock(
    postgres_url: str, accounts
) -> None:
    """One process's machine clock runs 5 minutes ahead, another's 5 minutes behind. Both
    run on the database's clock: the one ahead does not fire a step early, and the one behind,
    left alone, does not fire it late."""
    skews = {"A": SKEW_SECONDS, "C": -SKEW_SECONDS}
    with three_processes(postgres_url, skews, STEPWISE_CLOCK_SPEED=str(SKEW_SPEED)) as processes:
        for name, skew in skews.items():
            offset = httpx.get(processes[name].base + "/healthz").json()["clock_offset_ms"]
            assert abs(offset + skew * 1000) < 1000, (name, offset)  # it measured its skew
        processes["B"].popen.terminate()  # only the two skewed processes from here on
        processes["B"].popen.wait(20)
        teams = sign_in_all({n: processes[n] for n in skews}, accounts)
        try:
            sids = [prepared_session(teams, name) for name in ("A", "C")]
            first = run_async(lambda: watch_firing(postgres_url, teams["A"]["nurse"], sids))
            for sid in sids:  # the next step, with only the process that is behind left
                nurse = teams["C"]["nurse"]
                assert nurse.post(f"/api/v1/sessions/{sid}/vitals", json=OK).status_code == 200
                confirmed = nurse.post(f"/api/v1/sessions/{sid}/confirm-step", json={})
                assert confirmed.status_code == 200, confirmed.text
            processes["A"].popen.terminate()
            processes["A"].popen.wait(20)
            second = run_async(lambda: watch_firing(postgres_url, teams["C"]["nurse"], sids))
        finally:
            close_all(teams)
    print(f"skewed clocks: step fired at database time - deadline (s): {first} then {second}")


async def watch_firing(database_url: str, nurse: SignedInClient, sids: list[int]) -> list[float]:
    """Watch the sessions until each step comes due, reading the time from the database's
    clock (as training time: the anchor and speed every process uses). Fail if a step fires
    before its deadline, or more than 3 real seconds after it; return each lateness in
    training seconds."""
    deadlines = {
        sid: datetime.fromisoformat((await asyncio.to_thread(view, nurse, sid))["deadline"])
        for sid in sids
    }
    engine = create_engine(database_url)
    lateness: dict[int, float] = {}
    try:
        async with engine.connect() as conn:
            anchor = await conn.scalar(
                text("SELECT created_at FROM installation ORDER BY id LIMIT 1")
            )
            while len(lateness) < len(sids):
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, status, clock_timestamp() FROM desensitization_session "
                            "WHERE id = ANY(:ids)"
                        ),
                        {"ids": sids},
                    )
                ).all()
                await conn.rollback()
                for sid, status, db_now in rows:
                    if sid in lateness:
                        continue
                    training_now = anchor + (db_now - anchor) * SKEW_SPEED
                    late = (training_now - deadlines[sid]).total_seconds()
                    if status == "step_due":
                        assert late >= 0, f"session {sid}'s step fired {-late:.1f} s early"
                        lateness[sid] = round(late, 1)
                    assert late < 3 * SKEW_SPEED, f"session {sid}'s step is {late:.0f} s late"
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()
    return [lateness[sid] for sid in sids]


def view(nurse: SignedInClient, sid: int) -> dict:
    answer = nurse.get(f"/api/v1/sessions/{sid}")
    assert answer.status_code == 200, answer.text
    return answer.json()
