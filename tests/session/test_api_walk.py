"""The whole session through the JSON API, on both databases, with a manual clock."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from app.audit import service as audit_service
from app.db import create_engine, session_factory
from app.session.models import SessionEvent, Timer
from tests.session.conftest import SessionServer, new_patient, session_body, wait_for
from tests.support import SignedInClient, run_async

OK_VITALS = {
    "systolic_bp": 124,
    "diastolic_bp": 78,
    "heart_rate": 72,
    "spo2": 98,
    "respiratory_rate": 14,
    "temperature_c": "36.8",
}


class Bedside:
    def __init__(self, server: SessionServer, team: dict[str, SignedInClient], sid: int) -> None:
        self.server, self.team, self.sid = server, team, sid

    def post(self, role: str, command: str, body: dict | None = None, expect: int = 200) -> dict:
        response = self.team[role].post(f"/api/v1/sessions/{self.sid}/{command}", json=body or {})
        assert response.status_code == expect, (command, response.status_code, response.text)
        return response.json()

    def get(self) -> dict:
        return self.team["nurse"].get(f"/api/v1/sessions/{self.sid}").json()

    def vitals(self) -> dict:
        return self.post("nurse", "vitals", OK_VITALS)

    def finish_step(self) -> dict:
        """Vitals during the step; the clock reaches the deadline; the timer fires; a minute
        later the nurse confirms the pump change."""
        self.server.advance(minutes=5)
        self.vitals()
        view = self.get()
        deadline = datetime.fromisoformat(view["deadline"])
        gap = deadline - self.server.clock.now()
        if gap.total_seconds() > 0:
            self.server.clock.advance(gap)
        view = wait_for(self.get, lambda v: v["status"] != "running")
        if view["status"] == "step_due":
            self.server.advance(minutes=1)
            view = self.post("nurse", "confirm-step", {"expected_version": view["version"]})
        return view


def test_a_full_session_with_a_reaction_and_a_resume(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    nurse = team["nurse"]
    patient = new_patient(nurse)
    created = nurse.post("/api/v1/sessions", json=session_body(patient))
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["status"] == "planned" and len(session["plan"]["steps"]) == 12
    b = Bedside(session_server, team, session["id"])

    b.post("nurse", "approve", expect=403)  # a nurse cannot approve by crafting a request
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    b.post("nurse", "start", expect=409)
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
                    "given_at": session_server.clock.now().isoformat(),
                }
            ],
        },
    )
    b.vitals()  # baseline
    view = b.post("nurse", "start")
    assert (view["status"], view["current_step"]) == ("running", 0)

    for _ in range(8):
        view = b.finish_step()
    assert (view["status"], view["current_step"]) == ("running", 8)  # step 9 of 12

    session_server.advance(minutes=4)
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria", "flushing"]})
    assert view["status"] == "paused"
    session_server.advance(minutes=1)
    b.post(
        "nurse",
        "reactions/1/treatments",
        {"drug": "diphenhydramine", "dose": "25 mg", "route": "IV"},
    )
    session_server.advance(minutes=20)
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1, "ctcae_grade": 2})
    b.post("physician", "resume", {"resume_from": "back1"}, expect=409)  # no fresh vitals yet
    b.vitals()
    b.post("nurse", "resume", {"resume_from": "back1"}, expect=403)
    view = b.post(
        "physician", "resume", {"resume_from": "back1", "stretch": 2, "insert_intermediate": 1}
    )
    assert view["status"] == "step_due"
    origins = [s["origin"] for s in view["plan"]["steps"][9:]]
    assert origins == ["step_back", "intermediate", "step_back", "plan", "plan", "plan"]
    session_server.advance(minutes=1)
    view = b.post("nurse", "confirm-step")
    while view["status"] in ("running", "step_due"):
        view = b.finish_step()
    assert view["status"] == "observing"
    assert abs(Decimal(view["delivered_dose"]) - 2000) <= Decimal("0.2")  # 0.01 %
    assert Decimal(view["delivered_dose"]) == 2000  # and in fact exactly

    session_server.advance(minutes=10)
    b.vitals()
    b.post("nurse", "complete", expect=409)  # observation not over
    session_server.advance(minutes=25)
    wait_for(b.get, lambda v: v["observation_done"])
    view = b.post("nurse", "complete")
    assert view["status"] == "completed"
    b.post("physician", "abort", {"reason": "late"}, expect=409)  # terminal absorbs

    async def check_db() -> tuple[list[int], int, bool]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                seqs = list(
                    await db.scalars(
                        select(SessionEvent.seq)
                        .where(SessionEvent.session_id == b.sid)
                        .order_by(SessionEvent.seq)
                    )
                )
                fired = len(
                    list(
                        await db.scalars(
                            select(Timer).where(
                                Timer.session_id == b.sid,
                                Timer.kind == "step",
                                Timer.status == "fired",
                            )
                        )
                    )
                )
                report = await audit_service.verify(db)
                return seqs, fired, report.ok
        finally:
            await engine.dispose()

    seqs, fired, chain_ok = run_async(check_db)
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free
    # every timer fired exactly once: steps 1-8, the six steps after the resume (step 8 again,
    # the intermediate, step 9 again, 10, 11, 12) and the observation; step 9's was cancelled
    assert fired == 8 + 6 + 1
    assert chain_ok
    history = json.dumps(b.get())
    assert "diphenhydramine" in history
