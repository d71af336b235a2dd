"""Database bytes per completed session, by table, and what its snapshots would take kept whole.

Runs the real app in this process (its lifespan, a fresh SQLite file, the demo accounts, a
manual clock moved by the bench, its timer loop firing the steps), runs a 12-step session to
completion with vitals recorded in every step, then a second session with many vitals sets,
and measures the SQLite file by table (dbstat, after VACUUM; indexes counted with their table).
The baseline, in the same run: the same snapshots rebuilt whole into a table of the old shape,
measured the same way. The issue that asks for lean snapshots sets the bar at 150 KB of
database per completed 12-step session with vitals every step.

    .venv/bin/python bench/storage.py                 # one completed session, 500 vitals sets
    .venv/bin/python bench/storage.py --sets 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fanout import BIN, OK_VITALS, ROOT, checked, running_session, sign_in

TARGET_KB = 150
WAIT_S = 10.0

BASELINE_TABLE = """CREATE TABLE baseline_snapshot (
    session_id INTEGER NOT NULL, seq INTEGER NOT NULL, at DATETIME NOT NULL,
    version INTEGER NOT NULL, state_json TEXT NOT NULL, alarms_json TEXT NOT NULL,
    thresholds_json TEXT NOT NULL, vitals_upto INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq))"""


async def _view(client: httpx.AsyncClient, sid: int) -> dict:
    answer = await client.get(f"/api/v1/sessions/{sid}")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _post(client: httpx.AsyncClient, sid: int, command: str, body: dict) -> dict:
    answer = await client.post(f"/api/v1/sessions/{sid}/{command}", json=body)
    assert answer.status_code == 200, (command, answer.text)
    return answer.json()


async def _until(client: httpx.AsyncClient, sid: int, done) -> dict:
    """The session's view once the timer loop has done what the clock made due."""
    deadline = time.monotonic() + WAIT_S
    while True:
        view = await _view(client, sid)
        if done(view) or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.02)


async def complete_session(app, team: dict[str, httpx.AsyncClient]) -> int:
    """A 12-step session run to completion, vitals recorded in every step (as a nurse does)."""
    clock = app.state.clock
    nurse = team["nurse"]
    sid = await running_session(team, 0)
    view = await _view(nurse, sid)
    while view["status"] in ("running", "step_due"):
        if view["status"] == "running":
            clock.advance(timedelta(minutes=5))
            await _post(nurse, sid, "vitals", {**OK_VITALS, "heart_rate": 72})
            view = await _view(nurse, sid)
            gap = datetime.fromisoformat(view["deadline"]) - clock.now()
            if gap > timedelta(0):
                clock.advance(gap)
            view = await _until(nurse, sid, lambda v: v["status"] != "running")
        if view["status"] == "step_due":
            clock.advance(timedelta(minutes=1))
            checks = await checked(team, sid)  # a new bag is scanned, its rate co-signed
            view = await _post(nurse, sid, "confirm-step", checks)
    assert view["status"] == "observing", view["status"]
    clock.advance(timedelta(minutes=10))
    await _post(nurse, sid, "vitals", {**OK_VITALS, "heart_rate": 72})
    clock.advance(timedelta(minutes=25))
    await _until(nurse, sid, lambda v: v["observation_done"])
    view = await _post(nurse, sid, "complete", {})
    assert view["status"] == "completed", view["status"]
    return sid


async def long_session(app, team: dict[str, httpx.AsyncClient], sets: int) -> int:
    sid = await running_session(team, 1)
    for n in range(sets):
        await _post(team["nurse"], sid, "vitals", {**OK_VITALS, "heart_rate": 60 + n % 38})
    return sid


async def drive(scenario, *args: int) -> int:
    from app.config import get_settings
    from app.main import create_app

    get_settings.cache_clear()  # each scenario its own database file
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        team = {}
        for role in ("nurse", "physician", "pharmacist"):
            team[role] = await sign_in("http://bench", role, transport=transport)
        sid = await scenario(app, team, *args)
        for client in team.values():
            await client.aclose()
    return sid


def _bytes_by_table(db: sqlite3.Connection) -> dict[str, int]:
    """Bytes of each table with its indexes, as the file holds them after a VACUUM."""
    db.execute("VACUUM")
    owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master"))
    sizes: dict[str, int] = {}
    for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        sizes[table] = sizes.get(table, 0) + size
    return sizes


