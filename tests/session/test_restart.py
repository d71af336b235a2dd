"""Kill the server with SIGKILL while a step timer is pending; after a restart the timer fires
exactly once, late, and the session is intact."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db import create_engine, session_factory
from app.schema import upgrade
from app.session.models import SessionEvent, Timer
from tests.session.conftest import new_patient, session_body, wait_for
from tests.session.test_api_walk import OK_VITALS
from tests.support import SignedInClient, create_account, run_async

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Steps are at least a minute (app.protocol.engine): on a clock 20 times faster, 3 s of wall time.
STEP_MINUTES = "1"
CLOCK_SPEED = "20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, database_url: str, port: int, log: Path) -> None:
        self.database_url, self.port, self.log = database_url, port, log
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
        env.update(
            STEPWISE_DATABASE_URL=self.database_url,
            STEPWISE_ENV="test",
            STEPWISE_LOG_LEVEL="warning",
            STEPWISE_CLOCK_MODE="accelerated",
            STEPWISE_CLOCK_SPEED=CLOCK_SPEED,
        )
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    upgrade(url)
    process = ServerProcess(url, free_port(), tmp_path / "server.log")
    yield process
    process.stop()


def test_a_pending_timer_survives_sigkill_and_fires_once(server: ServerProcess) -> None:
    accounts = {
        role: create_account(server.database_url, role)
        for role in ("nurse", "physician", "pharmacist")
    }
    server.start()
    team = {role: SignedInClient(server.base_url, account) for role, account in accounts.items()}
    nurse = team["nurse"]
    sid = nurse.post(
        "/api/v1/sessions", json=session_body(new_patient(nurse), step_minutes=STEP_MINUTES)
    ).json()["id"]
    path = f"/api/v1/sessions/{sid}"
    assert team["physician"].post(f"{path}/approve", json={}).status_code == 200
    assert team["pharmacist"].post(f"{path}/verify-bags", json={}).status_code == 200
    for item in (
        {"item": "consent"},
        {"item": "rescue_kit"},
        {"item": "premedications", "none_reason": "none ordered"},
    ):
        assert nurse.post(f"{path}/checklist", json=item).status_code == 200
    assert nurse.post(f"{path}/vitals", json=OK_VITALS).status_code == 200
    # The server runs as installed: the wristband and bag 1's label are scanned first.
    mrn = nurse.get(f"/api/v1/patients/{nurse.get(path).json()['patient_id']}").json()["mrn"]
    bag_1 = nurse.get(f"{path}/labels").json()["labels"][0]
    for kind, code in (("wristband", mrn), ("bag", bag_1["code"])):
        scanned = nurse.post(f"{path}/scans", json={"kind": kind, "code": code})
        assert scanned.status_code == 200, scanned.text
    started = nurse.post(f"{path}/start", json={}).json()
    assert started["status"] == "running"

    server.kill()  # mid-step: the timer is pending in the database, not in any memory
    time.sleep(4)  # the deadline passes while nobody is running
    server.start()

    view = wait_for(lambda: nurse.get(path).json(), lambda v: v["status"] == "step_due")
    assert view["version"] == started["version"] + 1
    assert view["segments"][0]["started_at"] == started["segments"][0]["started_at"]

    async def stored() -> tuple[list[SessionEvent], list[Timer]]:
        engine = create_engine(server.database_url)
        try:
            async with session_factory(engine)() as db:
                events = list(
                    await db.scalars(
                        select(SessionEvent)
                        .where(SessionEvent.session_id == sid)
                        .order_by(SessionEvent.seq)
                    )
                )
                timers = list(
                    await db.scalars(
                        select(Timer).where(Timer.session_id == sid, Timer.kind == "step")
                    )
                )
                return events, timers
        finally:
            await engine.dispose()

    time.sleep(1)  # a second pass of the loop must not fire it again
    events, timers = run_async(stored)
    due = [e for e in events if e.kind == "step_due"]
    assert len(due) == 1

    data = json.loads(due[0].data_json)
    assert data["late_seconds"] >= 1  # the event records how late it was
    assert [t.status for t in timers] == ["fired"]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for client in team.values():
        client.close()
