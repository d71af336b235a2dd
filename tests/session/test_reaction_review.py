"""The reaction, clinically right from the first sign to the final record: each finding of the
clinical review reproduced through the real HTTP API (both databases) and answered as an
allergist would."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup
from websockets.sync.client import connect

from app.audit import AuditEvent
from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.live.test_websockets import cookie, ws_url
from tests.review.test_exports import audit_entries
from tests.session.conftest import SessionServer, new_patient, wait_for
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.session.test_history_api import history
from tests.support import SignedInClient

CODES = re.compile(r"sbp_low_absolute|sbp_fall_percent|spo2_low\b|symptom_brown|news2_urgent")


def reacting(server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    """Step 1 running; six minutes in, SBP 85 and SpO2 89 (baseline 124 / 98), confirmed."""
    b = ready_session(server, team)
    b.post("nurse", "start")
    server.advance(minutes=6)
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 85, "spo2": 89, "confirm": True})
    return b


def alarms_by_condition(view: dict) -> dict[str, dict]:
    return {a["condition"]: a for a in view["alarms"]["items"] if a["active"]}


# --- 1. the grade suggestion reads the worst of the reaction's window -------------------------


def test_the_suggested_grade_never_gets_milder_as_the_patient_recovers(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reacting(session_server, team)
    first = b.get()["reactions"][0]["suggested_grade"]
    assert (first["brown_grade"], first["ctcae_grade"]) == (3, 4)
    for _ in range(2):  # recovery vitals, every 5 minutes while paused
        session_server.advance(minutes=5)
        b.vitals()
    later = b.get()["reactions"][0]["suggested_grade"]
    assert (later["brown_grade"], later["ctcae_grade"]) == (3, 4)
    assert any("systolic 85 mmHg" in r for r in later["reasons"])
    assert any("SpO2 89 %" in r for r in later["reasons"])
    assert later == first


# --- 2. findings in words, never codes --------------------------------------------------------


def test_findings_are_kept_in_words_apart_from_symptoms_and_no_code_reaches_a_person(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reacting(session_server, team)
    (reaction,) = b.get()["reactions"]
    assert reaction["symptoms"] == []  # no symptom was ticked
    assert reaction["findings"][:2] == [
        "systolic 85 mmHg, 31.4 % below baseline 124 mmHg",
        "SpO2 89 %",
    ]
    alarm = alarms_by_condition(b.get())["reaction"]
    assert alarm["value"].startswith("systolic 85 mmHg, 31.4 % below baseline 124 mmHg; SpO2 89 %")
    assert len([a for a in b.get()["alarms"]["items"] if a["kind"] == "physiological"]) == 1
    session_server.advance(minutes=5)
    b.vitals()
    b.post("physician", "reactions/1/resolve", {"brown_grade": 3, "ctcae_grade": 4})
    patient = b.get()["patient_id"]
    for path in (
        f"/sessions/{b.sid}",
        f"/sessions/{b.sid}/report",
        f"/sessions/{b.sid}/timeline",
        f"/patients/{patient}",
    ):
        page = team["physician"].get(path)
        assert page.status_code == 200, path
        # what a person reads (form field names are not read)
        text = BeautifulSoup(page.text, "html.parser").get_text(" ")
        assert not CODES.search(text), (path, CODES.findall(text))
    assert "SpO2 89 %" in team["physician"].get(f"/sessions/{b.sid}/report").text
    bundle = team["physician"].get(f"/sessions/{b.sid}/fhir").json()
    (event,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AdverseEvent"
    ]
    text = event["event"]["text"]
    assert "systolic 85 mmHg" in text and "SpO2 89 %" in text
    assert not CODES.search(text)
    for past in history(team["physician"], patient)["drugs"][0]["sessions"]:
        for r in past["reactions"]:
            assert not any(CODES.search(s) for s in r["symptoms"])


# --- 3. abort with an open reaction -----------------------------------------------------------


def test_abort_closes_an_open_reaction_graded_with_its_outcome(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reacting(session_server, team)
    refused = b.post("physician", "abort", {"reason": "anaphylaxis, to the ICU"}, expect=422)
    assert "reaction_brown_grade" in refused["detail"] and "reaction_outcome" in refused["detail"]
    assert b.get()["status"] == "paused"  # nothing changed
    b.post(
        "physician",
        "abort",
        {
            "reason": "anaphylaxis, to the ICU",
            "reaction_brown_grade": 3,
            "reaction_ctcae_grade": 4,
            "reaction_outcome": "recovering",
        },
    )
    view = b.get()
    (reaction,) = view["reactions"]
    assert view["status"] == "aborted"
    assert reaction["resolved_at"] is not None and reaction["closed_by_abort"]
    assert (reaction["brown_grade"], reaction["ctcae_grade"], reaction["outcome"]) == (
        3,
        4,
        "recovering",
    )
    assert "reaction" not in {
        a["condition"] for a in view["alarms"]["items"] if a["active"] and not a["latched"]
    }
    b.post("physician", "reactions/1/resolve", {"brown_grade": 3}, expect=409)  # closed
    # what it suggests for the next plan, and how it is exported
    patient = view["patient_id"]
    codes = {s["code"] for s in history(team["physician"], patient)["drugs"][0]["suggestions"]}
    assert {"template", "icu_setting"} <= codes
    bundle = team["physician"].get(f"/sessions/{b.sid}/fhir").json()
    (event,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AdverseEvent"
    ]
    assert event["severity"]["coding"][0]["code"] == "severe"
    assert event["outcome"]["coding"][0]["code"] == "recovering"
    report = team["physician"].get(f"/sessions/{b.sid}/report").text
    assert "closed by the abort" in report


def test_abort_without_an_open_reaction_refuses_a_reaction_grade(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    # 409: the request is well formed; the session's state (no reaction open) refuses it.
    refused = b.post("physician", "abort", {"reason": "x", "reaction_brown_grade": 2}, expect=409)
    assert "no open reaction" in refused["detail"]


# --- 5. resume with vitals out of limits ------------------------------------------------------


def test_resume_needs_fresh_vitals_within_every_limit_or_a_physicians_override(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    b.post("nurse", "reactions", {"symptoms": ["urticaria"]})
    session_server.advance(minutes=10)
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1})
    # SBP 25 below baseline, SpO2 4 below: two MEDIUM findings, confirmed by the nurse
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 99, "spo2": 94, "confirm": True})
    refused = b.post("physician", "resume", {"resume_from": "repeat"}, expect=409)
    assert "breach a MEDIUM or HIGH limit" in refused["detail"]
    assert "systolic 99 mmHg" in refused["detail"]
    assert b.get()["status"] == "paused"
    # a nurse cannot override; a physician can, with a reason, and it is recorded
    b.post("nurse", "resume", {"resume_from": "repeat", "override_reason": "fine"}, expect=403)
    view = b.post(
        "physician",
        "resume",
        {"resume_from": "repeat", "override_reason": "chronic low pressure, seen the patient"},
    )
    assert view["status"] == "step_due"
    (entry,) = audit_entries(
        database_url,
        AuditEvent.action == "session.resume.override",
        AuditEvent.entity_id == str(b.sid),
    )
    assert entry["reason"] == "chronic low pressure, seen the patient"
    assert "breach a MEDIUM or HIGH limit" in entry["after_json"]
    timeline = team["auditor"].get(f"/sessions/{b.sid}/timeline").text
    assert "safety override" in timeline and "chronic low pressure" in timeline
    report = team["auditor"].get(f"/sessions/{b.sid}/report").text
    assert "Safety gate overridden" in report and "chronic low pressure" in report


# --- 6. start with an unsafe baseline ---------------------------------------------------------


def test_a_baseline_that_meets_high_criteria_starts_only_on_a_physicians_override(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    nurse = team["nurse"]
    patient = new_patient(nurse)
    created = nurse.post(
        "/api/v1/sessions",
        json={
            "patient_id": patient,
            "drug": "ceftazidime",
            "protocol": {"template": "brigham-12", "dose": "2000", "unit": "mg"},
            "index_reaction": {"reactions": ["urticaria"]},
        },
    ).json()
    b = Bedside(session_server, team, created["id"])
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    b.post("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"})
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 80, "spo2": 88, "confirm": True})
    assert b.get()["checklist"]["baseline_high"][:2] == ["systolic 80 mmHg", "SpO2 88 %"]
    refused = b.post("nurse", "start", expect=409)
    assert "baseline vitals meet HIGH criteria" in refused["detail"]
    b.post("nurse", "start", {"override_reason": "I say so"}, expect=403)
    b.post("physician", "start", expect=409)  # no reason given
    view = b.post("physician", "start", {"override_reason": "known hypotension, ICU bed"})
    assert view["status"] == "running"
    (entry,) = audit_entries(
        database_url,
        AuditEvent.action == "session.start.override",
        AuditEvent.entity_id == str(b.sid),
    )
    assert entry["reason"] == "known hypotension, ICU bed"


# --- 7. asthma: spirometry in every set -------------------------------------------------------


def test_with_asthma_every_set_needs_fev1_or_peak_flow_or_a_reason(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    patient = new_patient(nurse, asthma=True)
    created = nurse.post(
        "/api/v1/sessions",
        json={
            "patient_id": patient,
            "drug": "aspirin",
            "route": "PO",
            "protocol": {"template": "doses", "doses": "40,80,160,325", "unit": "mg"},
            "index_reaction": {"reactions": ["urticaria"]},
        },
    ).json()
    b = Bedside(session_server, team, created["id"])
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    b.post("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"})
    b.post("nurse", "vitals", {**OK_VITALS, "peak_flow_l_min": 400})
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    refused = b.post("nurse", "vitals", OK_VITALS, expect=422)
    assert refused["field"] == "spirometry"
    assert "fev1_l or peak_flow_l_min" in refused["detail"]
    b.post("nurse", "vitals", {**OK_VITALS, "peak_flow_l_min": 390})
    b.post(
        "nurse",
        "vitals",
        {**OK_VITALS, "peak_flow_l_min": {"status": "unable_to_obtain", "reason": "coughing"}},
    )
    # the bronchospasm rule can fire now: peak flow 25 % down
    falling = b.post("nurse", "vitals", {**OK_VITALS, "peak_flow_l_min": 300, "confirm": True})
    assert falling["status"] == "paused"
    reaction = alarms_by_condition(falling)["reaction"]
    assert "peak flow 300 L/min, 25 % below baseline 400 L/min" in reaction["message"]


# --- 8. long steps: vitals again within the step ---------------------------------------------


def long_steps(server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    """Oral doses 2 hours apart: each step is far longer than the vitals interval."""
    b = ready_session(server, team, template="doses", doses="10,20,40", dose=None, interval="120")
    b.post("nurse", "start")
    return b


def test_vitals_are_due_every_30_minutes_within_a_long_step(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = long_steps(session_server, team)
    session_server.advance(minutes=10)
    b.vitals()
    session_server.advance(minutes=29)  # 1 minute before the next set is due
    view = wait_for(b.get, lambda v: "vitals_due" in alarms_by_condition(v))
    assert alarms_by_condition(view)["vitals_due"]["priority"] == "LOW"
    session_server.advance(minutes=1, seconds=1)
    view = wait_for(b.get, lambda v: "vitals_overdue" in alarms_by_condition(v))
    overdue = alarms_by_condition(view)["vitals_overdue"]
    assert overdue["priority"] == "MEDIUM" and "every 30 min within a step" in overdue["message"]
    view = b.vitals()
    assert "vitals_overdue" not in alarms_by_condition(view)


def test_a_session_may_set_its_own_interval(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    body = {
        "patient_id": new_patient(nurse),
        "drug": "amoxicillin",
        "route": "PO",
        "protocol": {"template": "doses", "doses": "10,20,40", "unit": "mg", "interval": "120"},
        "index_reaction": {"reactions": ["urticaria"]},
        "vitals_every_minutes": "15",
    }
    assert nurse.post("/api/v1/sessions", json=body).json()["vitals_every_minutes"] == "15"
    body["vitals_every_minutes"] = "2"
    assert nurse.post("/api/v1/sessions", json=body).status_code == 422


# --- 9. lost contact --------------------------------------------------------------------------


@pytest.fixture
def quick_contact(database_url: str) -> Iterator[SessionServer]:
    """A manual-clock server that looks for lost contact every half second."""
    settings = Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=24 * 60,
        session_absolute_hours=7 * 24,
        contact_check_seconds=0.5,
    )
    app = create_app(settings)
    with run_server(app) as base_url:
        yield SessionServer(base_url, app)


def test_lost_contact_raises_medium_then_high_and_ends_when_a_screen_is_back(
    quick_contact: SessionServer, accounts
) -> None:
    team = {
        r: SignedInClient(quick_contact.base_url, accounts[r])
        for r in ("nurse", "physician", "pharmacist")
    }
    try:
        b = long_steps(quick_contact, team)
        screen_path = ws_url(quick_contact.base_url, f"/ws/sessions/{b.sid}")

        def open_screen():
            return connect(
                screen_path,
                origin=quick_contact.base_url,
                additional_headers={"Cookie": cookie(team["nurse"])},
            )

        with open_screen():
            time.sleep(2.0)  # the opening is told to the database
            quick_contact.advance(minutes=31)  # vitals overdue, but a screen shows the session
            wait_for(b.get, lambda v: "vitals_overdue" in alarms_by_condition(v))
            time.sleep(2.0)  # several contact checks
            assert "lost_contact" not in alarms_by_condition(b.get())
        time.sleep(2.0)  # the closing is told to the database
        quick_contact.advance(minutes=2, seconds=5)
        view = wait_for(b.get, lambda v: "lost_contact" in alarms_by_condition(v))
        lost = alarms_by_condition(view)["lost_contact"]
        assert lost["priority"] == "MEDIUM" and "Go to the patient" in lost["message"]
        quick_contact.advance(minutes=3)
        view = wait_for(
            b.get,
            lambda v: alarms_by_condition(v).get("lost_contact", {}).get("priority") == "HIGH",
        )
        assert [
            a["priority"]
            for a in view["alarms"]["items"]
            if a["condition"] == "lost_contact" and a["active"] and not a["latched"]
        ] == ["HIGH"]  # the MEDIUM one ended as the HIGH one rose
        assert "Lost contact" in team["physician"].get("/board").text
        with open_screen():  # a screen is back: the condition clears (HIGH latches until acked)
            wait_for(
                b.get,
                lambda v: (
                    not any(
                        a["condition"] == "lost_contact" and a["active"] and not a["latched"]
                        for a in v["alarms"]["items"]
                    )
                ),
            )
    finally:
        for client in team.values():
            client.close()


# --- 10. common abnormal vitals, and a value far from baseline --------------------------------


@pytest.mark.parametrize(
    ("values", "conditions"),
    [
        ({"heart_rate": 150}, {"hr_high", "hr_rise", "news2_urgent_review"}),
        ({"systolic_bp": 190, "diastolic_bp": 110}, {"sbp_high", "dbp_high"}),
        ({"respiratory_rate": 32}, {"rr_high", "news2_urgent_review"}),
        ({"temperature_c": "39.4"}, {"temperature_high"}),
    ],
)
def test_common_abnormal_vitals_raise_medium_alarms(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    values: dict,
    conditions: set[str],
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    refused = b.post("nurse", "vitals", {**OK_VITALS, **values}, expect=422)
    assert {f["condition"] for f in refused["needs_confirmation"]} == conditions
    view = b.post("nurse", "vitals", {**OK_VITALS, **values, "confirm": True})
    assert view["status"] == "running"  # MEDIUM: an alarm, not a reaction
    (alarm,) = [a for a in view["alarms"]["items"] if a["kind"] == "physiological"]
    assert (alarm["condition"], alarm["priority"]) == ("vitals", "MEDIUM")  # one set, one alarm
    assert alarm["message"].startswith("Vitals out of limits: ")


def test_a_value_far_from_baseline_needs_a_second_tap(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)  # baseline SBP 124
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    refused = b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 214}, expect=422)
    (doubt,) = refused["far_from_baseline"]
    assert doubt["message"] == "is systolic 214 mmHg right? It is 72 % above the baseline 124 mmHg"
    assert b.get()["vitals"][-1]["values"]["systolic_bp"]["value"] == "124"  # not saved
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 214, "confirm": True})


def test_news2_is_shown_per_set_and_on_the_board(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    full = {**OK_VITALS, "heart_rate": 95, "consciousness": "A", "supplemental_oxygen": False}
    view = b.post("nurse", "vitals", full)
    latest = view["vitals"][-1]
    assert latest["values"]["consciousness"] == "A"
    assert latest["news2"]["total"] == 1 and not latest["news2"]["partial"]
    assert view["vitals"][0]["news2"]["partial"]  # the baseline had no ACVPU or oxygen
    assert "<small>NEWS2</small> 1<" in team["physician"].get("/board").text
    assert "NEWS2 <strong>1</strong>" in team["nurse"].get(f"/sessions/{b.sid}").text


# --- 11. the smaller points -------------------------------------------------------------------


def test_an_infants_limit_is_chosen_by_months(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    today = session_server.clock.now().date()
    born = date(today.year - (1 if today.month <= 6 else 0), (today.month - 7) % 12 + 1, 1)
    patient = nurse.post(
        "/api/v1/patients",
        json={
            "mrn": f"T{secrets.token_hex(5)}",
            "family_name": "Baby",
            "given_name": "Six",
            "birth_date": born.isoformat(),
            "weight_kg": 7,
            "asthma": False,
        },
    )
    assert patient.status_code == 201, patient.text
    patient = patient.json()["id"]
    b = ready_session(session_server, team, patient)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    infant = {**OK_VITALS, "systolic_bp": 69, "diastolic_bp": 40}
    refused = b.post("nurse", "vitals", infant, expect=422)
    messages = " ".join(f["message"] for f in refused["needs_confirmation"])
    assert "age-specific limit at 1 month–1 year" in messages
    assert "under 1 month" not in messages
    assert "months" in team["nurse"].get(f"/sessions/{b.sid}").text


def test_a_second_resume_stretches_the_approved_times_never_the_stretched_ones(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    b.post("nurse", "reactions", {"symptoms": ["urticaria"]})
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1})
    session_server.advance(minutes=5)
    b.vitals()
    first = b.post("physician", "resume", {"resume_from": "repeat", "stretch": 2})
    assert [s["minutes"] for s in first["plan"]["steps"][1:3]] == ["30", "30"]
    session_server.advance(minutes=1)
    b.post("nurse", "confirm-step")
    session_server.advance(minutes=5)
    b.post("nurse", "reactions", {"symptoms": ["urticaria"]})
    b.post("physician", "reactions/2/resolve", {"brown_grade": 1})
    session_server.advance(minutes=5)
    b.vitals()
    body = {"resume_from": "repeat", "stretch": "1.5"}
    preview = b.post("physician", "resume", {**body, "dry_run": True})
    assert preview["dry_run"] is True
    assert b.get()["status"] == "paused"  # nothing was written
    minutes = [Decimal(s["minutes"]) for s in preview["plan"]["steps"][2:5]]
    assert minutes == [Decimal("22.5")] * 3  # 15 × 1.5, not 15 × 2 × 1.5
    done = b.post("physician", "resume", body)
    assert done["plan"] == preview["plan"]


def test_the_checklist_has_the_brown_3_signs(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    view = b.post("nurse", "reactions", {"symptoms": ["confusion", "cyanosis", "incontinence"]})
    suggestion = view["reactions"][0]["suggested_grade"]
    assert suggestion["brown_grade"] == 3
    assert alarms_by_condition(view)["reaction"]["priority"] == "HIGH"
    page = team["nurse"].get(f"/sessions/{b.sid}").text
    for label in ("Blue lips or skin (cyanosis)", "Confusion", "Incontinence"):
        assert label in page