def _rebuild_baseline(db: sqlite3.Connection) -> None:
    """The snapshots as the old code kept them: every one whole."""
    from app.session.snapshot_delta import Parts, Stored, rebuild

    db.execute(BASELINE_TABLE)
    sessions = [r[0] for r in db.execute("SELECT DISTINCT session_id FROM session_snapshot")]
    for sid in sessions:
        rows = list(
            db.execute(
                "SELECT seq, kind, base_seq, state_json, alarms_json, thresholds_json, at,"
                " version, vitals_upto FROM session_snapshot WHERE session_id = ? ORDER BY seq",
                (sid,),
            )
        )
        whole = rebuild(Stored(r[0], r[1], r[2], Parts(r[3], r[4], r[5])) for r in rows)
        db.executemany(
            "INSERT INTO baseline_snapshot VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (sid, seq, r[6], r[7], p.state, p.alarms, p.thresholds, r[8])
                for r, (seq, p) in zip(rows, whole, strict=True)
            ],
        )
    db.commit()


def fresh(path: Path) -> dict[str, int]:
    """A migrated database with the demo accounts; its bytes by table."""
    os.environ["STEPWISE_DATABASE_URL"] = f"sqlite+aiosqlite:///{path}"
    stepwise = str(BIN / "stepwise")
    for command in (["db", "upgrade"], ["user", "seed-demo"]):
        subprocess.run([stepwise, *command], check=True, capture_output=True, cwd=ROOT)
    copy = path.with_name(f"empty-{path.name}")
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as db:
        source.backup(db)
    with sqlite3.connect(copy) as db:
        db.execute(BASELINE_TABLE)
        return _bytes_by_table(db)


def measure(path: Path, empty: dict[str, int]) -> tuple[dict[str, int], int, int, str]:
    """Bytes by table the session added to the file, its snapshots kept whole, its vitals."""
    with sqlite3.connect(path) as db:
        _rebuild_baseline(db)
        sizes = _bytes_by_table(db)
        (sets,) = db.execute("SELECT count(*) FROM vitals_set").fetchone()
        texts = "length(state_json) + length(alarms_json) + length(thresholds_json)"
        kept = db.execute(
            f"SELECT count(*), sum(kind = 'full'), sum({texts}) FROM session_snapshot"
        ).fetchone()
        (whole,) = db.execute(f"SELECT sum({texts}) FROM baseline_snapshot").fetchone()
    rows = (
        f"  {kept[0]} snapshots, {kept[1]} of them full: {kept[2] / 1024:.1f} KB of JSON text;"
        f" kept whole {whole / 1024:.1f} KB"
    )
    grown = {t: size - empty.get(t, 0) for t, size in sizes.items()}
    baseline = grown.pop("baseline_snapshot")
    return {t: size for t, size in grown.items() if size > 0}, baseline, sets, rows


def report(label: str, grown: dict[str, int], baseline: int, sets: int, rows: str) -> None:
    total = sum(grown.values())
    snapshots = grown.get("session_snapshot", 0)
    before = total - snapshots + baseline
    print(f"\n{label}")
    for table, size in sorted(grown.items(), key=lambda item: -item[1]):
        print(f"  {table:<28}{size / 1024:>9.1f} KB")
    print(f"  {'total':<28}{total / 1024:>9.1f} KB   ({sets} vitals sets)")
    print(
        f"  snapshots {snapshots / 1024:.1f} KB, kept whole (baseline) {baseline / 1024:.1f} KB;"
        f" the session's database {total / 1024:.1f} KB, with whole snapshots"
        f" {before / 1024:.1f} KB"
    )
    print(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=500, help="vitals sets of the long session")
    args = parser.parse_args()
    os.environ["STEPWISE_CLOCK_MODE"] = "manual"
    # The session spans hours of clock time: nobody is signed out for idling meanwhile.
    os.environ["STEPWISE_SESSION_IDLE_MINUTES"] = str(24 * 60)
    os.environ["STEPWISE_SESSION_ABSOLUTE_HOURS"] = str(7 * 24)
    os.environ.setdefault("STEPWISE_LOG_LEVEL", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        print("database bytes by table, SQLite, after VACUUM (indexes with their table)")
        path = Path(tmp) / "completed.db"
        empty = fresh(path)
        asyncio.run(drive(complete_session))
        grown, baseline, sets, rows = measure(path, empty)
        report("one completed 12-step session, vitals every step", grown, baseline, sets, rows)
        print(f"  target {TARGET_KB} KB per completed session")
        path = Path(tmp) / "long.db"
        empty = fresh(path)
        asyncio.run(drive(long_session, args.sets))
        grown, baseline, sets, rows = measure(path, empty)
        report(f"one running session, {args.sets} vitals posts", grown, baseline, sets, rows)


if __name__ == "__main__":
    main()
