"""The sessions list for auditors and physicians: every session found by patient, drug, date,
state and reaction, each linking to its timeline and report; a bad filter is a clear 422 that
shows nothing. Real HTTP, both databases."""

from __future__ import annotations

import secrets
from datetime import timedelta

from bs4 import BeautifulSoup

from app import localtime
from tests.session.conftest import SessionServer, session_body
from tests.session.test_api_walk import Bedside
from tests.support import SignedInClient


def patient_named(client: SignedInClient, family: str) -> tuple[int, str]:
    mrn = f"L{secrets.token_hex(5)}".upper()
    response = client.post(
        "/api/v1/patients",
        json={
            "mrn": mrn,
            "family_name": family,
            "given_name": "Ada",
            "birth_date": "1961-02-03",
            "weight_kg": 64,
            "asthma": False,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], mrn


def rows(client: SignedInClient, query: str, status: int = 200) -> dict[int, str]:
    response = client.get(f"/sessions?{query}")
    assert response.status_code == status, response.text
    page = BeautifulSoup(response.text, "html.parser")
    found = {}
    for tr in page.select("#sessions-table tbody tr[id]"):
        found[int(tr["id"].removeprefix("session-"))] = tr.get_text(" ", strip=True)
    return found


def started_with_a_reaction(server: SessionServer, team, sid: int) -> None:
    b = Bedside(server, team, sid)
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    b.post(
        "nurse",
        "checklist",
        {"item": "premedications", "premedications": [], "none_reason": "not indicated"},
    )
    b.vitals()
    b.post("nurse", "start")
    server.advance(minutes=3)
    b.post("nurse", "reactions", {"symptoms": ["urticaria"]})


def test_auditors_find_sessions_by_patient_drug_state_reaction_and_day(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    family = f"Listed{secrets.token_hex(3)}"
    patient, mrn = patient_named(team["nurse"], family)
    quiet = team["nurse"].post("/api/v1/sessions", json=session_body(patient)).json()["id"]
    reacting = (
        team["nurse"]
        .post("/api/v1/sessions", json={**session_body(patient), "drug": "carboplatin"})
        .json()["id"]
    )
    started_with_a_reaction(session_server, team, reacting)
    auditor = team["auditor"]

    by_name = rows(auditor, f"patient={family.lower()}")
    assert set(by_name) == {quiet, reacting}
    assert set(rows(auditor, f"patient={mrn[2:8]}")) == {quiet, reacting}
    assert set(rows(auditor, f"patient={family}&drug=CARBO")) == {reacting}
    assert set(rows(auditor, f"patient={family}&reacted=yes")) == {reacting}
    assert set(rows(auditor, f"patient={family}&reacted=no")) == {quiet}
    assert set(rows(auditor, f"patient={family}&state=paused")) == {reacting}
    assert set(rows(auditor, f"patient={family}&state=planned")) == {quiet}
    assert "1 · not graded" in by_name[reacting]
    assert "step 1" in by_name[reacting]  # the first step, counted from 1 as on the bedside

    today = session_server.clock.now().astimezone(localtime.zone()).date()
    assert set(rows(auditor, f"patient={family}&since={today}&until={today}")) == {
        quiet,
        reacting,
    }
    tomorrow = today + timedelta(days=1)
    assert rows(auditor, f"patient={family}&since={tomorrow}") == {}

    # Each row links to the session's timeline and report, which open for the auditor.
    page = BeautifulSoup(auditor.get(f"/sessions?patient={family}").text, "html.parser")
    links = {a["href"] for a in page.select(f"#session-{reacting} a")}
    assert {f"/sessions/{reacting}/timeline", f"/sessions/{reacting}/report"} <= links
    assert auditor.get(f"/sessions/{reacting}/timeline").status_code == 200
    assert auditor.get(f"/sessions/{reacting}/report").status_code == 200

    # Physicians may search too; the bedside roles are refused.
    assert set(rows(team["physician"], f"patient={family}")) == {quiet, reacting}
    assert team["nurse"].get("/sessions").status_code == 403
    assert team["pharmacist"].get("/sessions").status_code == 403


def test_a_bad_filter_says_what_is_wrong_and_lists_nothing(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    auditor = team["auditor"]
    for query, field, words in [
        ("since=yesterday", "since", "must be a date"),
        ("since=2026-12-08&until=2026-12-01", "since", "is after until"),
        ("state=exploded", "state", "State must be one of"),
        ("reacted=maybe", "reacted", "yes, no or blank"),
        ("patient=" + "x" * 101, "patient", "at most 100 characters"),
        ("drug=a%00b", "drug", "plain text"),
        ("patient=Smith%E2%80%AE", "patient", "plain text"),
        ("until=9999-12-31", "until", "must be between"),
        ("since=0001-01-01", "since", "must be between"),
    ]:
        response = auditor.get(f"/sessions?{query}")
        assert response.status_code == 422, query
        page = BeautifulSoup(response.text, "html.parser")
        error = page.select_one(f'[data-error-for="{field}"]')
        assert error is not None and words in error.get_text(), (query, response.text[-800:])
        assert page.select("#sessions-table tbody tr[id]") == []
    too_long = auditor.get("/sessions?patient=" + "x" * 500)
    assert too_long.status_code == 422
