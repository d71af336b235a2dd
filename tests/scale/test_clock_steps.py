"""A real server process whose machine clock is stepped a minute forward, then a minute back,
while a session runs (libfaketime, the monotonic clock left alone as on a real machine): the
session's time keeps to real time, a reading taken after each step is stamped within a
second or two of when it was taken, the running step keeps its deadline and does not fire,
and the server says what it is slewing away (SQLite: it steers towards the machine's clock,
a tenth of a percent at a time)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.scale.test_multi_process import OK, Process, libfaketime, prepared_session, start
from tests.support import SignedInClient

STEP_SECONDS = 60


def step_clock(control: Path, seconds: int) -> None:
    control.write_text(f"{seconds:+d}s\n")
    time.sleep(1.5)  # every wall-clock read of the server now sees it


def recorded_at(nurse: SignedInClient, sid: int) -> datetime:
    """Vitals taken now: the time the server stamps them with."""
    answer = nurse.post(f"/api/v1/sessions/{sid}/vitals", json=OK)
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["vitals"][-1]["recorded_at"])


def test_a_minute_step_of_the_machine_clock_either_way_moves_no_session_time(
    database_url: str, accounts, tmp_path: Path
) -> None:
    control = tmp_path / "faketime"
    control.write_text("+0s\n")
    process: Process = start(
        "stepped",
        database_url,
        LD_PRELOAD=libfaketime(),
        FAKETIME_TIMESTAMP_FILE=str(control),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",  # a wrong wall clock, as on a real machine
    )
    team = {role: SignedInClient(process.base, accounts[role]) for role in accounts}
    try:
        sid = prepared_session({"A": team}, "A")
        running = team["nurse"].get(f"/api/v1/sessions/{sid}").json()
        assert running["status"] == "running"
        before = recorded_at(team["nurse"], sid)

        step_clock(control, STEP_SECONDS)
        forward = recorded_at(team["nurse"], sid)
        assert abs(forward - datetime.now(UTC)) < timedelta(seconds=2), forward

        step_clock(control, -STEP_SECONDS)
        back = recorded_at(team["nurse"], sid)
        assert abs(back - datetime.now(UTC)) < timedelta(seconds=2), back
        assert before < forward < back  # and it never ran back, nor stood still

        now = team["nurse"].get(f"/api/v1/sessions/{sid}").json()
        assert (now["status"], now["deadline"]) == ("running", running["deadline"])
        health = team["nurse"].get("/healthz").json()
        if database_url.startswith("sqlite"):
            # The machine's clock is a minute behind: being slewed away, not jumped to.
            assert health["clock_slewing_ms"] < -(STEP_SECONDS - 5) * 1000, health
        else:  # on the database's clock: the machine's own moves nothing
            assert abs(health["clock_slewing_ms"]) < 1000, health
    finally:
        for client in team.values():
            client.close()
        process.popen.terminate()
        process.popen.wait(20)
