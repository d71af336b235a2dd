"""Next time around, through the API: a patient's history per drug, the suggestions it makes,
the tolerance window, and a new plan copied from the last one."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from app.config import Settings
from tests.conftest import run_server
from tests.session.conftest import SessionServer, new_patient, session_body, wait_for
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import Bedside
from tests.support import SignedInClient


def reaction_at_step_3(server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    """Steps 1 and 2 tolerated; flushing and wheeze at step 3, Brown 2; then aborted."""
    b = ready_session(server, team)
    b.post("nurse", "start")
    b.finish_step()
    b.finish_step()
    server.advance(minutes=4)
    b.post("nurse", "reactions", {"symptoms": ["flushing", "wheeze"]})
    server.advance(minutes=20)
    b.vitals()
    b.post("physician", "reactions/1/resolve", {"brown_grade": 2})
    b.post("physician", "abort", {"reason": "moderate reaction; next time 16 steps"})
    return b


def patient_of(b: Bedside) -> int:
    return b.get()["patient_id"]


def history(client: SignedInClient, patient: int, **query: str) -> dict:
    params = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    response = client.get(f"/api/v1/patients/{patient}/history?{params}")
    assert response.status_code == 200, response.text
    return response.json()


def test_history_shows_sessions_reactions_last_dose_and_suggestions(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reaction_at_step_3(session_server, team)
    view = b.get()
    stopped = datetime.fromisoformat(view["segments"][-1]["stopped_at"])

    found = history(team["physician"], patient_of(b))
    (drug,) = found["drugs"]
    assert drug["drug"] == "ceftazidime"
    (past,) = drug["sessions"]
    assert past["id"] == b.sid and past["status"] == "aborted"
    (reaction,) = past["reactions"]
    assert (reaction["at_step"], reaction["brown_grade"]) == (3, 2)
    assert reaction["symptoms"] == ["flushing", "wheeze"]
    assert datetime.fromisoformat(drug["last_dose_at"]) == stopped

    suggestions = {s["code"]: s for s in drug["suggestions"] if s["code"] != "premedication"}
    assert suggestions["template"]["template"] == "brigham-16"
    edit = suggestions["insert_step"]["plan_edit"]
    assert edit["action"] == "insert" and edit["after"] == 2
    steps = view["plan"]["steps"]
    rate = Decimal(edit["rate_ml_h"])
    assert edit["solution"] == steps[2]["solution"]
    assert rate < Decimal(steps[2]["rate_ml_h"])  # slower than the step that reacted
    premeds = [s["premedications"] for s in drug["suggestions"] if s["code"] == "premedication"]
    assert premeds == [["aspirin 325 mg PO", "montelukast 10 mg PO"], ["montelukast 10 mg PO"]]


def completed_session(
    server: SessionServer, team: dict[str, SignedInClient], patient: int | None = None
) -> Bedside:
    """A whole brigham-12 run to its target dose, observed and completed."""
    b = ready_session(server, team, patient)
    view = b.post("nurse", "start")
    while view["status"] in ("running", "step_due"):
        view = b.finish_step()
    server.advance(minutes=10)
    b.vitals()
    server.advance(minutes=25)
    wait_for(b.get, lambda v: v["observation_done"])
    b.post("nurse", "complete")
    return b


def test_an_aborted_session_never_makes_the_patient_desensitized(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reaction_at_step_3(session_server, team)  # micrograms given, then aborted
    patient = patient_of(b)
    (drug,) = history(team["nurse"], patient)["drugs"]
    assert drug["last_dose_at"] is not None  # the drug was given …
    tolerance = drug["tolerance"]  # … but no tolerance comes of it, minutes later
    assert tolerance["band"] == "none"
    assert tolerance["needs_full_desensitization"] is True
    assert "may persist" not in tolerance["message"]
    assert "aborted or incomplete one does not count" in tolerance["message"]


def test_the_tolerance_bands_count_from_the_last_full_dose(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    aborted = reaction_at_step_3(session_server, team)
    patient = patient_of(aborted)
    session_server.advance(hours=1)
    done = completed_session(session_server, team, patient)
    reached = datetime.fromisoformat(done.get()["segments"][-1]["stopped_at"])
    (drug,) = history(team["nurse"], patient)["drugs"]
    assert {s["id"]: s["full_dose_at"] for s in drug["sessions"]} == {
        done.sid: reached.isoformat(),
        aborted.sid: None,
    }

    def verdict(client: SignedInClient, hours: float) -> dict:
        at = (reached + timedelta(hours=hours)).isoformat()
        return history(client, patient, planned_at=at)["drugs"][0]["tolerance"]

    within = verdict(team["nurse"], 23.5)
    assert (within["band"], within["needs_full_desensitization"]) == ("may_persist", False)
    assert within["hours_since_last_dose"] == "23.5" and within["window_hours"] == "24"
    assert "may persist" in within["message"] and "allergist to confirm" in within["message"]
    for hours in (24.5, 47.5):
        uncertain = verdict(team["nurse"], hours)
        assert (uncertain["band"], uncertain["needs_full_desensitization"]) == ("uncertain", True)
        assert "full desensitization is recommended" in uncertain["message"]
    lost = verdict(team["nurse"], 48.5)
    assert (lost["band"], lost["needs_full_desensitization"]) == ("lost", True)
    assert "more than 48 h: tolerance is lost" in lost["message"]

    # The same record on a server configured with other bands for this drug.
    settings = Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        tolerance_hours_by_drug="Ceftazidime=12/36, cefepime=48",
    )
    with run_server(settings) as base_url:
        other = SignedInClient(base_url, team["nurse"].account)
        try:
            assert verdict(other, 11)["band"] == "may_persist"
            assert verdict(other, 13)["band"] == "uncertain"
            assert verdict(other, 37)["band"] == "lost"
        finally:
            other.close()

    naive = team["nurse"].get(f"/api/v1/patients/{patient}/history?planned_at=2031-01-01T09:00:00")
    assert naive.status_code == 422
    assert team["nurse"].get("/api/v1/patients/999999/history").status_code == 404


def test_a_new_plan_copies_the_previous_one_and_takes_the_suggested_step(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reaction_at_step_3(session_server, team)
    nurse = team["nurse"]
    patient = patient_of(b)
    copied = nurse.post(
        "/api/v1/sessions",
        json={"patient_id": patient, "drug": "Ceftazidime", "copy_from": b.sid},
    )
    assert copied.status_code == 201, copied.text
    new = copied.json()
    old_plan = b.get()["plan"]
    assert new["plan"]["bags"] == old_plan["bags"]
    assert [s["rate_ml_h"] for s in new["plan"]["steps"]] == [
        s["rate_ml_h"] for s in old_plan["steps"]
    ]
    screening = new["screening"]
    assert screening["copied_from"] == b.sid
    # minutes after an aborted session: not desensitized
    assert screening["tolerance"]["needs_full_desensitization"] is True
    codes = [s["code"] for s in screening["suggestions"]]
    assert codes[:2] == ["insert_step", "template"]

    edit = screening["suggestions"][0]["plan_edit"]
    response = nurse.post(f"/api/v1/sessions/{new['id']}/plan/edit", json=edit)
    assert response.status_code == 200, response.text
    steps = response.json()["plan"]["steps"]
    assert len(steps) == 13
    assert steps[2]["origin"] == "inserted"
    assert steps[2]["rate_ml_h"] == str(Decimal(edit["rate_ml_h"]))

    # A copy of the copy keeps the inserted step: edits are copied with the plan.
    again = nurse.post(
        "/api/v1/sessions",
        json={"patient_id": patient, "drug": "ceftazidime", "copy_from": new["id"]},
    )
    assert again.status_code == 201, again.text
    assert len(again.json()["plan"]["steps"]) == 13


def test_copying_is_refused_clearly_for_another_patient_drug_or_no_session(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    patient = new_patient(nurse)
    first = nurse.post("/api/v1/sessions", json=session_body(patient))
    assert first.status_code == 201
    sid = first.json()["id"]
    someone_else = new_patient(nurse)

    def create(body: dict) -> tuple[int, str]:
        response = nurse.post("/api/v1/sessions", json=body)
        return response.status_code, response.text

    status, text = create({"patient_id": someone_else, "drug": "ceftazidime", "copy_from": sid})
    assert status == 422 and "another patient" in text
    status, text = create({"patient_id": patient, "drug": "cefepime", "copy_from": sid})
    assert status == 422 and "same drug" in text
    status, text = create({"patient_id": patient, "drug": "ceftazidime", "copy_from": 999999})
    assert status == 404 and "copy_from" in text
    both = {**session_body(patient), "copy_from": sid}
    status, text = create(both)
    assert status == 422 and "either protocol or copy_from" in text
    neither = {"patient_id": patient, "drug": "ceftazidime"}
    status, text = create(neither)
    assert status == 422 and "protocol is required" in text
    sessions = history(nurse, patient)["drugs"][0]["sessions"]
    assert [s["id"] for s in sessions] == [sid]  # nothing was created by the refusals
