"""The infrastructure commands of the ``stepwise`` CLI, run as real subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import DEV_SECRET_KEY, Settings
from app.schema import head_revision

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def _assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "stepwise.db"

    result = run_cli("db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{path}")

    assert result.returncode == 0, result.stderr
    assert head_revision() in result.stdout
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        (count,) = conn.execute("SELECT count(*) FROM installation").fetchone()
    assert {"installation", "alembic_version"} <= tables
    assert count == 1


def test_db_upgrade_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "from-env.db"

    result = run_cli("db", "upgrade", env={"STEPWISE_DATABASE_URL": f"sqlite+aiosqlite:///{path}"})

    assert result.returncode == 0, result.stderr
    assert path.is_file()
    # Upgrading again is a no-op that still reports the revision.
    again = run_cli("db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{path}")
    assert again.returncode == 0, again.stderr
    assert head_revision() in again.stdout


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/stepwise", "sqlite:///var/stepwise.db", "nonsense"]
)
def test_db_upgrade_refuses_unsupported_urls(url: str) -> None:
    result = run_cli("db", "upgrade", "--database-url", url)

    line = _assert_one_line_error(result)
    assert "sqlite+aiosqlite://" in line


def test_production_refuses_the_default_secret_key() -> None:
    result = run_cli("serve", env={"STEPWISE_ENV": "production"})

    line = _assert_one_line_error(result)
    assert "STEPWISE_SECRET_KEY" in line


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="STEPWISE_SECRET_KEY"):
        Settings(env="production", secret_key=DEV_SECRET_KEY)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="short")
    with pytest.raises(ValidationError):
        Settings(clock_speed=0.5)
    with pytest.raises(ValidationError):
        Settings(clock_mode="sundial")

    production = Settings(env="PRODUCTION", secret_key="x" * 40, log_level="DEBUG")
    assert production.env == "production"
    assert production.log_level == "debug"
    assert DEV_SECRET_KEY not in repr(Settings())


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPWISE_PORT", "9123")
    monkeypatch.setenv("STEPWISE_CLOCK_MODE", "accelerated")
    monkeypatch.setenv("STEPWISE_CLOCK_SPEED", "12.5")

    settings = Settings()

    assert settings.port == 9123
    assert settings.clock_mode == "accelerated"
    assert settings.clock_speed == 12.5
