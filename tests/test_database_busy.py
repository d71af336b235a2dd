"""A write that cannot get SQLite's write lock within the busy timeout is refused with a clear
503, changes nothing, and succeeds when resent once the lock is free."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.db import SQLITE_BUSY_TIMEOUT_MS
from app.schema import upgrade
from tests.support import Account, SignedInClient, create_account, login_form_token

PATIENT = {
    "mrn": "BUSY-1",
    "family_name": "Doe",
    "given_name": "Jane",
    "birth_date": "1970-04-02",
    "weight_kg": 70,
    "asthma": False,
}


@dataclass(frozen=True)
class Ward:
    base: str
    database: Path
    nurse: Account


@pytest.fixture
def ward(start_server: Callable[[Settings], str], tmp_path: Path) -> Ward:
    """A server on its own SQLite file, whose write lock a test can take away."""
    database = tmp_path / "stepwise.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    nurse = create_account(url, "nurse")
    return Ward(start_server(Settings(database_url=url, env="test")), database, nurse)


@contextmanager
def write_lock_taken(database: Path) -> Iterator[None]:
    """Another writer holds SQLite's write lock throughout."""
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_write_that_cannot_get_the_lock_is_refused_with_503_and_changes_nothing(
    ward: Ward,
) -> None:
    nurse = SignedInClient(ward.base, ward.nurse)
    try:
        nurse.timeout = SQLITE_BUSY_TIMEOUT_MS / 1000 + 15
        with write_lock_taken(ward.database):
            started = time.monotonic()
            refused = nurse.post(
                "/api/v1/patients", json=PATIENT, headers={"Idempotency-Key": "busy-1"}
            )
            waited = time.monotonic() - started

        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        answer = refused.json()
        assert answer["fault"] == "busy" and "busy" in answer["detail"]
        assert "may not have been saved" in answer["detail"]
        assert waited >= SQLITE_BUSY_TIMEOUT_MS / 1000 * 0.9  # it waited for the lock first
        listed = nurse.get("/api/v1/patients", params={"q": "BUSY-1"})
        assert listed.status_code == 200
        assert "BUSY-1" not in listed.text  # nothing was saved

        saved = nurse.post("/api/v1/patients", json=PATIENT, headers={"Idempotency-Key": "busy-1"})
        assert saved.status_code == 201, saved.text
        assert "BUSY-1" in nurse.get("/api/v1/patients", params={"q": "BUSY-1"}).text
    finally:
        nurse.close()


def test_a_form_that_cannot_be_saved_gets_a_page_that_says_so(ward: Ward) -> None:
    with httpx.Client(base_url=ward.base, headers={"origin": ward.base}, timeout=30) as browser:
        token = login_form_token(browser)
        with write_lock_taken(ward.database):
            page = browser.post(
                "/login",
                data={
                    "username": ward.nurse.username,
                    "password": ward.nurse.password,
                    "login_token": token,
                    "next": "/",
                },
            )

    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "may not have been saved" in page.text
    assert "Traceback" not in page.text


def test_a_read_is_answered_even_when_its_sign_in_cannot_be_marked_seen(ward: Ward) -> None:
    # The "last seen" mark is written at most once a minute, by whichever request comes; a
    # read must not fail because that write cannot be made. The write is made to fail the way
    # a full disk fails it, and only that write.
    nurse = SignedInClient(ward.base, ward.nurse)
    try:
        with sqlite3.connect(ward.database) as db:
            db.execute(
                "UPDATE login_session SET last_seen_at = datetime(last_seen_at, '-2 minutes')"
            )  # the last mark two minutes old: one is due
            db.execute(
                "CREATE TRIGGER no_room BEFORE UPDATE ON login_session "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            before = db.execute("SELECT last_seen_at FROM login_session").fetchone()
        listed = nurse.get("/api/v1/patients")
        assert listed.status_code == 200, listed.text
        with sqlite3.connect(ward.database) as db:
            assert db.execute("SELECT last_seen_at FROM login_session").fetchone() == before
            db.execute("DROP TRIGGER no_room")  # room again: the next request makes the mark
        assert nurse.get("/api/v1/patients").status_code == 200
        with sqlite3.connect(ward.database) as db:
            assert db.execute("SELECT last_seen_at FROM login_session").fetchone() != before
    finally:
        nurse.close()
