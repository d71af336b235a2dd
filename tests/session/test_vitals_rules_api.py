"""Vitals that meet an alarm condition through the API: confirm before commit, then a reaction."""

from __future__ import annotations

from sqlalchemy import select

from app.audit import AuditEvent
from app.db import create_engine, session_factory
from tests.session.conftest import SessionServer
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS
from tests.support import SignedInClient, run_async


def test_sbp_85_against_a_baseline_of_120_is_confirmed_then_pauses_the_session(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)  # baseline: SBP 124
    view = b.post("nurse", "start")
    session_server.advance(minutes=6)
    low = {**OK_VITALS, "systolic_bp": 85}
    path = f"/api/v1/sessions/{b.sid}/vitals"

    refused = team["nurse"].post(path, json=low)
    assert refused.status_code == 422
    body = refused.json()
    conditions = {f["condition"] for f in body["needs_confirmation"]}
    assert {"sbp_low_absolute", "sbp_fall_percent"} <= conditions
    assert "85 mmHg" in body["detail"] and body["confirm_with"] == {"confirm": True}
    assert b.get()["version"] == view["version"]  # nothing saved

    confirmed = team["nurse"].post(path, json={**low, "confirm": True})
    assert confirmed.status_code == 200, confirmed.text
    after = confirmed.json()
    assert after["status"] == "paused"  # the same transaction opened a reaction
    (reaction,) = after["reactions"]
    assert reaction["resolved_at"] is None and "85 mmHg" in reaction["note"]
    assert after["segments"][-1]["stopped_at"] is not None  # the infusion is stopped
    assert after["vitals"][-1]["within_limits"] is False
    # two changes (the vitals, the reaction), one transaction: no state in between was visible
    assert after["version"] == view["version"] + 2


def test_ordinary_vitals_need_no_confirmation(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=6)
    assert b.post("nurse", "vitals", OK_VITALS)["status"] == "running"


def test_hypoxia_after_a_resolved_reaction_opens_a_new_one_and_blocks_the_resume(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=6)
    b.post("nurse", "reactions", {"symptoms": ["flushing"]})
    b.post("physician", "reactions/1/resolve", {"brown_grade": 1})
    session_server.advance(minutes=5)
    low_spo2 = {**OK_VITALS, "spo2": 91, "confirm": True}
    view = b.post("nurse", "vitals", low_spo2)
    assert view["status"] == "paused"
    assert [r["resolved_at"] is None for r in view["reactions"]] == [False, True]
    refused = b.post("physician", "resume", {"resume_from": "repeat"}, expect=409)
    assert "must be marked resolved" in refused["detail"]
    b.post("physician", "reactions/2/resolve", {"brown_grade": 3})
    session_server.advance(minutes=10)
    b.vitals()
    # after a Brown grade 3 reaction, repeating the dose that reacted needs an override
    refused = b.post("physician", "resume", {"resume_from": "repeat"}, expect=409)
    assert "after a Brown grade 3 reaction" in refused["detail"]
    view = b.post(
        "physician",
        "resume",
        {"resume_from": "repeat", "override_reason": "allergist at the bedside, slow restart"},
    )
    assert view["status"] == "step_due"


def test_a_physician_changes_a_threshold_for_this_session_audited(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=6)
    path = f"/api/v1/sessions/{b.sid}/thresholds"
    body = {"overrides": {"sbp_low_mmhg": 100}, "reason": "baseline hypertension"}
    assert team["nurse"].post(path, json=body).status_code == 403
    unknown = team["physician"].post(
        path, json={"overrides": {"heart_rate_max": 150}, "reason": "x"}
    )
    assert unknown.status_code == 422 and "unknown threshold" in unknown.json()["detail"]
    out_of_range = team["physician"].post(
        path, json={"overrides": {"sbp_low_mmhg": 10}, "reason": "typo"}
    )
    assert out_of_range.status_code == 422
    view = team["physician"].post(path, json=body).json()
    assert view["thresholds"]["overrides"] == {"sbp_low_mmhg": "100"}
    assert any("100 mmHg" in line for line in view["thresholds"]["in_force"])
    # systolic 95 was fine under the default 90 mmHg; under this session's 100 it is not
    answer = team["nurse"].post(
        f"/api/v1/sessions/{b.sid}/vitals", json={**OK_VITALS, "systolic_bp": 95}
    )
    assert answer.status_code == 422 and "100 mmHg" in answer.json()["detail"]

    async def audited() -> list:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return list(
                    await db.scalars(
                        select(AuditEvent).where(
                            AuditEvent.action == "session.thresholds",
                            AuditEvent.entity_id == str(b.sid),
                        )
                    )
                )
        finally:
            await engine.dispose()

    (row,) = run_async(audited)
    assert row.reason == "baseline hypertension" and '"sbp_low_mmhg":"100"' in row.after_json


def test_an_open_reaction_carries_the_suggested_grade_and_its_reasons(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=6)
    unknown = team["nurse"].post(
        f"/api/v1/sessions/{b.sid}/reactions", json={"symptoms": ["itchy_feeling"]}
    )
    assert unknown.status_code == 422 and "unknown symptom" in unknown.text
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria"]})
    suggestion = view["reactions"][0]["suggested_grade"]
    assert suggestion["brown_grade"] == 1 and suggestion["reasons"]
    # hypoxia recorded while the reaction is open raises the suggestion to grade 3
    session_server.advance(minutes=2)
    view = b.post(
        "nurse", "vitals", {**OK_VITALS, "spo2": 91, "symptoms": ["wheeze"], "confirm": True}
    )
    suggestion = view["reactions"][0]["suggested_grade"]
    assert suggestion["brown_grade"] == 3
    assert any("SpO2 91" in reason for reason in suggestion["reasons"])
    # what the physician confirms is what is recorded; the suggestion stays beside it
    resolved = b.post("physician", "reactions/1/resolve", {"brown_grade": 3, "ctcae_grade": 3})
    assert resolved["reactions"][0]["brown_grade"] == 3
    assert resolved["reactions"][0]["suggested_grade"]["brown_grade"] == 3
