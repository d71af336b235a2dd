"""Checks before the pump on the bedside tablet, in Debian's Chromium: the scan field a
keyboard-wedge scanner types into, the tablet's camera reading a label's QR code (a video file
the browser takes for its camera), a wrong bag and a voided label refused beside the field with
the HIGH alarm on the page, and the second clinician's signature of a high-alert drug.

One server (bags checked by scan, carboplatin high-alert) and one browser for the module; each
test sets its session up through the API and uses the browser for what it is about. SQLite
only: the browser does not depend on the database (tests/labels covers PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.conftest import run_server
from tests.labels.conftest import HIGH_ALERT, Scanning, made_ready
from tests.labels.test_scan_api import run_to_due
from tests.session.conftest import SessionServer, wait_for
from tests.support import Account, SignedInClient, create_account, run_sync_sql

LANDSCAPE = {"width": 1024, "height": 768}
LIVE = "() => document.body.dataset.live === 'live'"
VIDEO_SIZE = (640, 480)
VIDEO_FRAMES = 30


@dataclass
class Ward:
    server: SessionServer
    team: dict[str, SignedInClient]
    accounts: dict[str, Account]
    database_url: str
    camera: Path  # the video file the browser's camera plays

    @property
    def base(self) -> str:
        return self.server.base_url

    def ready(self, drug: str = "ceftazidime") -> Scanning:
        return made_ready(self.server, self.team, drug)


def write_camera(path: Path, text: str | None) -> None:
    """A YUV4MPEG2 video (4:2:0, grey) of a label's QR code drawn big on white; an empty
    white picture when `text` is None."""
    picture = Image.new("L", VIDEO_SIZE, 255)
    if text is not None:
        qr = segno.make(text, error="m")
        side = min(VIDEO_SIZE) - 60
        scale = side // qr.symbol_size(border=4)[0]
        rows = [bytes(0 if dark else 255 for dark in row) for row in qr.matrix_iter(scale=scale)]
        code = Image.frombytes("L", (len(rows[0]), len(rows)), b"".join(rows))
        picture.paste(code, ((VIDEO_SIZE[0] - code.width) // 2, (VIDEO_SIZE[1] - code.height) // 2))
    width, height = VIDEO_SIZE
    chroma = bytes([128]) * ((width // 2) * (height // 2) * 2)
    frame = b"FRAME\n" + picture.tobytes() + chroma
    header = f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * VIDEO_FRAMES)


@pytest.fixture(scope="module")
def ward(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ward]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the tablet in the browser is the same on both databases: SQLite only")
    app = create_app(
        Settings(
            database_url=database_url,
            env="test",
            clock_mode="manual",
            session_idle_minutes=24 * 60,
            session_absolute_hours=7 * 24,
            live_heartbeat_seconds=1.0,
            scan_to_verify=True,
            high_alert_drugs=HIGH_ALERT,
        )
    )
    camera = tmp_path_factory.mktemp("camera") / "label.y4m"
    write_camera(camera, None)
    roles = ("nurse", "physician", "pharmacist")
    with ExitStack() as stack:
        base = stack.enter_context(run_server(app))
        accounts = {r: create_account(database_url, r) for r in roles}
        accounts["second_nurse"] = create_account(database_url, "nurse", prefix="nurse-two")
        team = {r: SignedInClient(base, accounts[r]) for r in roles}
        for client in team.values():
            stack.callback(client.close)
        yield Ward(SessionServer(base, app), team, accounts, database_url, camera)


@pytest.fixture(scope="module")
def chromium(ward: Ward) -> Iterator[object]:
    """One browser for the module, its camera the video file `ward.camera` (rewritten by the
    camera test before it starts the camera)."""
    if not CHROMIUM.exists():
        pytest.skip(f"install Debian's chromium ({CHROMIUM}) to run the browser tests")
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={ward.camera}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tablet(ward: Ward, chromium) -> Iterator:
    """tablet(session id, role) -> the bedside page of that session, signed in, live."""
    contexts = []
    errors: list[str] = []

    def open_page(sid: int, role: str = "nurse"):
        context = chromium.new_context(viewport=LANDSCAPE, has_touch=True)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, ward.base, ward.accounts[role])
        page.goto(f"{ward.base}/sessions/{sid}")
        page.wait_for_function(LIVE, timeout=5000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, errors


def focused(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def wait_label(page, text: str) -> None:
    page.wait_for_function(
        "(text) => document.getElementById('scan-label').textContent === text", arg=text
    )


def scanned_by(ward: Ward, sid: int) -> list[tuple[str, str, bool]]:
    """(kind, method, ok) of every scan recorded for the session, oldest first."""
    rows = run_sync_sql(
        ward.database_url,
        "SELECT kind, data_json FROM session_event WHERE session_id = :sid"
        " AND kind IN ('scan_checked', 'scan_refused') ORDER BY seq",
        {"sid": sid},
    )
    return [
        (json.loads(data)["kind"], json.loads(data)["method"], kind == "scan_checked")
        for kind, data in rows
    ]


def to_bag_3(b: Scanning, labels: dict[int, dict]) -> dict:
    """Started (wristband and bag 1 scanned), then step after step, each new bag's label
    scanned, to the first step due that hangs bag 3."""
    b.scan("wristband", b.mrn)
    b.scan("bag", labels[1]["code"])
    b.post("nurse", "start")
    for _ in range(len(b.get()["plan"]["steps"])):
        view = run_to_due(b)
        due = view["checks"]["bag_due"]
        if due == 3:
            return view
        if due is not None:
            b.scan("bag", labels[due]["code"])
        b.server.advance(minutes=1)
        b.post("nurse", "confirm-step")
    raise AssertionError("no step of the plan hangs bag 3")


# --- a. the keyboard-wedge scanner ------------------------------------------------------------


def test_a_scanner_types_the_wristband_then_the_label_and_the_start_is_accepted(
    ward: Ward, tablet
) -> None:
    b = ward.ready()
    labels = b.labels()
    page = tablet(b.sid)
    assert page.is_visible("#checks-panel")
    assert page.inner_text("#scan-label") == "Scan the patient's wristband"
    assert focused(page) == "scan-code"  # the scanner types into the page as it opens

    page.keyboard.type(b.mrn)
    page.keyboard.press("Enter")
    wait_label(page, "Scan the label of bag 1")
    assert "Wristband checked" in page.inner_text("#scan-result")
    assert focused(page) == "scan-code" and page.input_value("#scan-code") == ""

    page.keyboard.type(labels[1]["code"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#checks-panel", state="hidden")
    view = b.get()
    assert view["checks"]["bag_checked"] == 1 and not view["checks"]["wristband_due"]
    assert scanned_by(ward, b.sid) == [("wristband", "scanner", True), ("bag", "scanner", True)]

    page.click("#actions >> text=Start step 1")
    wait_for(b.get, lambda v: v["status"] == "running")
    page.wait_for_selector("#status-panel .badge-running")


# --- b. the camera ----------------------------------------------------------------------------


def test_the_camera_reads_the_labels_qr_code(ward: Ward, tablet) -> None:
    b = ward.ready()
    b.scan("wristband", b.mrn)
    label = b.labels()[1]
    write_camera(ward.camera, label["code"])
    page = tablet(b.sid)
    wait_label(page, "Scan the label of bag 1")

    page.click("#scan-camera")
    page.wait_for_selector("#scan-result.scan-result-ok", state="attached", timeout=15_000)
    assert page.text_content("#scan-result") == "Label of bag 1 checked: the right bag."
    assert b.get()["checks"]["bag_checked"] == 1
    assert scanned_by(ward, b.sid)[-1] == ("bag", "camera", True)
    page.wait_for_selector("#checks-panel", state="hidden")
    assert page.evaluate("document.getElementById('scan-video').srcObject") is None  # stopped


# --- c. a wrong bag ---------------------------------------------------------------------------


def test_a_wrong_bag_is_refused_beside_the_field_with_the_high_alarm(ward: Ward, tablet) -> None:
    b = ward.ready()
    labels = b.labels()
    view = to_bag_3(b, labels)
    assert view["status"] == "step_due" and view["checks"]["bag_due"] == 3
    page = tablet(b.sid)
    wait_label(page, "Scan the label of bag 3")
    assert focused(page) == "scan-code"

    page.keyboard.type(labels[2]["code"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#scan-result.scan-result-error")
    assert page.inner_text("#scan-result").startswith("Wrong bag: scanned bag 2 of 3")
    alarm = page.wait_for_selector('#alarm-banner li.alarm-high[data-condition="wrong_bag"]')
    assert "Wrong bag" in alarm.inner_text()
    assert b.get()["checks"]["bag_checked"] is None
    assert (
        page.input_value("#scan-code") == labels[2]["code"]
    )  # selected: the next scan replaces it
    page.keyboard.type(labels[3]["code"])
    page.keyboard.press("Enter")
    wait_for(b.get, lambda v: v["checks"]["bag_checked"] == 3)


# --- d. a voided label ------------------------------------------------------------------------


def test_a_voided_label_is_refused(ward: Ward, tablet) -> None:
    b = ward.ready()
    old = b.labels()[1]
    b.post("pharmacist", "bags/1/labels")  # a reprint voids the copy before
    b.scan("wristband", b.mrn)
    page = tablet(b.sid)
    wait_label(page, "Scan the label of bag 1")
    page.fill("#scan-code", old["code"])
    page.press("#scan-code", "Enter")
    page.wait_for_selector("#scan-result.scan-result-error")
    assert "voided" in page.inner_text("#scan-result")
    assert b.get()["checks"]["bag_checked"] is None
    assert scanned_by(ward, b.sid)[-1] == ("bag", "scanner", False)

    # The new copy's code typed by hand, as printed under its QR code: recorded as typed.
    page.click("#scan-manual")
    assert page.get_attribute("#scan-manual", "aria-pressed") == "true"
    assert page.is_visible("#scan-manual-note") and focused(page) == "scan-code"
    page.keyboard.type(b.labels()[1]["printed"])
    page.keyboard.press("Enter")
    wait_for(b.get, lambda v: v["checks"]["bag_checked"] == 1)
    assert scanned_by(ward, b.sid)[-1] == ("bag", "manual", True)


# --- a physician goes on without a scan ---------------------------------------------------------


def test_a_physician_goes_on_without_the_wristband_scan_with_a_reason(ward: Ward, tablet) -> None:
    b = ward.ready()
    nurse = tablet(b.sid)
    assert not nurse.is_visible("text=Go on without the scan…")  # a physician's override
    page = tablet(b.sid, "physician")
    page.click("#checks-due >> text=Go on without the scan…")
    assert "wristband was not scanned" in page.inner_text("#scan-override-dialog")
    page.fill("#scan-override-dialog input[name=reason]", "wristband unreadable, ID checked aloud")
    page.click("#scan-override-dialog button[type=submit]")
    wait_label(page, "Scan the label of bag 1")
    view = b.get()
    assert not view["checks"]["wristband_due"] and view["checks"]["bag_checked"] is None


# --- e. the double check of a high-alert drug -------------------------------------------------


def test_the_second_clinician_signs_the_start_of_a_high_alert_drug(ward: Ward, tablet) -> None:
    b = ward.ready(HIGH_ALERT)
    page = tablet(b.sid)
    assert page.is_visible("#scan-form") and page.is_visible("#cosign")
    page.evaluate("window.scrollTo(0, document.getElementById('checks-panel').offsetTop - 8)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bedside-scan-check.png"))  # for docs/screenshots

    b.scan("wristband", b.mrn)
    b.scan("bag", b.labels()[1]["code"])
    page.wait_for_selector("#scan-form", state="hidden")
    assert page.is_visible("#cosign")
    assert page.get_attribute("#cosigner-password", "autocomplete") == "off"

    me = ward.accounts["nurse"]
    page.fill("#cosigner-username", me.username)
    page.fill("#cosigner-password", me.password)
    page.click("#actions >> text=Start step 1")
    page.wait_for_selector("#cosign-result.scan-result-error")
    assert "another clinician" in page.inner_text("#cosign-result")
    assert b.get()["status"] == "ready"

    second = ward.accounts["second_nurse"]
    page.fill("#cosigner-username", second.username)
    page.fill("#cosigner-password", second.password)
    page.press("#cosigner-password", "Enter")  # Enter signs and starts
    view = wait_for(b.get, lambda v: v["status"] == "running")
    assert view["checks"]["double_check_due"] is False
    page.wait_for_selector("#checks-panel", state="hidden")
    assert page.input_value("#cosigner-password") == ""
