"""GET /healthz over real HTTP."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx

from app.config import Settings
from app.db import backend_name
from app.schema import head_revision, upgrade


def _get_health(base_url: str) -> httpx.Response:
    return httpx.get(f"{base_url}/healthz", timeout=15)


def _assert_clean_error(response: httpx.Response, *fragments: str) -> dict[str, str]:
    assert response.status_code == 503, response.text
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    body = response.json()
    assert body["status"] == "error"
    for fragment in fragments:
        assert fragment in body["database"]
    return body


def test_healthy_database(live_server: str, database_url: str) -> None:
    response = _get_health(live_server)

    assert response.status_code == 200, response.text
    body = response.json()
    # The steady clock says how far it is from its own monotonic time line (on PostgreSQL:
    # the database's clock, here on the same machine, well under a second) and what it is
    # still slewing away (nothing: no clock was stepped).
    offset = body.pop("clock_offset_ms")
    assert abs(offset) < 1000, offset
    assert abs(body.pop("clock_slewing_ms")) < 1000
    # The collector's pauses since the process settled after start-up.
    pauses = body.pop("gc")
    assert set(pauses) == {
        "collections",
        "longest_pause_ms",
        "pauses_over_20_ms",
        "total_pause_ms",
    }, pauses
    assert len(pauses["collections"]) == 3 and pauses["longest_pause_ms"] >= 0
    assert body == {
        "status": "ok",
        "database": "ok",
        "backend": backend_name(database_url),
        "schema_revision": head_revision(),
    }


def test_unmigrated_sqlite_database(
    start_server: Callable[[Settings], str], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'stepwise.db'}"
    base_url = start_server(Settings(database_url=url, env="test"))

    body = _assert_clean_error(_get_health(base_url), "not migrated", "stepwise db upgrade")
    assert set(body) == {"status", "database"}


def test_database_at_another_revision(
    start_server: Callable[[Settings], str], tmp_path: Path
) -> None:
    path = tmp_path / "stepwise.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'feedfacecafe'")
    base_url = start_server(Settings(database_url=url, env="test"))

    _assert_clean_error(_get_health(base_url), "feedfacecafe", head_revision())


def test_unreachable_postgresql(start_server: Callable[[Settings], str]) -> None:
    # Port 1 on the loopback interface: nothing listens there, the connection is refused.
    url = "postgresql+asyncpg://postgres:not-a-real-password@127.0.0.1:1/stepwise"
    base_url = start_server(Settings(database_url=url, env="test"))

    response = _get_health(base_url)

    _assert_clean_error(response, "unreachable")
    assert "not-a-real-password" not in response.text


def test_the_collectors_pauses_are_counted_and_the_long_ones_told_apart() -> None:
    import time

    from app.gc_tuning import LONG_PAUSE_MS, Pauses

    pauses = Pauses()
    pauses.on_collection("start", {"generation": 2})
    time.sleep(LONG_PAUSE_MS * 1.5 / 1000)  # a collection that held the server too long
    pauses.on_collection("stop", {"generation": 2})
    pauses.on_collection("start", {"generation": 0})
    pauses.on_collection("stop", {"generation": 0})
    shown = pauses.as_dict()
    assert shown["collections"] == [1, 0, 1]
    assert shown["pauses_over_20_ms"] == 1
    assert shown["longest_pause_ms"] >= LONG_PAUSE_MS * 1.5
    assert pauses.total_ms >= pauses.longest_ms


def test_ready_when_the_database_takes_a_real_write(live_server: str, database_url: str) -> None:
    answer = httpx.get(f"{live_server}/readyz", timeout=15)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == body["checks"]["storage"] == "ok"
    assert body["checks"]["clock"] == "ok"
    if backend_name(database_url) == "postgresql":  # several processes: one log
        assert "listener" in body["checks"]
    else:
        assert set(body["checks"]) == {"database", "storage", "clock"}


def test_storage_that_takes_no_write_is_not_ready_but_alive_and_readable(
    start_server: Callable[[Settings], str], tmp_path: Path
) -> None:
    database = tmp_path / "stepwise.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    base_url = start_server(Settings(database_url=url, env="test"))
    with sqlite3.connect(database) as db:  # every write fails the way a full disk fails it
        db.execute(
            "CREATE TRIGGER no_room BEFORE UPDATE ON installation "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    full = httpx.get(f"{base_url}/readyz", timeout=15)
    assert full.status_code == 503
    assert full.json()["checks"] == {
        "database": "ok",
        "storage": "the server cannot save right now — storage full",
        "clock": "ok",
    }
    assert _get_health(base_url).status_code == 200  # alive: no restart needed
    with sqlite3.connect(database) as db:  # room again
        db.execute("DROP TRIGGER no_room")
    assert httpx.get(f"{base_url}/readyz", timeout=15).status_code == 200
