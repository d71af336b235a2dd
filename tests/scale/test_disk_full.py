"""A full disk under a real server (SQLite on an 8 MiB tmpfs, filled up by another file while a
session runs): a write is answered 503 "storage full" with Retry-After and changes nothing,
reads go on (a read never writes), readiness says storage full (though its own one-page probe
would still fit) while liveness stays ok, the timer loop does not fill the log with one
traceback per pass, and once space is freed the same write is saved, without a restart."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from app.schema import upgrade
from tests.conftest import create_account
from tests.scale.test_multi_process import OK, prepared_session, start
from tests.support import SignedInClient

SIZE = "8m"


@contextlib.contextmanager
def small_volume(where: Path) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a small volume: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a small volume here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(volume: Path) -> Path:
    """Write a file until the volume has no room left."""
    filler = volume / "filler"
    with filler.open("wb") as sink, contextlib.suppress(OSError):
        while True:
            sink.write(b"\0" * 65536)
            sink.flush()
            os.fsync(sink.fileno())
    return filler


def test_a_full_disk_answers_503_keeps_reads_and_recovers_when_space_is_freed(
    tmp_path: Path,
) -> None:
    with small_volume(tmp_path / "volume") as volume:
        url = f"sqlite+aiosqlite:///{volume / 'stepwise.db'}"
        upgrade(url)
        accounts = {
            role: create_account(url, role) for role in ("nurse", "physician", "pharmacist")
        }
        log = tmp_path / "server.log"
        with log.open("w") as sink:
            # A training clock: step 1's 15 minutes last 15 s, so it comes due on the full disk.
            process = start(
                "full", url, stderr=sink, STEPWISE_LOG_LEVEL="info", STEPWISE_CLOCK_SPEED="60"
            )
        team = {role: SignedInClient(process.base, accounts[role]) for role in accounts}
        try:
            sid = prepared_session({"A": team}, "A")
            nurse = team["nurse"]
            filler = fill(volume)
            # The write-ahead log keeps the room it had: writes go on until it is used up.
            for n in range(500):
                before = nurse.get(f"/api/v1/sessions/{sid}").json()
                vitals = {**OK, "heart_rate": 60 + n % 60}
                key = {"Idempotency-Key": f"full-disk-{n}"}
                refused = nurse.post(f"/api/v1/sessions/{sid}/vitals", json=vitals, headers=key)
                if refused.status_code != 200:
                    break
            assert refused.status_code == 503, refused.text
            assert "storage full" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
            # Reads go on, and show that nothing changed.
            after = nurse.get(f"/api/v1/sessions/{sid}").json()
            for unchanged in ("version", "last_event_seq", "vitals", "status"):
                assert after[unchanged] == before[unchanged], unchanged
            assert nurse.get("/").status_code == 200
            ready = httpx.get(process.base + "/readyz", timeout=15)
            assert ready.status_code == 503 and "storage full" in ready.json()["checks"]["storage"]
            assert httpx.get(process.base + "/healthz", timeout=15).status_code == 200
            # The step comes due on the full disk: the timer loop fails pass after pass (it
            # cannot record the firing) and says so once.
            due = datetime.fromisoformat(before["deadline"])
            clock = datetime.fromisoformat(nurse.get("/api/v1/clock").json()["now"])
            time.sleep(max(0.0, (due - clock).total_seconds() / 60) + 2)
            assert nurse.get(f"/api/v1/sessions/{sid}").json()["status"] == "running"

            filler.unlink()  # room again
            saved = nurse.post(f"/api/v1/sessions/{sid}/vitals", json=vitals, headers=key)
            assert saved.status_code == 200, saved.text
            assert saved.json()["last_event_seq"] > before["last_event_seq"]
            for _ in range(50):  # and the step that came due meanwhile fires now
                if nurse.get(f"/api/v1/sessions/{sid}").json()["status"] == "step_due":
                    break
                time.sleep(0.1)
            assert nurse.get(f"/api/v1/sessions/{sid}").json()["status"] == "step_due"
        finally:
            for client in team.values():
                client.close()
            process.popen.terminate()
            process.popen.wait(20)
        said = log.read_text()
        assert said.count("timer loop pass failed; retrying") == 1, said[-3000:]
        assert said.count("timer loop pass works again") == 1, said[-3000:]
        assert said.count("Traceback") <= 2, said[-3000:]
