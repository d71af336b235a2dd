"""`stepwise audit verify`, run as a real subprocess against real databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
