"""The bedside tablet in the critical minute, as a gloved nurse uses it in Debian's Chromium
(1024x768 landscape and 800x1280 portrait, touch): the alarm sound obeys its pause and the
acknowledgements, an ended sign-in covers the page and loses nothing, the reaction button and
the alarms never leave the screen, the new rate is the biggest number, saves made offline are
sent once the server is back, the countdown keeps time on a training clock, one event is one
alarm in words, times are the facility's, and the workflow gaps are closed. Every bedside state
is photographed at both sizes (test-artifacts/tablet-*.png, for docs/screenshots/).

Browser behaviour does not depend on the database: these run on SQLite only (the API tests
cover PostgreSQL)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.config import Settings
from app.main import create_app
from app.schema import upgrade
from tests.browser.conftest import sign_in
from tests.conftest import run_server
from tests.session.conftest import SessionServer, session_body, wait_for
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import Account, SignedInClient, create_account

LANDSCAPE = {"width": 1024, "height": 768}
PORTRAIT = {"width": 800, "height": 1280}
SIZES = {"landscape": LANDSCAPE, "portrait": PORTRAIT}
LIVE = "() => document.body.dataset.live === 'live'"
ROLES = ("nurse", "physician", "pharmacist", "admin")

# Counts the oscillators the page starts: the alarm sound, as the speaker would play it.
COUNT_OSCILLATORS = """
(() => {
  window.__oscillators = 0;
  const original = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    window.__oscillators += 1;
    return original.apply(this, arguments);
  };
})();
"""


@dataclass
class Ward:
    server: SessionServer
    team: dict[str, SignedInClient]
    accounts: dict[str, Account]
    database_url: str
    patients: int = 0

    @property
    def base(self) -> str:
        return self.server.base_url

    def patient(self) -> int:
        self.patients += 1
        answer = self.team["nurse"].post(
            "/api/v1/patients",
            json={
                "mrn": f"TAB{self.patients:03d}{int(time.time() * 1000) % 100000}",
                "family_name": ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak"][
                    self.patients % 6
                ],
                "given_name": "Ada",
                "birth_date": "1968-03-02",
                "weight_kg": 70,
                "asthma": False,
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def session(self, **protocol) -> Bedside:
        created = self.team["nurse"].post(
            "/api/v1/sessions", json=session_body(self.patient(), **protocol)
        )
        assert created.status_code == 201, created.text
        return Bedside(self.server, self.team, created.json()["id"])

    def ready(self, **protocol) -> Bedside:
        b = self.session(**protocol)
        b.post("physician", "approve")
        b.post("pharmacist", "verify-bags")
        for item in ("consent", "rescue_kit"):
            b.post("nurse", "checklist", {"item": item})
        b.post("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"})
        b.vitals()
        return b

    def running(self) -> Bedside:
        b = self.ready()
        b.post("nurse", "start")
        return b

    def step_due(self) -> Bedside:
        b = self.running()
        self.server.advance(minutes=5)
        b.vitals()
        self.server.advance(minutes=10, seconds=30)
        wait_for(b.get, lambda v: v["status"] == "step_due")
        return b

    def reacting(self) -> Bedside:
        b = self.running()
        self.server.advance(minutes=5)
        b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 85, "spo2": 89, "confirm": True})
        return b


def ward_settings(database_url: str, **extra) -> Settings:
    return Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=600,
        live_heartbeat_seconds=1.0,
        **extra,
    )


@pytest.fixture
def tablet_db(empty_database_url: str) -> str:
    if not empty_database_url.startswith("sqlite"):
        pytest.skip("the tablet in the browser is the same on both databases: SQLite only")
    upgrade(empty_database_url)
    return empty_database_url


def open_ward(stack: ExitStack, database_url: str, **extra) -> Ward:
    app = create_app(ward_settings(database_url, **extra))
    base = stack.enter_context(run_server(app))
    accounts = {r: create_account(database_url, r) for r in ROLES}
    team = {r: SignedInClient(base, a) for r, a in accounts.items() if r != "admin"}
    for client in team.values():
        stack.callback(client.close)
    return Ward(SessionServer(base, app), team, accounts, database_url)


@pytest.fixture
def ward(tablet_db: str) -> Iterator[Ward]:
    with ExitStack() as stack:
        yield open_ward(stack, tablet_db)


# Wards with other settings. Fixtures, because they use asyncio before the browser starts its
# own event loop on this thread.


@pytest.fixture
def expiring_ward(tablet_db: str) -> Iterator[Ward]:
    # The idle timeout on a manual clock, and screens checked rarely: the nurse can tap
    # REACTION before her screen knows her sign-in has ended.
    with ExitStack() as stack:
        yield open_ward(stack, tablet_db, live_login_check_seconds=60)


@pytest.fixture
def new_york_ward(tablet_db: str) -> Iterator[Ward]:
    with ExitStack() as stack:
        yield open_ward(stack, tablet_db, timezone="America/New_York")


TRAINING_SPEED = 60


@pytest.fixture
def training_ward(tablet_db: str) -> Iterator[Ward]:
    settings = Settings(
        database_url=tablet_db,
        env="test",
        clock_mode="accelerated",
        clock_speed=TRAINING_SPEED,
        live_heartbeat_seconds=5.0,
    )
    app = create_app(settings)
    with ExitStack() as stack:
        base = stack.enter_context(run_server(app))
        accounts = {r: create_account(tablet_db, r) for r in ROLES}
        team = {r: SignedInClient(base, a) for r, a in accounts.items() if r != "admin"}
        for client in team.values():
            stack.callback(client.close)
        yield Ward(SessionServer(base, app), team, accounts, tablet_db)


@pytest.fixture
def real_clock(tablet_db: str) -> Iterator[tuple[str, Account]]:
    app = create_app(Settings(database_url=tablet_db, env="test"))
    with run_server(app) as base:
        yield base, create_account(tablet_db, "nurse")


@pytest.fixture
def outage_accounts(tablet_db: str) -> dict[str, Account]:
    return {r: create_account(tablet_db, r) for r in ROLES}


def tablet(browser, ward: Ward, role: str, path: str, size: dict | None = None, audio=False):
    context = browser.new_context(viewport=size or LANDSCAPE, has_touch=True)
    if audio:
        context.add_init_script(COUNT_OSCILLATORS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, ward.base, ward.accounts[role])
    page.goto(ward.base + path)
    page.wait_for_function(LIVE, timeout=5000)
    return page, errors


def in_view(page, selector: str) -> bool:
    """The element is wholly inside the viewport, and not under the pinned bars."""
    return page.evaluate(
        """(sel) => {
          const el = document.querySelector(sel);
          if (!el) return false;
          const r = el.getBoundingClientRect();
          return r.width > 0 && r.top >= 0 && r.left >= 0 &&
                 r.bottom <= window.innerHeight && r.right <= window.innerWidth;
        }""",
        selector,
    )


def oscillators(page) -> int:
    return page.evaluate("window.__oscillators")


# --- 1. the alarm sound -------------------------------------------------------------------------


def test_the_alarm_sound_obeys_its_pause_and_the_acknowledgements(ward: Ward, browser) -> None:
    b = ward.reacting()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}", audio=True)
    assert page.inner_text("#sound-state") == "Sound off — tap to enable"
    page.tap("#sound-state")  # the first tap after a load turns the sound on
    page.wait_for_function("() => window.__oscillators >= 10", timeout=10_000)  # a HIGH burst
    assert page.inner_text("#sound-state") == "Sound on — HIGH alarm"

    page.tap("text=Pause audio 2 min")
    page.wait_for_function(
        "() => document.getElementById('sound-state').textContent.startsWith('Sound paused')"
    )
    assert re.fullmatch(r"Sound paused [12]:\d\d", page.inner_text("#sound-state"))
    time.sleep(0.5)
    before = oscillators(page)
    time.sleep(10)  # two HIGH bursts' worth
    assert oscillators(page) == before, "the sound went on during its pause"

    # A higher priority breaks through the pause: here the pause covers a MEDIUM alarm only.
    for alarm in b.get()["alarms"]["items"]:
        if alarm["active"] and not alarm["acknowledged_at"]:
            b.post("nurse", f"alarms/{alarm['id']}/acknowledge")
    page.wait_for_function("() => document.body.dataset.alarmSounding === ''")
    time.sleep(0.5)
    before = oscillators(page)
    time.sleep(10)
    assert oscillators(page) == before, "the sound went on after every alarm was acknowledged"
    assert page.inner_text("#sound-state") == "Sound on"
    assert not errors, errors


def test_a_higher_priority_breaks_through_an_audio_pause(ward: Ward, browser) -> None:
    b = ward.running()
    ward.server.advance(minutes=5)
    b.post("nurse", "vitals", {**OK_VITALS, "heart_rate": 115, "confirm": True})  # MEDIUM
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}", audio=True)
    page.tap("#sound-state")
    page.tap("text=Pause audio 2 min")
    page.wait_for_function(
        "() => document.getElementById('sound-state').textContent.startsWith('Sound paused')"
    )
    time.sleep(0.5)
    before = oscillators(page)
    b.post("nurse", "vitals", {**OK_VITALS, "spo2": 89, "confirm": True})  # a HIGH reaction
    page.wait_for_function(f"() => window.__oscillators >= {before + 10}", timeout=10_000)
    assert not errors, errors


# --- 2. an ended sign-in ------------------------------------------------------------------------


def test_a_disabled_users_socket_closes_within_5_s_and_covers_the_page(ward: Ward, browser) -> None:
    b = ward.running()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    assert page.is_visible("#reaction-button")
    admin = SignedInClient(ward.base, ward.accounts["admin"])
    try:
        answer = admin.post(
            f"/api/v1/users/{ward.accounts['nurse'].username}/disable",
            json={"reason": "left the unit"},
        )
        assert answer.status_code == 200, answer.text
        started = time.monotonic()
        page.wait_for_function("() => document.body.dataset.live === 'signed-out'", timeout=5000)
        assert time.monotonic() - started < 5
    finally:
        admin.close()
    assert page.is_visible("#signed-out")
    assert not page.is_visible(".session-header h1")  # no patient data left showing
    assert not page.is_visible("#vitals-last")
    assert not errors, errors


def test_a_reaction_tapped_after_the_sign_in_expired_is_recorded_once_signed_in_again(
    expiring_ward: Ward, browser
) -> None:
    ward = expiring_ward
    b = ward.running()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    ward.server.advance(hours=11)  # the sign-in idles out (600 minutes)
    page.tap("#reaction-button")
    page.check('#reaction-dialog input[value="wheeze"]')
    page.tap("#reaction-dialog button[type=submit]")
    page.wait_for_selector("#signed-out:not([hidden])")
    assert "report a reaction" in page.inner_text("#signed-out-pending")
    reader = SignedInClient(ward.base, ward.accounts["physician"])  # the others idled out too
    b.team = {**b.team, "nurse": reader}
    assert b.get()["reactions"] == []  # not recorded yet …
    page.fill("#signed-out-password", ward.accounts["nurse"].password)
    page.tap("#signed-out-form button[type=submit]")
    page.wait_for_selector("#signed-out", state="hidden")
    view = wait_for(b.get, lambda v: v["reactions"] != [])
    assert view["status"] == "paused"  # … and recorded once, with what she ticked
    (reaction,) = view["reactions"]
    assert reaction["symptoms"] == ["wheeze"]
    page.wait_for_function(LIVE, timeout=5000)  # the screen is live again
    reader.close()
    assert not errors, errors


# --- 3. critical controls in view ---------------------------------------------------------------


def test_reaction_and_alarms_stay_in_view_in_every_state_at_both_sizes(
    ward: Ward, browser, artifacts: Path
) -> None:
    running = ward.running()
    due = ward.step_due()
    paused = ward.reacting()
    observing = ward.ready(template="doses", doses="10,20", dose=None, interval="15")
    observing.post("nurse", "start")
    ward.server.advance(minutes=5)
    observing.vitals()
    ward.server.advance(minutes=11)
    wait_for(observing.get, lambda v: v["status"] == "step_due")
    observing.post("nurse", "confirm-step")
    ward.server.advance(minutes=5)
    observing.vitals()
    ward.server.advance(minutes=11)
    wait_for(observing.get, lambda v: v["status"] == "observing")
    for name, size in SIZES.items():
        for state, b in (
            ("running", running),
            ("step_due", due),
            ("paused", paused),
            ("observing", observing),
        ):
            page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}", size)
            for where in ("top", "bottom"):
                page.evaluate(
                    "window.scrollTo(0, %s)"
                    % ("0" if where == "top" else "document.body.scrollHeight")
                )
                assert in_view(page, "#reaction-button"), (state, name, where)
                alarm = "#alarm-banner .alarm-high, #alarm-banner .alarm-medium"
                if page.locator(alarm).count():
                    first = page.locator(alarm).first
                    box = first.bounding_box()
                    assert box is not None and 0 <= box["y"] < size["height"], (state, name)
            page.close()
    # The reaction dialog keeps its submit button in view above 26 checkboxes.
    for size in SIZES.values():
        page, errors = tablet(browser, ward, "nurse", f"/sessions/{running.sid}", size)
        page.tap("#reaction-button")
        assert in_view(page, "#reaction-dialog button[type=submit]")
        assert not errors, errors
        page.close()


def test_after_a_save_the_next_action_comes_into_view(ward: Ward, browser) -> None:
    b = ward.running()
    ward.server.advance(minutes=5)
    b.vitals()
    ward.server.advance(minutes=10, seconds=30)
    wait_for(b.get, lambda v: v["status"] == "step_due")
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}", PORTRAIT)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    for field, value in (("systolic_bp", 120), ("diastolic_bp", 75), ("heart_rate", 76)):
        page.fill(f"#vf-{field}", str(value))
    page.fill("#vf-spo2", "98")
    page.fill("#vf-respiratory_rate", "14")
    page.click("#vitals-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#toast') && !document.querySelector('#toast').hidden"
    )
    page.wait_for_function(
        """() => { const r = document.getElementById('pump-prompt').getBoundingClientRect();
                   return r.top >= 0 && r.top < window.innerHeight; }""",
        timeout=3000,
    )
    assert not errors, errors


# --- 4. the biggest number is the new rate; a stopped pump says so ---------------------------


def test_the_target_rate_is_biggest_and_a_stopped_pump_is_never_said_to_run(
    ward: Ward, browser
) -> None:
    due = ward.step_due()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{due.sid}")
    sizes = page.evaluate(
        """() => [document.getElementById('target-rate'), document.getElementById('rate-now')]
                 .map((el) => parseFloat(getComputedStyle(el).fontSize))"""
    )
    assert sizes[0] > sizes[1]
    assert page.inner_text("#target-rate") == "5 mL/h"
    assert "Pump still at 2 mL/h until you confirm" in page.inner_text("#pump-prompt")

    b = ward.running()
    ward.server.advance(minutes=5)
    b.post("nurse", "reactions", {"symptoms": ["wheeze"]})
    stopped = datetime.fromisoformat(b.get()["segments"][-1]["stopped_at"])
    b.post("physician", "reactions/1/resolve", {"brown_grade": 2})
    ward.server.advance(minutes=5)
    b.vitals()
    b.post("physician", "resume", {"resume_from": "repeat"})
    page.goto(f"{ward.base}/sessions/{b.sid}")
    page.wait_for_function(LIVE, timeout=5000)
    prompt = page.inner_text("#pump-prompt")
    assert "still" not in prompt.lower()
    assert f"Pump stopped since {stopped.strftime('%H:%M')}" in prompt
    assert "(repeats step 1)" in prompt
    assert not errors, errors


# --- 5. saves made offline ----------------------------------------------------------------------


def test_an_entry_saved_during_an_outage_is_recorded_once_after_the_restart(
    tablet_db: str, outage_accounts: dict[str, Account], browser
) -> None:
    with ExitStack() as stack:
        app = create_app(ward_settings(tablet_db))
        server = ExitStack()
        base = server.enter_context(run_server(app))
        port = int(base.rsplit(":", 1)[1])
        accounts = outage_accounts
        team = {r: SignedInClient(base, a) for r, a in accounts.items() if r != "admin"}
        ward = Ward(SessionServer(base, app), team, accounts, tablet_db)
        b = ward.running()
        context = browser.new_context(viewport=LANDSCAPE, has_touch=True)
        page = context.new_page()
        sign_in(page, base, accounts["nurse"])
        page.goto(f"{base}/sessions/{b.sid}")
        page.wait_for_function(LIVE, timeout=5000)
        before = len(b.get()["vitals"])
        for client in team.values():
            client.close()

        server.close()  # the server goes away for about 20 s
        outage = time.monotonic()
        for field, value in (
            ("systolic_bp", 118),
            ("diastolic_bp", 74),
            ("heart_rate", 77),
            ("spo2", 97),
            ("respiratory_rate", 15),
        ):
            page.fill(f"#vf-{field}", str(value))
        page.click("#vitals-form button[type=submit]")
        page.wait_for_selector("#queue-state:not([hidden])", timeout=10_000)
        assert page.inner_text("#queue-state") == "Waiting to send (1)"
        page.close()  # the tablet reloads the page while the server is away
        time.sleep(max(0.0, 20 - (time.monotonic() - outage)))

        again = create_app(ward_settings(tablet_db))
        restarted = stack.enter_context(run_server(again, port=port))
        assert restarted == base
        page = context.new_page()
        page.goto(f"{base}/sessions/{b.sid}")  # the outbox survived the reload
        page.wait_for_function(LIVE, timeout=10_000)
        page.wait_for_selector("#queue-state", state="hidden", timeout=15_000)
        nurse = SignedInClient(base, accounts["nurse"])
        stack.callback(nurse.close)
        view = nurse.get(f"/api/v1/sessions/{b.sid}").json()
        recorded = [
            v for v in view["vitals"][before:] if v["values"]["heart_rate"]["value"] == "77"
        ]
        assert len(recorded) == 1  # recorded exactly once
        # and a second flush (another reconnect) sends nothing more
        page.reload()
        page.wait_for_function(LIVE, timeout=10_000)
        time.sleep(1.0)
        view = nurse.get(f"/api/v1/sessions/{b.sid}").json()
        assert len(view["vitals"]) == before + 1


# --- 6. the countdown on a training clock; the header clock ---------------------------------


def test_the_countdown_keeps_time_on_a_training_clock(training_ward: Ward, browser) -> None:
    speed = TRAINING_SPEED
    ward, team = training_ward, training_ward.team
    b = ward.ready(step_minutes="60")  # an hour of training time: a minute of wall time
    b.post("nurse", "start")
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    for _ in range(4):  # fragments between heartbeats used to set the countdown back
        b.vitals()
        time.sleep(1.2)
        shown = page.inner_text("#status-panel .countdown")
        now = datetime.fromisoformat(team["nurse"].get("/api/v1/clock").json()["now"])
        deadline = datetime.fromisoformat(b.get()["deadline"])
        minutes, seconds = (int(x) for x in shown.split(":")[-2:])
        hours = int(shown.split(":")[0]) if shown.count(":") == 2 else 0
        left = hours * 3600 + minutes * 60 + seconds
        expected = (deadline - now).total_seconds()
        assert abs(left - expected) <= 2 * speed, (shown, expected)
    assert not errors, errors


def test_the_header_clock_ticks_every_second_in_the_facilitys_zone(
    new_york_ward: Ward, browser
) -> None:
    ward = new_york_ward
    b = ward.running()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    texts = set()
    for _ in range(3):
        texts.add(page.inner_text("#server-clock"))
        time.sleep(1.05)
    # A manual clock stands still, so the seconds do not move; the zone is named.
    assert all(re.search(r"\d\d:\d\d:\d\d (EST|EDT|GMT-[45])", t) for t in texts), texts
    # Inputs are read in the facility's zone: a hold typed in New York time, minutes ago.
    ward.server.advance(minutes=3)
    local_now = ward.server.clock.now().astimezone(ZoneInfo("America/New_York"))
    typed = local_now.strftime("%Y-%m-%dT%H:%M")
    page.tap("text=Hold (pause)…")
    page.fill('#pause-dialog input[name="reason"]', "to the bathroom")
    page.fill('#pause-dialog input[name="stopped_at"]', typed)
    page.tap("#pause-dialog button[type=submit]")
    view = wait_for(b.get, lambda v: v["status"] == "paused")
    stopped = datetime.fromisoformat(view["segments"][-1]["stopped_at"])
    expected = local_now.replace(second=0, microsecond=0).astimezone(UTC)
    assert stopped == expected
    # The screen hears of the hold over its websocket, a moment after the API has it.
    shown = local_now.strftime("%H:%M")
    page.wait_for_function(
        "t => document.querySelector('#status-panel').innerText.includes(t)", arg=shown
    )
    assert shown in page.inner_text("#status-panel")
    assert not errors, errors


def test_the_header_clock_moves_each_second_on_a_running_clock(
    real_clock: tuple[str, Account], browser
) -> None:
    base, account = real_clock
    context = browser.new_context(viewport=LANDSCAPE)
    page = context.new_page()
    sign_in(page, base, account)
    page.goto(base + "/board")
    page.wait_for_function(LIVE, timeout=5000)
    seen = []
    for _ in range(4):
        seen.append(page.inner_text("#server-clock"))
        time.sleep(1.0)
    assert len(set(seen)) >= 3, seen  # a new second each time, between heartbeats


# --- 7. one alarm per event, in words -------------------------------------------------------


def test_one_reaction_raises_one_alarm_in_words(ward: Ward, browser) -> None:
    b = ward.reacting()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    alarms = page.locator("#alarm-banner .alarm")
    assert alarms.count() == 1
    assert page.locator("#alarm-banner .button-alarm").count() == 1  # one acknowledgement
    text = page.inner_text("#alarm-banner")
    assert "systolic 85 mmHg" in text and "SpO2 89 %" in text
    assert not re.search(r"\d{4}-\d\d-\d\dT|[a-z]+_[a-z_]+", text), text
    reaction = page.inner_text("#reaction-panel")
    assert not re.search(r"[a-z]+_[a-z_]+", reaction), reaction
    ward.server.advance(minutes=6)  # vitals overdue while paused: a technical alarm in words
    wait_for(b.get, lambda v: any(a["condition"] == "vitals_overdue" for a in v["alarms"]["items"]))
    page.wait_for_function("() => document.querySelectorAll('#alarm-banner .alarm').length === 2")
    text = page.inner_text("#alarm-banner")
    assert not re.search(r"\d{4}-\d\d-\d\dT", text), text
    assert not errors, errors


# --- 9. the workflow gaps -----------------------------------------------------------------------


def test_the_ready_state_says_what_to_do_first(ward: Ward, browser) -> None:
    b = ward.ready()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    assert page.inner_text("#first-instruction") == "Step 1: hang bag 1, set the pump to 2 mL/h"
    assert not errors, errors


def test_the_resume_dialog_previews_the_steps_and_starts_conservative_after_grade_3(
    ward: Ward, browser
) -> None:
    b = ward.running()
    for _ in range(2):
        ward.server.advance(minutes=5)
        b.vitals()
        ward.server.advance(minutes=10, seconds=30)
        wait_for(b.get, lambda v: v["status"] == "step_due")
        b.post("nurse", "confirm-step")
    ward.server.advance(minutes=3)
    b.post("nurse", "reactions", {"symptoms": ["confusion"]})
    b.post("physician", "reactions/1/resolve", {"brown_grade": 3})
    ward.server.advance(minutes=5)
    b.vitals()
    page, errors = tablet(browser, ward, "physician", f"/sessions/{b.sid}")
    page.tap("text=Resume…")
    assert page.is_checked('#resume-dialog input[value="back2"]')  # the most conservative
    assert page.input_value('#resume-dialog select[name="stretch"]') == "2"
    assert "Brown grade 3" in page.inner_text("#resume-dialog [data-advice]")
    page.wait_for_selector("#resume-dialog .preview-table tbody tr")
    rows = page.locator("#resume-dialog .preview-table tbody tr")
    assert rows.count() == 12 - 3 + 3  # steps 1–2 again, step 3, then 4–12
    assert "repeats step 1" in rows.first.inner_text()
    assert b.get()["status"] == "paused"  # a preview writes nothing
    page.fill('#resume-dialog input[name="override_reason"]', "patient well, allergist present")
    page.tap("#resume-dialog button[type=submit]")
    view = wait_for(b.get, lambda v: v["status"] == "step_due")
    assert view["plan"]["steps"][3]["origin"] == "step_back"
    assert not errors, errors


def test_a_saved_set_is_amended_from_the_tablet(ward: Ward, browser) -> None:
    b = ward.running()
    ward.server.advance(minutes=5)
    b.vitals()
    page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}")
    page.locator("#vitals-history button", has_text="Amend").first.tap()
    assert page.input_value('#amend-dialog input[name="systolic_bp"]') == "124"
    page.fill('#amend-dialog input[name="heart_rate"]', "75")
    page.fill('#amend-dialog input[name="reason"]', "typed 72 for 75")
    page.tap("#amend-dialog button[type=submit]")
    view = wait_for(b.get, lambda v: any(s["version"] == 2 for s in v["vitals"]))
    amended = next(s for s in view["vitals"] if s["version"] == 2)
    assert amended["values"]["heart_rate"]["value"] == "75"
    assert amended["amendment_reason"] == "typed 72 for 75"
    assert not errors, errors


def test_a_physician_changes_a_threshold_from_the_tablet(ward: Ward, browser) -> None:
    b = ward.running()
    page, errors = tablet(browser, ward, "physician", f"/sessions/{b.sid}")
    page.click("#thresholds summary")
    page.tap("text=Change thresholds for this session…")
    page.fill('#thresholds-dialog input[name="sbp_low_mmhg"]', "100")
    page.fill('#thresholds-dialog input[name="reason"]', "baseline hypertension")
    page.tap("#thresholds-dialog button[type=submit]")
    view = wait_for(b.get, lambda v: v["thresholds"]["overrides"] != {})
    assert view["thresholds"]["overrides"] == {"sbp_low_mmhg": "100"}
    assert not errors, errors


def test_the_nurses_home_lists_the_sessions_now(ward: Ward, browser) -> None:
    due = ward.step_due()
    ready = ward.ready()
    context = browser.new_context(viewport=LANDSCAPE)
    page = context.new_page()
    sign_in(page, ward.base, ward.accounts["nurse"])
    rows = page.locator("#active-sessions tbody tr")
    assert rows.count() >= 2
    first = rows.first.inner_text()
    assert "Step due" in first and "pump change due now" in first  # the most urgent first
    assert any("Ready to start" in rows.nth(i).inner_text() for i in range(rows.count()))
    page.locator("#active-sessions a").first.click()
    page.wait_for_url(f"{ward.base}/sessions/{due.sid}")
    assert ready.sid


# --- screenshots of every bedside state at both sizes -------------------------------------------


def test_every_bedside_state_photographed_at_both_sizes(
    ward: Ward, browser, artifacts: Path
) -> None:
    planned = ward.session()
    due = ward.step_due()
    paused = ward.reacting()
    observing = ward.ready(template="doses", doses="10,20", dose=None, interval="15")
    observing.post("nurse", "start")
    for _ in range(2):
        ward.server.advance(minutes=5)
        observing.vitals()
        ward.server.advance(minutes=11)
        wait_for(observing.get, lambda v: v["status"] in ("step_due", "observing"))
        if observing.get()["status"] == "step_due":
            observing.post("nurse", "confirm-step")
    completed = ward.ready(template="doses", doses="10,20", dose=None, interval="15")
    completed.post("nurse", "start")
    for _ in range(2):
        ward.server.advance(minutes=5)
        completed.vitals()
        ward.server.advance(minutes=11)
        wait_for(completed.get, lambda v: v["status"] in ("step_due", "observing"))
        if completed.get()["status"] == "step_due":
            completed.post("nurse", "confirm-step")
    ward.server.advance(minutes=31)
    completed.vitals()
    wait_for(completed.get, lambda v: v["observation_done"])
    completed.post("nurse", "complete")
    aborted = ward.reacting()
    aborted.post(
        "physician",
        "abort",
        {
            "reason": "anaphylaxis",
            "reaction_brown_grade": 3,
            "reaction_outcome": "recovering",
        },
    )
    # Last, so that no later wait moves them on: one ready, one running five minutes in.
    ready = ward.ready()
    running = ward.running()
    ward.server.advance(minutes=5)
    running.post(
        "nurse",
        "vitals",
        {**OK_VITALS, "heart_rate": 78, "consciousness": "A", "supplemental_oxygen": False},
    )
    states = {
        "planned": planned,
        "ready": ready,
        "running": running,
        "step-due": due,
        "paused": paused,
        "observing": observing,
        "completed": completed,
        "aborted": aborted,
    }
    for name, size in SIZES.items():
        for state, b in states.items():
            page, errors = tablet(browser, ward, "nurse", f"/sessions/{b.sid}", size)
            page.screenshot(path=str(artifacts / f"tablet-{state}-{name}.png"))
            assert not errors, (state, errors)
            page.close()
