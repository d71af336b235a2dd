"""A write that cannot get SQLite's write lock within the busy timeout is refused with a clear
503, changes nothing, and succeeds when resent once the lock is free."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.config import Settings
from app.db import SQLITE_BUSY_TIMEOUT_MS
from app.schema import upgrade
from tests.support import SignedInClient, create_account, login_form_token

PATIENT = {
    "mrn": "BUSY-1",
    "family_name": "Doe",
    "given_name": "Jane",
    "birth_date": "1970-04-02",
    "weight_kg": 70,
    "asthma": False,
}


def test_a_write_that_cannot_get_the_lock_is_refused_with_503_and_changes_nothing(
    start_server: Callable[[Settings], str], tmp_path: Path
) -> None:
    path = tmp_path / "stepwise.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    nurse_account = create_account(url, "nurse")
    base = start_server(Settings(database_url=url, env="test"))
    nurse = SignedInClient(base, nurse_account)
    try:
        nurse.timeout = SQLITE_BUSY_TIMEOUT_MS / 1000 + 15
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
            started = time.monotonic()
            refused = nurse.post(
                "/api/v1/patients", json=PATIENT, headers={"Idempotency-Key": "busy-1"}
            )
            waited = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()

        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert "not completed" in refused.json()["detail"]
        assert waited >= SQLITE_BUSY_TIMEOUT_MS / 1000 * 0.9  # it waited for the lock first
        listed = nurse.get("/api/v1/patients", params={"q": "BUSY-1"})
        assert listed.status_code == 200
        assert "BUSY-1" not in listed.text  # nothing was saved

        saved = nurse.post("/api/v1/patients", json=PATIENT, headers={"Idempotency-Key": "busy-1"})
        assert saved.status_code == 201, saved.text
        assert "BUSY-1" in nurse.get("/api/v1/patients", params={"q": "BUSY-1"}).text
    finally:
        nurse.close()


def test_a_form_that_cannot_be_saved_gets_a_page_that_says_so(
    start_server: Callable[[Settings], str], tmp_path: Path
) -> None:
    path = tmp_path / "stepwise.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    account = create_account(url, "nurse")
    base = start_server(Settings(database_url=url, env="test"))
    with httpx.Client(base_url=base, headers={"origin": base}, timeout=30) as browser:
        token = login_form_token(browser)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            page = browser.post(
                "/login",
                data={
                    "username": account.username,
                    "password": account.password,
                    "login_token": token,
                    "next": "/",
                },
            )
        finally:
            holder.rollback()
            holder.close()

    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "may not have been saved" in page.text
    assert "Traceback" not in page.text
