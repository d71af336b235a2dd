"""The bedside view and the board in Debian's Chromium, a nurse and a physician at once, on a
real server: changes reach the other screen without a reload; a server restart shows the stale
banner, which clears, and the page then matches a fresh load."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from app.config import Settings
from tests.browser.conftest import sign_in
from tests.conftest import run_server
from tests.session.conftest import new_patient, session_body
from tests.session.test_api_walk import OK_VITALS
from tests.support import SignedInClient

REGIONS = ("#status-panel", "#dose-panel", "#vitals-last", "#actions", "#alarm-banner")
# Text that moves with the clock is left out of the comparison with a fresh load.
NORMALIZED_TEXT = """(selectors) => selectors.map((sel) => {
  const el = document.querySelector(sel).cloneNode(true);
  el.querySelectorAll("[data-countdown], [data-age], time").forEach((t) => t.remove());
  return sel + ": " + el.innerText.replace(/\\s+/g, " ").trim();
})"""


@dataclass
class Ward:
    base: str
    team: dict[str, SignedInClient]

    def post(self, role: str, path: str, body: dict | None = None) -> dict:
        answer = self.team[role].post(path, json=body or {})
        assert answer.status_code < 300, (path, answer.status_code, answer.text)
        return answer.json()

    def running_session(self) -> int:
        nurse = self.team["nurse"]
        sid = self.post("nurse", "/api/v1/sessions", session_body(new_patient(nurse)))["id"]
        for role, command, body in (
            ("physician", "approve", {}),
            ("pharmacist", "verify-bags", {}),
            ("nurse", "checklist", {"item": "consent"}),
            ("nurse", "checklist", {"item": "rescue_kit"}),
            ("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"}),
            ("nurse", "vitals", OK_VITALS),
            ("nurse", "start", {}),
        ):
            self.post(role, f"/api/v1/sessions/{sid}/{command}", body)
        return sid


def settings_for(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=600,
        live_heartbeat_seconds=1.0,
    )


@pytest.fixture
def ward(database_url: str, accounts) -> Iterator[Ward]:
    with run_server(settings_for(database_url)) as base:
        team = {r: SignedInClient(base, accounts[r]) for r in ("nurse", "physician", "pharmacist")}
        try:
            yield Ward(base, team)
        finally:
            for client in team.values():
                client.close()


def live_page(browser, base: str, account, path: str):
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, base, account)
    page.goto(base + path)
    page.wait_for_function("() => document.body.dataset.live === 'live'", timeout=5000)
    page.evaluate("() => { window.__loadedOnce = true; }")  # gone if the page reloads
    return page, errors


def save_vitals(page, **values: object) -> None:
    for name, value in {**OK_VITALS, **values}.items():
        page.fill(f"#vf-{name}", str(value))
    page.click("#vitals-form button[type=submit]")
    page.wait_for_selector("#vitals-form .form-result-ok", timeout=5000)


def test_a_nurse_and_a_physician_see_each_others_changes_live(
    browser, ward: Ward, accounts
) -> None:
    sid = ward.running_session()
    nurse, nurse_errors = live_page(browser, ward.base, accounts["nurse"], f"/sessions/{sid}")
    board, board_errors = live_page(browser, ward.base, accounts["physician"], "/board")
    tile = f"#tile-{sid}"

    # Vitals saved at the bedside reach the board tile without a reload.
    save_vitals(nurse, heart_rate=97)
    board.wait_for_function(
        f"() => document.querySelector('{tile} .tile-vitals').innerText.includes('97')",
        timeout=2000,
    )
    assert board.evaluate("() => window.__loadedOnce") is True

    # A reaction reported at the bedside: the board shows the HIGH alarm within a second.
    nurse.click(".button-reaction")
    nurse.check("#reaction-dialog input[value=flushing]")
    nurse.check("#reaction-dialog input[value=wheeze]")
    started = time.monotonic()
    nurse.click("#reaction-dialog button[type=submit]")
    board.wait_for_selector(f"{tile}.tile-alarm-high .tile-alarm.alarm-high", timeout=1000)
    assert time.monotonic() - started < 1.0
    assert "Paused" in board.inner_text(tile)
    assert board.get_attribute("#escalations", "data-sounding") == ""  # not escalated yet
    nurse.wait_for_selector("#reaction-panel.open")
    assert nurse.get_attribute("#alarm-banner", "data-sounding") == "HIGH"

    # The nurse resolves it and records fresh vitals; the physician, from the board, resumes.
    nurse.click("#reaction-panel button[data-open=resolve-dialog]")
    nurse.check("#resolve-dialog input[name=brown_grade][value='2']")
    nurse.click("#resolve-dialog button[type=submit]")
    nurse.wait_for_selector("#reaction-panel:not(.open)", state="attached", timeout=3000)
    save_vitals(nurse)
    board.click(tile)
    board.wait_for_url(f"{ward.base}/sessions/{sid}")
    board.wait_for_function("() => document.body.dataset.live === 'live'", timeout=5000)
    board.click("#actions button[data-open=resume-dialog]")
    board.check("#resume-dialog input[value=repeat]")  # the reaction came at step 1
    board.select_option("#resume-dialog select[name=stretch]", "2")
    board.wait_for_selector("#resume-dialog .preview-table tbody tr")  # the steps it makes
    board.click("#resume-dialog button[type=submit]")

    # The bedside shows the new pump prompt, live.
    nurse.wait_for_selector(".pump-prompt", timeout=2000)
    prompt = nurse.inner_text(".pump-prompt")
    assert "set the pump to" in prompt and "from Bag" in prompt
    assert "(repeats step 1)" in prompt and "Pump stopped since" in prompt
    assert nurse.evaluate("() => window.__loadedOnce") is True
    # A preview asked for before the fresh vitals were in is refused (409), as it should be:
    # the browser logs that answer; it is not an error of the page.
    board_errors = [e for e in board_errors if "409 (Conflict)" not in e]
    assert not nurse_errors and not board_errors, nurse_errors + board_errors


def test_a_server_restart_shows_the_stale_banner_then_the_page_matches_a_fresh_load(
    browser, database_url: str, accounts
) -> None:
    with ExitStack() as stack:
        base = stack.enter_context(run_server(settings_for(database_url)))
        port = int(base.rsplit(":", 1)[1])
        team = {r: SignedInClient(base, accounts[r]) for r in ("nurse", "physician", "pharmacist")}
        ward = Ward(base, team)
        sid = ward.running_session()
        page, _ = live_page(browser, base, accounts["nurse"], f"/sessions/{sid}")
        assert page.is_hidden("#link-stale")

        stack.close()  # the server goes down
        page.wait_for_selector("#link-stale", state="visible", timeout=15000)
        assert "connection lost" in page.inner_text("#link-stale").lower()

        with run_server(settings_for(database_url), port=port):
            for client in team.values():
                client.close()
            team = {
                r: SignedInClient(base, accounts[r]) for r in ("nurse", "physician", "pharmacist")
            }
            ward = Ward(base, team)
            # A change while the page is still reconnecting.
            version = ward.post("nurse", f"/api/v1/sessions/{sid}/vitals", OK_VITALS)["version"]
            page.wait_for_selector("#link-stale", state="hidden", timeout=15000)
            page.wait_for_function(
                f"() => document.querySelector('#status-panel').dataset.version === '{version}'",
                timeout=5000,
            )
            assert page.evaluate("() => window.__loadedOnce") is True  # reconnected, not reloaded
            fresh = page.context.new_page()
            fresh.goto(f"{base}/sessions/{sid}")
            assert page.evaluate(NORMALIZED_TEXT, list(REGIONS)) == fresh.evaluate(
                NORMALIZED_TEXT, list(REGIONS)
            )
            for client in team.values():
                client.close()
