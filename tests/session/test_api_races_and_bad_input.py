"""Racing commands get exactly one transition; bad input gets a 4xx and writes nothing."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from tests.session.conftest import SessionServer, new_patient, session_body, wait_for
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient


def ready_session(
    server: SessionServer,
    team: dict[str, SignedInClient],
    patient_id: int | None = None,
    **protocol: Any,
) -> Bedside:
    nurse = team["nurse"]
    patient = patient_id or new_patient(nurse)
    created = nurse.post("/api/v1/sessions", json=session_body(patient, **protocol))
    assert created.status_code == 201, created.text
    b = Bedside(server, team, created.json()["id"])
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    b.post("nurse", "checklist", {"item": "premedications", "none_reason": "none ordered"})
    b.vitals()
    return b


def at_step_due(server: SessionServer, team: dict[str, SignedInClient]) -> tuple[Bedside, dict]:
    b = ready_session(server, team)
    b.post("nurse", "start")
    server.advance(minutes=5)
    b.vitals()
    server.advance(minutes=11)
    return b, wait_for(b.get, lambda v: v["status"] == "step_due")


def race(*calls) -> list[Any]:
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_tablets_confirming_at_once_make_one_transition(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b, view = at_step_due(session_server, team)
    body = {"expected_version": view["version"]}
    path = f"/api/v1/sessions/{b.sid}/confirm-step"
    answers = race(
        lambda: team["nurse"].post(path, json=body), lambda: team["physician"].post(path, json=body)
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["current"]["status"] == "running"  # the loser is told the current state
    assert b.get()["version"] == view["version"] + 1


def test_a_pause_racing_the_timer_gives_one_transition(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    view = b.post("nurse", "start")
    session_server.advance(minutes=5)
    view = b.vitals()
    deadline = datetime.fromisoformat(view["deadline"])
    body = {"reason": "patient asks to stop", "expected_version": view["version"]}
    path = f"/api/v1/sessions/{b.sid}/pause"
    (answer,) = race(
        lambda: (
            session_server.clock.advance(deadline - session_server.clock.now()),
            team["nurse"].post(path, json=body),
        )[1]
    )
    final = wait_for(b.get, lambda v: v["status"] in ("paused", "step_due"))
    if answer.status_code == 200:
        assert final["status"] == "paused"  # the pause won; the timer was cancelled
        session_server.advance(minutes=30)
        assert b.get()["status"] == "paused"
    else:
        assert answer.status_code == 409 and final["status"] == "step_due"  # the timer won
    assert b.get()["version"] == view["version"] + 1


def test_idempotency_key_replays_the_first_answer_and_writes_nothing(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    headers = {"idempotency-key": "tablet-7-vitals-0001"}
    path = f"/api/v1/sessions/{b.sid}/vitals"
    first = team["nurse"].post(path, json=OK_VITALS, headers=headers)
    again = team["nurse"].post(path, json=OK_VITALS, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert b.get()["version"] == first.json()["version"]  # the resend changed nothing
    other = team["nurse"].post(path, json={**OK_VITALS, "heart_rate": 90}, headers=headers)
    assert other.status_code == 409 and "different request" in other.json()["detail"]


BAD_REQUESTS = [
    ("approve", {"expected_version": "two"}, 422, "expected_version"),
    ("approve", {"surprise": 1}, 422, "surprise"),
    ("checklist", {}, 422, "item"),
    ("checklist", {"item": "blood_group"}, 422, "item"),
    ("checklist", {"item": "premedications"}, 422, "reason"),
    ("vitals", {**OK_VITALS, "systolic_bp": 400}, 422, "systolic_bp 400 mmHg is outside"),
    ("vitals", {**OK_VITALS, "spo2": "high"}, 422, "spo2"),
    ("vitals", {"heart_rate": 70}, 422, "systolic_bp"),
    ("reactions", {"symptoms": []}, 422, "symptoms"),
    ("reactions/1/resolve", {"brown_grade": 7}, 422, "brown_grade"),
    ("pause", {"reason": ""}, 422, "reason"),
    ("pause", {"reason": "x", "stopped_at": "yesterday"}, 422, "stopped_at"),
    ("resume", {"resume_from": "back9"}, 422, "resume_from"),
    ("resume", {"stretch": 10}, 422, "stretch"),
    ("abort", {}, 422, "reason"),
    ("start", {}, 409, "before the start"),  # wrong state: planned
    ("confirm-step", {}, 409, "no pump change is due"),
    ("complete", {}, 409, "after its observation"),
    ("reactions/1/treatments", {"drug": "x", "dose": "1", "route": "IV"}, 409, "no open reaction"),
]


@pytest.mark.parametrize(
    ("command", "body", "status", "says"),
    BAD_REQUESTS,
    ids=[f"{c}-{s}" for c, _, s, _ in BAD_REQUESTS],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
    command: str,
    body: dict,
    status: int,
    says: str,
) -> None:
    nurse = team["nurse"]
    created = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse))).json()
    approved = Bedside(session_server, team, created["id"])
    approved.post("physician", "approve")
    approved.post("pharmacist", "verify-bags")  # ready, with the checklist still to do
    role = {"approve": "physician", "resume": "physician", "abort": "physician"}.get(
        command, "nurse"
    )
    before = nurse.get(f"/api/v1/sessions/{created['id']}").json()
    answer = team[role].post(f"/api/v1/sessions/{created['id']}/{command}", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert "Traceback" not in answer.text
    after = nurse.get(f"/api/v1/sessions/{created['id']}").json()
    assert after == before


def test_unknown_session_and_bad_creation(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    assert nurse.get("/api/v1/sessions/999999").status_code == 404
    missing = nurse.post("/api/v1/sessions/999999/start", json={})
    assert missing.status_code == 404 and "no session 999999" in missing.text
    patient = new_patient(nurse)
    cases = [
        ({**session_body(patient), "patient_id": 999999}, 404, "no patient"),
        (session_body(patient, dose="-5"), 422, "dose must be greater than 0"),
        (session_body(patient, template="brigham-99"), 422, "unknown template"),
        (
            {**session_body(patient), "index_reaction": {"reactions": ["sjs"]}},
            422,
            "Do not desensitize",
        ),
        (
            {**session_body(patient), "index_reaction": {"reactions": ["made_up"]}},
            422,
            "unknown index reaction",
        ),
        ({**session_body(patient), "drug": ""}, 422, "drug"),
        ({"patient_id": patient}, 422, "drug"),
        ({"patient_id": patient, "drug": "ceftazidime"}, 422, "protocol is required"),
    ]
    for body, status, says in cases:
        answer = nurse.post("/api/v1/sessions", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert says in answer.text


def test_an_amendment_adds_a_version_and_never_overwrites(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)  # has one baseline reading
    first = b.get()["vitals"][0]
    path = f"/api/v1/sessions/{b.sid}/vitals/{first['id']}/amend"
    no_reason = team["nurse"].post(path, json={**OK_VITALS, "reason": ""})
    assert no_reason.status_code == 422
    corrected = team["nurse"].post(
        path, json={**OK_VITALS, "heart_rate": 82, "reason": "typed 72 for 82"}
    )
    assert corrected.status_code == 200, corrected.text
    versions = corrected.json()["vitals"]
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    assert versions[0]["values"]["heart_rate"]["value"] == "72"  # the original is untouched
    assert versions[1]["values"]["heart_rate"]["value"] == "82"
    assert versions[1]["supersedes"] == first["id"]
    assert versions[1]["amendment_reason"] == "typed 72 for 82"
    again = team["nurse"].post(path, json={**OK_VITALS, "reason": "once more"})
    assert again.status_code == 409 and "amend the newest" in again.text


def test_every_committed_command_rings_the_doorbell_with_its_last_event(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    bell = session_server.app.state.doorbell
    queue = bell.listen()
    try:
        b.post("nurse", "start")
        refused = team["nurse"].post(f"/api/v1/sessions/{b.sid}/start", json={})
        assert refused.status_code == 409
        rings = []
        while not queue.empty():
            rings.append(queue.get_nowait())
    finally:
        bell.stop_listening(queue)
    # the start's last event (after its commit; on PostgreSQL it arrives through NOTIFY as
    # well, and the hub shows a seq once); a refusal changes nothing and rings nothing
    # (Timers of other tests' sessions in the shared database may ring meanwhile.)
    mine = {(r.session_id, r.seq) for r in rings if r.session_id == b.sid}
    assert mine == {(b.sid, b.get()["last_event_seq"])}


def test_a_draft_plan_can_be_edited_until_it_is_approved(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    sid = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse))).json()["id"]
    path = f"/api/v1/sessions/{sid}/plan/edit"
    inserted = team["pharmacist"].post(
        path, json={"action": "insert", "after": 10, "rate_ml_h": 30}
    )
    assert inserted.status_code == 200, inserted.text
    steps = inserted.json()["plan"]["steps"]
    assert len(steps) == 13 and steps[10]["origin"] == "inserted"
    assert steps[10]["rate_ml_h"] == "30" and steps[10]["solution"] == 3
    edited = team["physician"].post(path, json={"action": "edit", "step": 12, "rate_ml_h": 60})
    assert edited.status_code == 200
    assert [s["origin"] for s in edited.json()["plan"]["steps"]][-2:] == ["edited", "plan"]
    refused = nurse.post(path, json={"action": "delete", "step": 3})
    assert refused.status_code == 422
    assert "only inserted steps can be deleted" in refused.json()["detail"]
    assert nurse.post(path, json={"action": "insert"}).status_code == 422  # needs 'after'
    before = nurse.get(f"/api/v1/sessions/{sid}").json()
    assert before["version"] == edited.json()["version"]  # the refusals changed nothing
    team["physician"].post(f"/api/v1/sessions/{sid}/approve", json={})
    frozen = nurse.post(path, json={"action": "delete", "step": 11})
    assert frozen.status_code == 409 and "frozen once approved" in frozen.json()["detail"]
