"""Regressions found by review: each test reproduces a defect that once answered 500, lost a
change or left the stored plan out of step with the session."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.db import create_engine, session_factory
from app.session.models import SessionEvent, SessionPlanStep
from tests.session.conftest import SessionServer, new_patient, session_body
from tests.session.test_api_races_and_bad_input import at_step_due, race, ready_session
from tests.session.test_api_walk import OK_VITALS
from tests.support import SignedInClient, run_async


async def _rows(database_url: str, session_id: int) -> tuple[list, list[int]]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            steps = list(
                await db.scalars(
                    select(SessionPlanStep)
                    .where(SessionPlanStep.session_id == session_id)
                    .order_by(SessionPlanStep.position)
                )
            )
            seqs = list(
                await db.scalars(
                    select(SessionEvent.seq)
                    .where(SessionEvent.session_id == session_id)
                    .order_by(SessionEvent.seq)
                )
            )
            return steps, seqs
    finally:
        await engine.dispose()


def test_vitals_racing_a_pause_never_answer_500_or_lose_the_sequence(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b, _ = at_step_due(session_server, team)
    vitals = f"/api/v1/sessions/{b.sid}/vitals"
    pause = f"/api/v1/sessions/{b.sid}/pause"
    for _ in range(3):
        answers = race(
            lambda: team["nurse"].post(vitals, json=OK_VITALS),
            lambda: team["physician"].post(pause, json={"reason": "check the line"}),
        )
        assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    _, seqs = run_async(lambda: _rows(database_url, b.sid))
    assert seqs == list(range(1, len(seqs) + 1))


def test_plan_rows_follow_a_resume(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=5)
    b.post("nurse", "reactions", {"symptoms": ["flushing"]})
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1})
    session_server.advance(minutes=5)
    b.vitals()
    view = b.post("physician", "resume", {"resume_from": "repeat", "stretch": 2})
    rows, _ = run_async(lambda: _rows(database_url, b.sid))
    stored = [
        (
            r.position,
            r.origin,
            str(r.rate_ml_h) if r.rate_ml_h is not None else None,
            str(r.minutes) if r.minutes is not None else None,
        )
        for r in rows
    ]
    expected = [
        (s["position"], s["origin"], s["rate_ml_h"], s["minutes"]) for s in view["plan"]["steps"]
    ]
    assert stored == expected


def test_resends_of_plan_edits_and_amendments_get_the_first_answer(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    sid = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse))).json()["id"]
    edit = f"/api/v1/sessions/{sid}/plan/edit"
    nurse.post(edit, json={"action": "insert", "after": 4, "rate_ml_h": 3})
    first = nurse.post(
        edit, json={"action": "delete", "step": 5}, headers={"idempotency-key": "del-1"}
    )
    again = nurse.post(
        edit, json={"action": "delete", "step": 5}, headers={"idempotency-key": "del-1"}
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()

    b = ready_session(session_server, team)
    reading = b.get()["vitals"][0]["id"]
    amend = f"/api/v1/sessions/{b.sid}/vitals/{reading}/amend"
    body = {**OK_VITALS, "heart_rate": 80, "reason": "misread"}
    first = nurse.post(amend, json=body, headers={"idempotency-key": "am-1"})
    again = nurse.post(amend, json=body, headers={"idempotency-key": "am-1"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()


def test_times_without_a_zone_or_outside_the_session_are_refused(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    sid = nurse.post("/api/v1/sessions", json=session_body(new_patient(nurse))).json()["id"]
    team["physician"].post(f"/api/v1/sessions/{sid}/approve", json={})
    team["pharmacist"].post(f"/api/v1/sessions/{sid}/verify-bags", json={})
    naive = nurse.post(
        f"/api/v1/sessions/{sid}/checklist",
        json={
            "item": "premedications",
            "premedications": [
                {
                    "drug": "cetirizine",
                    "dose": "10 mg",
                    "route": "PO",
                    "given_at": "2026-01-01T10:00:00",
                }
            ],
        },
    )
    assert naive.status_code == 422 and "given_at" in naive.text
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    for onset in ("1990-01-01T00:00:00+00:00", "0001-01-01T00:30:00+05:00"):
        answer = nurse.post(
            f"/api/v1/sessions/{b.sid}/reactions",
            json={"symptoms": ["urticaria"], "onset_at": onset},
        )
        assert answer.status_code == 422, answer.text
    tiny_cap = team["physician"].post(
        f"/api/v1/sessions/{b.sid}/resume", json={"cap_rate_ml_h": "0.000001"}
    )
    assert tiny_cap.status_code == 422


def test_malformed_origins_and_huge_ids_are_4xx(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    with httpx.Client(base_url=session_server.base_url, timeout=15) as anonymous:
        answer = anonymous.post("/login", headers={"origin": "http://[x"})
        assert answer.status_code == 403
    nurse = team["nurse"]
    for path in (
        "/api/v1/sessions/99999999999999999999",
        "/api/v1/sessions/3000000000",
        "/api/v1/patients/3000000000",
    ):
        assert nurse.get(path).status_code == 422, path
    too_big = nurse.post("/api/v1/sessions", json={**session_body(1), "patient_id": 3_000_000_000})
    assert too_big.status_code == 422
