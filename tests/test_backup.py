"""`stepwise db backup` and `db restore`, run as an operator runs them (the `stepwise` script in a
subprocess) on real databases that a real server filled: the data comes back exactly and its
audit chain verifies; a backup never overwrites, a damaged or too-new backup is refused, and so
is a restore over data without --yes, each changing nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from contextlib import nullcontext
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from app.backup import record_path
from app.db import create_engine
from app.schema import alembic_config, head_revision, upgrade
from tests.conftest import _postgres_database, _sqlite_url, run_server, settings_for
from tests.session.conftest import new_patient, session_body
from tests.support import SignedInClient, create_account, run_async

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STEPWISE = Path(sys.executable).parent / "stepwise"

Rows = dict[str, list[tuple]]


@pytest.fixture
async def fresh_url(empty_database_url: str) -> str:
    """A new database on the backend under test, migrated to head, with nothing in it."""
    await asyncio.to_thread(upgrade, empty_database_url)
    return empty_database_url


def stepwise(
    *args: str, database_url: str, cwd: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `stepwise` script running this checkout's code, configured by environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
    env |= {"PYTHONPATH": str(PROJECT_ROOT), "STEPWISE_DATABASE_URL": database_url}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [str(STEPWISE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def every_row(database_url: str) -> Rows:
    """Every row of every table, in a stable order: what "the data is back exactly" compares."""

    async def read() -> Rows:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda c: inspect(c).get_table_names())
                rows: Rows = {}
                for name in sorted(names):
                    result = await connection.execute(text(f'SELECT * FROM "{name}"'))
                    rows[name] = sorted((tuple(row) for row in result), key=repr)
                return rows
        finally:
            await engine.dispose()

    return run_async(read)


def a_ward(base_url: str, database_url: str) -> tuple[SignedInClient, int]:
    """A nurse signed in on the server, who has registered a patient and drafted a session."""
    nurse = SignedInClient(base_url, create_account(database_url, "nurse"))
    drafted = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse)))
    assert drafted.status_code == 201, drafted.text
    return nurse, drafted.json()["id"]


def test_a_restore_brings_back_exactly_what_was_backed_up(fresh_url: str, tmp_path: Path) -> None:
    backup = tmp_path / "ward.backup"
    with run_server(settings_for(fresh_url)) as base_url:
        nurse, sid = a_ward(base_url, fresh_url)
        physician = SignedInClient(base_url, create_account(fresh_url, "physician"))
        assert physician.post(f"/api/v1/sessions/{sid}/approve", json={}).status_code == 200
        backed_up = every_row(fresh_url)

        # Online: the server is running.
        made = stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path)

        assert made.returncode == 0, made.stderr
        assert every_row(fresh_url) == backed_up, "the server wrote during the backup"
        record = json.loads(record_path(backup).read_text())
        size = backup.stat().st_size
        assert made.stdout.strip() == (
            f"backed up {record['backend']} database to {backup.name}: {size:,} bytes, "
            f"revision {head_revision()}, record in {backup.name}.json"
        )
        assert record["revision"] == head_revision()
        assert record["backend"] == fresh_url.split("+")[0]
        assert record["size_bytes"] == size
        assert len(record["sha256"]) == 64
        assert backup.stat().st_mode & 0o077 == 0, "a backup of patient data is the owner's only"

        # Work goes on after the backup: an update, new rows, deleted rows.
        moved = nurse.post(f"/api/v1/sessions/{sid}/assignment", json={"location": "Bay 9"})
        assert moved.status_code == 200, moved.text
        a_ward(base_url, fresh_url)
        nurse.close()
        physician.close()
    run_async(lambda: _execute(fresh_url, "DELETE FROM login_session"))
    changed = every_row(fresh_url)
    assert changed != backed_up

    refused = stepwise("db", "restore", backup.name, database_url=fresh_url, cwd=tmp_path)

    assert refusal(refused) == (
        "error: the database holds 3 users, 2 patients and 2 sessions; restoring replaces "
        f"everything in it with the backup made {record['created_at']}: add --yes to go ahead"
    )
    assert every_row(fresh_url) == changed

    restored = stepwise("db", "restore", backup.name, "--yes", database_url=fresh_url, cwd=tmp_path)

    assert restored.returncode == 0, restored.stderr
    assert every_row(fresh_url) == backed_up
    entries = len(backed_up["audit_event"])
    assert restored.stdout.splitlines() == [
        f"restored {backup.name} (made {record['created_at']}, revision {head_revision()})",
        f"audit chain intact: {entries} entries, last seq {entries}",
    ]
    verified = stepwise("audit", "verify", database_url=fresh_url, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == f"audit chain intact: {entries} entries, last seq {entries}"


async def _execute(database_url: str, statement: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def test_a_backup_taken_while_patients_are_registered_is_consistent(
    fresh_url: str, tmp_path: Path
) -> None:
    backup = tmp_path / "busy.backup"
    stop = threading.Event()
    registered: list[int] = []
    with run_server(settings_for(fresh_url)) as base_url:
        nurse, _ = a_ward(base_url, fresh_url)

        def register() -> None:
            while not stop.is_set():
                registered.append(new_patient(nurse))

        writer = threading.Thread(target=register)
        writer.start()
        try:
            while len(registered) < 5 and writer.is_alive():  # the writer is under way
                stop.wait(0.02)
            made = stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path)
            during = len(registered)
        finally:
            stop.set()
            writer.join()
        nurse.close()
    assert made.returncode == 0, made.stderr
    assert len(registered) > during, "the writer kept writing after the backup"

    with _another_database(fresh_url, tmp_path) as elsewhere:
        restored = stepwise("db", "restore", backup.name, database_url=elsewhere, cwd=tmp_path)

        assert restored.returncode == 0, restored.stderr
        assert "audit chain intact" in restored.stdout
        patients = len(every_row(elsewhere)["patient"])
        # The first patient came with the session; each of the others is in or out whole.
        assert 1 + 5 <= patients <= 1 + len(registered)
        verified = stepwise("audit", "verify", database_url=elsewhere, cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr


def _another_database(database_url: str, tmp_path: Path):
    """A second, empty database (not migrated) on the same backend."""
    if database_url.startswith("sqlite"):
        return nullcontext(_sqlite_url(tmp_path / "elsewhere.db"))
    return _postgres_database()


def test_a_backup_never_overwrites_a_file(fresh_url: str, tmp_path: Path) -> None:
    taken = tmp_path / "taken.backup"
    taken.write_bytes(b"yesterday's backup")

    result = stepwise("db", "backup", taken.name, database_url=fresh_url, cwd=tmp_path)

    assert (
        refusal(result) == f"error: {taken.name} already exists; a backup never overwrites a file"
    )
    assert taken.read_bytes() == b"yesterday's backup"
    assert not record_path(taken).exists()

    fresh = tmp_path / "fresh.backup"
    record_path(fresh).write_text("a record kept for another file")

    result = stepwise("db", "backup", fresh.name, database_url=fresh_url, cwd=tmp_path)

    assert refusal(result).endswith(
        f"{fresh.name}.json already exists; a backup never overwrites a file"
    )
    assert not fresh.exists()
    assert record_path(fresh).read_text() == "a record kept for another file"


def test_a_damaged_backup_is_refused_and_changes_nothing(fresh_url: str, tmp_path: Path) -> None:
    backup = tmp_path / "damaged.backup"
    with run_server(settings_for(fresh_url)) as base_url:
        a_ward(base_url, fresh_url)[0].close()
    assert (
        stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path).returncode == 0
    )
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01
    backup.write_bytes(bytes(data))
    before = every_row(fresh_url)

    result = stepwise("db", "restore", backup.name, "--yes", database_url=fresh_url, cwd=tmp_path)

    line = refusal(result)
    assert line.startswith(f"error: {backup.name} does not match its record {backup.name}.json")
    assert line.endswith("the file is damaged or not the backup recorded")
    assert every_row(fresh_url) == before


def test_a_backup_newer_than_this_version_is_refused(fresh_url: str, tmp_path: Path) -> None:
    backup = tmp_path / "future.backup"
    assert (
        stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path).returncode == 0
    )
    record = json.loads(record_path(backup).read_text())
    record["revision"] = "f00dfeedbeef"  # a migration this code does not have
    record_path(backup).write_text(json.dumps(record))
    run_async(lambda: _execute(fresh_url, "UPDATE installation SET installation_id = 'marked'"))
    before = every_row(fresh_url)

    result = stepwise("db", "restore", backup.name, "--yes", database_url=fresh_url, cwd=tmp_path)

    assert refusal(result) == (
        "error: the backup is at schema revision f00dfeedbeef, newer than this version of "
        f"Stepwise (head {head_revision()}); restore it with the version that made it"
    )
    assert every_row(fresh_url) == before


def test_a_backup_without_its_record_or_of_another_backend_is_refused(
    fresh_url: str, tmp_path: Path
) -> None:
    backup = tmp_path / "lone.backup"
    assert (
        stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path).returncode == 0
    )
    backend = json.loads(record_path(backup).read_text())["backend"]
    other = (
        "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
        if backend == "sqlite"
        else _sqlite_url(tmp_path / "other.db")
    )

    result = stepwise("db", "restore", backup.name, database_url=other, cwd=tmp_path)

    other_backend = "postgresql" if backend == "sqlite" else "sqlite"
    expected = f"error: {backup.name} is a {backend} backup; the database is {other_backend}"
    assert refusal(result) == expected
    assert not (tmp_path / "other.db").exists()

    record_path(backup).unlink()
    result = stepwise("db", "restore", backup.name, "--yes", database_url=fresh_url, cwd=tmp_path)

    assert (
        refusal(result) == f"error: {backup.name}.json is missing; `stepwise db backup` writes it"
    )


def test_a_missing_sqlite_database_is_reported_and_nothing_is_written(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "nowhere.db")

    result = stepwise("db", "backup", "kept.backup", database_url=url, cwd=tmp_path)

    assert refusal(result) == f"error: database file {tmp_path / 'nowhere.db'} does not exist"
    assert sorted(tmp_path.iterdir()) == []


def test_without_pg_dump_the_backup_says_so_and_writes_nothing(
    fresh_url: str, tmp_path: Path
) -> None:
    if not fresh_url.startswith("postgresql"):
        pytest.skip("pg_dump backs up PostgreSQL only")

    result = stepwise(
        "db", "backup", "kept.backup", database_url=fresh_url, cwd=tmp_path, path=str(tmp_path)
    )

    assert refusal(result) == (
        "error: pg_dump not found on PATH; install the PostgreSQL client tools of the server's "
        "major version (Debian: postgresql-client)"
    )
    assert sorted(tmp_path.iterdir()) == []


def test_postgresql_refuses_a_target_at_another_schema_revision(
    fresh_url: str, tmp_path: Path
) -> None:
    if not fresh_url.startswith("postgresql"):
        pytest.skip("a SQLite restore replaces the whole file, whatever its revision")
    backup = tmp_path / "head.backup"
    assert (
        stepwise("db", "backup", backup.name, database_url=fresh_url, cwd=tmp_path).returncode == 0
    )
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
    assert previous is not None and isinstance(previous.down_revision, str)

    with _postgres_database() as older:
        upgrade(older, previous.down_revision)
        before = every_row(older)

        result = stepwise("db", "restore", backup.name, "--yes", database_url=older, cwd=tmp_path)

        assert refusal(result) == (
            f"error: the database is at schema revision {previous.down_revision}, the backup at "
            f"{head_revision()}; restore into a new empty database (createdb) instead"
        )
        assert every_row(older) == before
