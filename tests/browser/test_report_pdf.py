"""The session report in Debian's Chromium: printed to an A4 PDF (as a reviewer's "Save as
PDF" would), and photographed at 1024 wide on screen and in print media for the README
(docs/screenshots/report.png)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.conftest import sign_in
from tests.session.conftest import SessionServer, session_body, wait_for
from tests.session.conftest import session_server as session_server
from tests.session.conftest import team as team
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient

pytestmark = pytest.mark.browser


def completed_session(server: SessionServer, team: dict[str, SignedInClient]) -> int:
    """A whole session through the API: premedication, a reaction treated and graded, a
    resume that repeats the step at half speed, the rest of the ladder, observation, complete."""
    nurse = team["nurse"]
    patient = nurse.post(
        "/api/v1/patients",
        json={
            "mrn": f"MRN{secrets.randbelow(10**8):08d}",
            "family_name": "Okafor",
            "given_name": "Ada",
            "birth_date": "1968-03-02",
            "sex": "female",
            "weight_kg": "64.5",
            "asthma": False,
        },
    )
    assert patient.status_code == 201, patient.text
    created = nurse.post("/api/v1/sessions", json=session_body(patient.json()["id"]))
    assert created.status_code == 201, created.text
    b = Bedside(server, team, created.json()["id"])
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    b.post("nurse", "checklist", {"item": "consent"})
    b.post("nurse", "checklist", {"item": "rescue_kit"})
    b.post(
        "nurse",
        "checklist",
        {
            "item": "premedications",
            "premedications": [
                {
                    "drug": "cetirizine",
                    "dose": "10 mg",
                    "route": "PO",
                    "given_at": server.clock.now().isoformat(),
                }
            ],
        },
    )
    b.vitals()
    b.post("nurse", "start")
    for _ in range(6):
        b.finish_step()
    server.advance(minutes=6)
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 108, "heart_rate": 96})
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria", "flushing"]})
    alarm = next(a for a in view["alarms"]["items"] if a["condition"] == "reaction")
    server.advance(seconds=20)
    b.post("physician", f"alarms/{alarm['id']}/acknowledge")
    server.advance(minutes=1)
    b.post(
        "nurse",
        "reactions/1/treatments",
        {"drug": "diphenhydramine", "dose": "25 mg", "route": "IV"},
    )
    server.advance(minutes=15)
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1})
    b.vitals()
    b.post("physician", "resume", {"resume_from": "repeat", "stretch": "1.5"})
    server.advance(minutes=1)
    view = b.post("nurse", "confirm-step")
    while view["status"] in ("running", "step_due"):
        view = b.finish_step()
    server.advance(minutes=10)
    b.vitals()
    server.advance(minutes=25)
    wait_for(b.get, lambda v: v["observation_done"])
    assert b.post("nurse", "complete")["status"] == "completed"
    return b.sid


def pdf_pages(data: bytes) -> int:
    """Page objects in a PDF (Chromium writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", data))


def test_the_report_prints_to_a_legible_pdf(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    accounts,
    browser,
    artifacts: Path,
) -> None:
    # The session is built before Playwright's loop starts on this thread (browser fixture).
    sid = completed_session(session_server, team)
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, session_server.base_url, accounts["auditor"])
    page.goto(f"{session_server.base_url}/sessions/{sid}/report")
    assert page.locator("h1").inner_text() == "Desensitization report"
    assert page.locator("#back-to-bedside").is_visible()
    # Nothing wider than the page on screen: no sideways scroll at 1024.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    page.screenshot(path=str(artifacts / "report-screen.png"), full_page=True)

    pdf = artifacts / "report-a4.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True, prefer_css_page_size=True)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = pdf_pages(data)
    assert 2 <= pages <= 12, pages
    assert 40_000 < len(data) < 5_000_000, len(data)
    letter = artifacts / "report-letter.pdf"
    page.pdf(path=str(letter), format="Letter", print_background=True)
    assert 2 <= pdf_pages(letter.read_bytes()) <= 12

    # Print media: the navigation bar and the site header are gone, the report stays.
    page.emulate_media(media="print")
    assert not page.locator("#back-to-bedside").is_visible()
    assert not page.locator(".site-header").is_visible()
    assert page.locator("#administration-table").is_visible()
    # The first printed page as an image: pdftoppm when it is installed; otherwise the page in
    # print media at the width of an A4 sheet at 96 dpi, as a whole (docs/screenshots/report.png).
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm:
        subprocess.run(
            [
                pdftoppm,
                "-png",
                "-r",
                "110",
                "-f",
                "1",
                "-l",
                "1",
                str(pdf),
                str(artifacts / "report-a4"),
            ],
            check=True,
            timeout=60,
        )
    page.set_viewport_size({"width": 794, "height": 1123})
    page.screenshot(path=str(artifacts / "report-print.png"), full_page=True)
    assert errors == []
    context.close()
