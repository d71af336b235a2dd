"""The screens a nurse and a physician look at, in the states that matter, at 1024x768 in
Debian's Chromium: each is checked for what it must show, and saved (test-artifacts/) for the
README's screenshots (docs/screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.main import create_app
from app.schema import upgrade
from tests.browser.conftest import sign_in
from tests.conftest import run_server
from tests.session.conftest import SessionServer, session_body, wait_for
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS
from tests.support import Account, SignedInClient, create_account

LIVE = "() => document.body.dataset.live === 'live'"


def open_live(browser, base: str, account, path: str):
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, base, account)
    page.goto(base + path)
    page.wait_for_function(LIVE, timeout=5000)
    return page, errors


@pytest.fixture
def quiet_ward(
    empty_database_url: str,
) -> Iterator[tuple[SessionServer, dict[str, SignedInClient], dict[str, Account]]]:
    """A ward of its own (a new database, a manual clock): the board shows only these four."""
    upgrade(empty_database_url)
    accounts = {
        r: create_account(empty_database_url, r) for r in ("nurse", "physician", "pharmacist")
    }
    settings = Settings(
        database_url=empty_database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=600,
    )
    app = create_app(settings)
    with run_server(app) as base:
        team = {r: SignedInClient(base, a) for r, a in accounts.items()}
        yield SessionServer(base, app), team, accounts
        for client in team.values():
            client.close()


def test_bedside_states_and_the_board(quiet_ward, browser, artifacts: Path) -> None:
    # quiet_ward first: it runs asyncio before Playwright starts its loop on this thread.
    server, team, accounts = quiet_ward
    names = iter(
        [("Okafor", "Ada"), ("Lindqvist", "Per"), ("Moreau", "Claire"), ("Tanaka", "Hiro")]
    )

    def patient(client: SignedInClient) -> int:
        family, given = next(names)
        answer = client.post(
            "/api/v1/patients",
            json={
                "mrn": f"MRN{family.upper()}",
                "family_name": family,
                "given_name": given,
                "birth_date": "1968-03-02",
                "weight_kg": 70,
                "asthma": False,
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    running = ready_session(server, team, patient(team["nurse"]))
    running.post("nurse", "start")
    due = ready_session(server, team, patient(team["nurse"]))
    due.post("nurse", "start")
    reacting = ready_session(server, team, patient(team["nurse"]))
    reacting.post("nurse", "start")
    planned = team["nurse"].post(
        "/api/v1/sessions", json=session_body(patient(team["nurse"]), dose="650")
    )
    assert planned.status_code == 201

    server.advance(minutes=6)
    for bedside, sbp in ((running, 118), (due, 121)):
        bedside.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": sbp, "heart_rate": 80})
    server.advance(minutes=4)
    running.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 116, "heart_rate": 84})
    server.advance(minutes=5, seconds=30)  # past the first deadline: step timers fire
    wait_for(due.get, lambda v: v["status"] == "step_due")
    wait_for(running.get, lambda v: v["status"] == "step_due")
    running.post("nurse", "confirm-step")
    reacting.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 85, "confirm": True})

    page, errors = open_live(
        browser, server.base_url, accounts["nurse"], f"/sessions/{running.sid}"
    )
    assert page.inner_text("#status-panel .badge") == "Running"
    assert "mL/h" in page.inner_text("#rate-now")
    assert page.locator("#trend-chart polyline").count() >= 2
    page.screenshot(path=str(artifacts / "bedside-running.png"))

    page.goto(f"{server.base_url}/sessions/{due.sid}")
    page.wait_for_function(LIVE, timeout=5000)
    assert "set the pump to" in page.inner_text(".pump-prompt")
    assert page.locator("#alarm-banner .alarm-low").count() == 1  # step due: LOW, steady
    page.screenshot(path=str(artifacts / "bedside-step-due.png"))

    page.goto(f"{server.base_url}/sessions/{reacting.sid}")
    page.wait_for_function(LIVE, timeout=5000)
    assert page.locator("#alarm-banner .alarm-high.flashing").count() == 1  # one event, one alarm
    assert "Reaction" in page.inner_text("#reaction-panel")
    page.screenshot(path=str(artifacts / "bedside-paused-alarm.png"))

    board, board_errors = open_live(browser, server.base_url, accounts["physician"], "/board")
    tiles = board.locator(".board-tiles .tile")
    assert tiles.count() >= 4
    # Sorted by alarm priority, then by time to the next step: the HIGH alarm comes first.
    assert tiles.first.get_attribute("id") == f"tile-{reacting.sid}"
    board.screenshot(path=str(artifacts / "board.png"))
    assert not errors and not board_errors, errors + board_errors
