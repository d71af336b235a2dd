"""`stepwise audit verify` and `verify-export`, run as real subprocesses against real databases
and real exports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.chain import entry_hash
from app.db import create_engine, session_factory
from app.review.exports import AuditFilters, stream_audit_jsonl
from tests.audit.support import append_committed, drop_append_only_triggers

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env={**base_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def verify_cli(*args: str, env: dict[str, str] | None = None):
    # A thread, so that the event loop of the test stays free while the subprocess runs.
    return await asyncio.to_thread(run_cli, "audit", "verify", *args, env=env)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


async def test_an_intact_log_verifies(fresh_url: str) -> None:
    await append_committed(fresh_url, 4)

    result = await verify_cli("--database-url", fresh_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "audit chain intact: 4 entries, last seq 4"
    assert result.stderr == ""


async def test_an_empty_log_verifies_with_the_url_from_the_environment(fresh_url: str) -> None:
    result = await verify_cli(env={"STEPWISE_DATABASE_URL": fresh_url})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "audit chain intact: 0 entries, last seq 0"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE audit_event SET reason = 'nothing happened' WHERE seq = 3",
            "error: audit chain broken at seq 3: hash does not match its contents",
        ),
        (
            "UPDATE audit_event SET after_json = '{\"step\":1}' WHERE seq = 2",
            "error: audit chain broken at seq 2: hash does not match its contents",
        ),
        (
            "DELETE FROM audit_event WHERE seq = 4",
            "error: audit chain broken at seq 4: entry missing",
        ),
    ],
)
async def test_tampering_is_reported_with_the_broken_seq(
    fresh_url: str, fresh_engine: AsyncEngine, statement: str, expected: str
) -> None:
    await append_committed(fresh_url, 5)
    assert (await verify_cli("--database-url", fresh_url)).returncode == 0
    await drop_append_only_triggers(fresh_engine)
    async with fresh_engine.begin() as conn:
        # exec_driver_sql: the JSON's colon must not be read as a bind parameter.
        await conn.exec_driver_sql(statement)
        changed = await conn.execute(text("SELECT count(*) FROM audit_event"))
        assert changed.scalar_one() == (4 if statement.startswith("DELETE") else 5)

    result = await verify_cli("--database-url", fresh_url)

    assert result.returncode == 1
    assert one_error_line(result) == expected
    assert result.stdout == ""


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"

    result = run_cli("audit", "verify", "--database-url", f"sqlite+aiosqlite:///{path}")

    assert one_error_line(result) == f"error: database file {path} does not exist"
    assert not path.exists()


def test_an_unmigrated_database_is_reported(empty_database_url: str) -> None:
    if empty_database_url.startswith("sqlite"):
        Path(empty_database_url.removeprefix("sqlite+aiosqlite:///")).touch()

    result = run_cli("audit", "verify", "--database-url", empty_database_url)

    assert "run `stepwise db upgrade`" in one_error_line(result)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        # Port 9 (discard) is not a PostgreSQL server on any test machine.
        ("postgresql+asyncpg://postgres@127.0.0.1:9/stepwise", "audit verify failed"),
        ("mysql://root@localhost/stepwise", "unsupported database URL scheme"),
    ],
)
def test_unusable_databases_give_one_line(url: str, fragment: str) -> None:
    result = run_cli("audit", "verify", "--database-url", url)

    assert fragment in one_error_line(result)


# --- `stepwise audit verify-export`: the JSON Lines export, checked from the file alone ------


async def export_jsonl(url: str, path: Path, **filters: str) -> str:
    """Write the audit log at ``url`` to ``path`` as /audit/export.jsonl streams it."""
    engine = create_engine(url)
    try:
        chunks = stream_audit_jsonl(session_factory(engine), AuditFilters.parse(**filters))
        text = b"".join([chunk async for chunk in chunks]).decode()
    finally:
        await engine.dispose()
    await asyncio.to_thread(path.write_text, text)
    return text


def entries_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def verify_export_cli(*args: str, stdin: str | None = None):
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "audit", "verify-export", *args],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_an_exported_log_verifies_from_the_file_alone(fresh_url: str, tmp_path: Path) -> None:
    await append_committed(fresh_url, 6)
    whole = tmp_path / "audit.jsonl"
    text = await export_jsonl(fresh_url, whole)
    entries = entries_of(text)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]

    result = await verify_export_cli(str(whole))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "audit export intact: 6 entries, seq 1 to 6, the whole chain from its first entry; "
        f"last hash {entries[-1]['hash']}"
    )
    from_stdin = await verify_export_cli("-", stdin=text)
    assert from_stdin.returncode == 0 and from_stdin.stdout == result.stdout

    # A filtered export: each hash recomputes; links are checked where entries follow.
    nurse_only = tmp_path / "nurse.jsonl"
    entries = entries_of(await export_jsonl(fresh_url, nurse_only, user="nurse1"))
    assert [e["seq"] for e in entries] == [2, 4, 6]
    result = await verify_export_cli(str(nurse_only))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit export intact: 3 entries, seq 2 to 6, 2 gap(s)")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda lines: [
                *lines[:2],
                edited(lines[2], reason="nothing happened"),
                *lines[3:],
            ],
            "error: audit export broken at line 3: seq 3: hash does not match its contents",
        ),
        (
            lambda lines: [*lines[:2], rehashed(lines[2], user_agent="x"), *lines[3:]],
            "error: audit export broken at line 4: seq 4: prev_hash does not link to seq 3",
        ),
        (
            lambda lines: [lines[1], lines[0], *lines[2:]],
            "error: audit export broken at line 2: seq 1: duplicate or out of order (follows 2)",
        ),
        (
            lambda lines: [*lines[:4], "not json"],
            "error: audit export broken at line 5: not a line of JSON",
        ),
    ],
)
async def test_a_changed_export_is_reported_with_its_line(
    fresh_url: str, tmp_path: Path, change, expected: str
) -> None:
    await append_committed(fresh_url, 5)
    path = tmp_path / "audit.jsonl"
    lines = (await export_jsonl(fresh_url, path)).splitlines()
    await asyncio.to_thread(path.write_text, "\n".join(change(lines)) + "\n")

    result = await verify_export_cli(str(path))

    assert result.returncode == 1
    assert one_error_line(result) == expected
    assert result.stdout == ""


def edited(line: str, **changes: object) -> str:
    """An entry changed in the file, its hash left as it was."""
    return json.dumps({**json.loads(line), **changes})


def rehashed(line: str, **changes: object) -> str:
    """An entry changed by someone who also recomputes its hash."""
    entry = {**json.loads(line), **changes}
    return json.dumps({**entry, "hash": entry_hash(entry)})


def test_an_unreadable_export_gives_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    result = run_cli("audit", "verify-export", str(missing))
    assert one_error_line(result).startswith(f"error: cannot read {missing}")
