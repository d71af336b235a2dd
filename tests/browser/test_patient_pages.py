"""The patient pages and the new-session page in a real browser: register a patient through the
form, draft a session whose preview table follows the dose without a reload, submit it; and the
history page of a patient who reacted, on a tablet and on a phone."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.session.conftest import SessionServer

# The manual-clock server and its signed-in team, fixtures of tests/session/conftest.py.
from tests.session.conftest import session_server as session_server
from tests.session.conftest import team as team
from tests.session.test_history_api import patient_of, reaction_at_step_3
from tests.support import Account, SignedInClient

pytestmark = pytest.mark.browser

TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


def open_page(browser: Browser, base_url: str, viewport: dict[str, int], account: Account) -> Page:
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Refused input answers 422 on purpose; Chromium logs every 4xx, so leave those out.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 422" not in msg.text
            else None
        ),
    )
    sign_in(page, base_url, account)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def assert_touch_targets(page: Page, *selectors: str) -> None:
    for selector in selectors:
        for box in [el.bounding_box() for el in page.locator(selector).all()]:
            assert box is not None and box["height"] >= 48, (selector, box)


def assert_fits(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_register_a_patient_and_draft_a_session_with_the_live_preview(
    browser: Browser, live_server: str, accounts: dict[str, Account], artifacts: Path
) -> None:
    page = open_page(browser, live_server, TABLET, accounts["nurse"])
    page.goto(f"{live_server}/patients")
    page.click("#new-patient")
    page.wait_for_url(f"{live_server}/patients/new")

    family = f"Browser{secrets.token_hex(3)}"
    page.fill("#input-mrn", f"B-{secrets.token_hex(4)}")
    page.fill("#input-family_name", family)
    page.fill("#input-given_name", "Rosalind")
    page.fill("#input-birth_date", "1958-07-25")
    page.select_option("#input-sex", "female")
    page.fill("#input-weight_kg", "64")
    page.check("#input-asthma-no")
    assert_touch_targets(page, "#input-mrn", "#input-sex", ".choice", "#save-patient")
    page.click("#save-patient")
    page.wait_for_url(re.compile(r".*/patients/\d+$"))
    expect(page.locator("#patient-name")).to_have_text(f"{family}, Rosalind")
    expect(page.locator("#no-history")).to_be_visible()

    page.click("#new-session")
    page.wait_for_url(re.compile(r".*/sessions/new\?patient_id=\d+$"))
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    expect(page.locator("#preview-placeholder")).to_be_visible()

    page.fill("#input-drug", "ceftazidime")
    page.check("#reaction-urticaria")
    page.fill("#input-dose", "2000")
    rows = page.locator("#steps-table tbody tr")
    expect(rows).to_have_count(12)
    expect(page.locator("#total-minutes")).to_have_text("339.375 min")
    expect(rows.last.locator("td").nth(5)).to_have_text("2000.000")

    page.fill("#input-dose", "1000")  # the table follows the dose
    expect(rows.last.locator("td").nth(5)).to_have_text("1000.000")
    page.fill("#input-dose", "-1")  # refused beside the field, in place
    expect(page.locator("#error-dose")).to_have_text("dose must be greater than 0, got -1")
    expect(page.locator("#steps-table")).to_have_count(0)
    page.fill("#input-dose", "1000")
    expect(page.locator("#error-dose")).to_have_text("")
    page.select_option("#input-template", "brigham-8")
    expect(rows).to_have_count(8)
    assert page.evaluate("window.__sameDocument") is True
    assert page.url.endswith("/sessions/new?" + page.url.split("?", 1)[1])  # address unchanged

    assert_touch_targets(
        page,
        "#input-drug",
        "#input-route",
        "#screening .check",
        "#input-template",
        "#input-dose",
        "#submit-session",
    )
    assert_fits(page, TABLET["width"])
    page.screenshot(path=str(artifacts / "new-session-tablet.png"), full_page=True)

    page.click("#submit-session")
    page.wait_for_url(re.compile(r".*/sessions/\d+$"))  # the bedside page (built separately)
    session_id = int(page.url.rsplit("/", 1)[1])
    created = page.request.get(f"{live_server}/api/v1/sessions/{session_id}").json()
    assert (created["template"], created["target_dose"], created["drug"]) == (
        "brigham-8",
        "1000",
        "ceftazidime",
    )
    assert created["status"] == "planned"
    assert page.errors == []  # type: ignore[attr-defined]


def test_history_and_copy_pages_on_a_tablet_and_a_phone(
    browser: Browser,
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    artifacts: Path,
) -> None:
    b = reaction_at_step_3(session_server, team)
    patient = patient_of(b)
    base = session_server.base_url
    physician = team["physician"].account

    page = open_page(browser, base, TABLET, physician)
    page.goto(f"{base}/patients/{patient}")
    expect(page.locator(".verdict-title")).to_have_text(
        "Not desensitized: a full desensitization is needed"
    )
    expect(page.locator(".reactions-table tbody tr")).to_have_count(1)
    assert_touch_targets(page, ".copy-plan", "#new-session", ".sessions-table .row-link")
    assert_fits(page, TABLET["width"])
    page.screenshot(path=str(artifacts / "patient-history.png"), full_page=True)

    page.click(".copy-plan")
    page.wait_for_url(re.compile(rf".*/sessions/new\?patient_id={patient}&copy_from={b.sid}$"))
    expect(page.locator("#copy-title")).to_have_text(f"Copying the plan of session {b.sid}")
    expect(page.locator("#drug-history .verdict-title")).to_have_text(
        "Not desensitized: a full desensitization is needed"
    )
    assert_fits(page, TABLET["width"])
    page.screenshot(path=str(artifacts / "new-session-copy.png"), full_page=True)

    page.goto(f"{base}/sessions/new?patient_id={patient}")
    page.fill("#input-drug", "ceftazidime")
    page.check("#reaction-urticaria")
    page.check("#reaction-angioedema")
    page.fill("#input-dose", "2000")
    expect(page.locator("#steps-table tbody tr")).to_have_count(12)
    page.screenshot(path=str(artifacts / "new-session.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]

    phone = open_page(browser, base, PHONE, team["nurse"].account)
    phone.goto(f"{base}/patients/{patient}")
    expect(phone.locator(".verdict-title")).to_be_visible()
    assert_fits(phone, PHONE["width"])
    phone.screenshot(path=str(artifacts / "patient-history-phone.png"), full_page=True)
    phone.goto(f"{base}/sessions/new?patient_id={patient}")
    phone.fill("#input-dose", "2000")
    expect(phone.locator("#steps-table tbody tr")).to_have_count(12)
    assert_fits(phone, PHONE["width"])
    phone.screenshot(path=str(artifacts / "new-session-phone.png"), full_page=True)
    phone.goto(f"{base}/patients")
    assert_fits(phone, PHONE["width"])
    assert phone.errors == []  # type: ignore[attr-defined]
