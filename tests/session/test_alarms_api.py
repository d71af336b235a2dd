"""Alarms through the API, with a manual clock: raised by vitals, acknowledged, paused,
latched, and escalated by the stored timers."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.audit import AuditEvent
from app.db import create_engine, session_factory
from tests.session.conftest import SessionServer, wait_for
from tests.session.test_api_races_and_bad_input import ready_session
from tests.session.test_api_walk import OK_VITALS, Bedside
from tests.support import SignedInClient, run_async


def low_pressure_reaction(server: SessionServer, team: dict[str, SignedInClient]) -> Bedside:
    b = ready_session(server, team)
    b.post("nurse", "start")
    server.advance(minutes=6)
    b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 85, "confirm": True})
    return b


def by_condition(view: dict) -> dict[str, dict]:
    return {a["condition"]: a for a in view["alarms"]["items"]}


def escalated_alarms(database_url: str, session_id: int) -> list[int]:
    """The alarm id of every escalation audited for the session, one entry per escalation."""

    async def ids() -> list[int]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                rows = await db.scalars(
                    select(AuditEvent).where(
                        AuditEvent.action == "alarm.escalated",
                        AuditEvent.entity_id == str(session_id),
                    )
                )
                return [json.loads(r.after_json)["alarm_id"] for r in rows]
        finally:
            await engine.dispose()

    return run_async(ids)


def escalations(database_url: str, session_id: int) -> int:
    return len(escalated_alarms(database_url, session_id))


def test_low_pressure_raises_high_alarms_that_sound(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    view = low_pressure_reaction(session_server, team).get()
    # One event, one alarm: the reaction's, which names what the set found.
    (alarm,) = [a for a in view["alarms"]["items"] if a["kind"] == "physiological"]
    alarms = by_condition(view)
    assert alarm["condition"] == "reaction" and alarm["priority"] == "HIGH"
    assert "stop the infusion" in alarm["message"]
    assert "systolic 85 mmHg, 31.4 % below baseline 124 mmHg" in alarm["message"]
    assert (alarms["reaction"]["colour"], alarms["reaction"]["flashing"]) == ("red", True)
    assert view["alarms"]["sounding"] == "HIGH"


def test_an_unacknowledged_high_alarm_escalates_at_30_seconds_once(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = low_pressure_reaction(session_server, team)
    session_server.advance(seconds=29)
    assert all(a["escalated_at"] is None for a in b.get()["alarms"]["items"])
    session_server.advance(seconds=1)
    view = wait_for(b.get, lambda v: by_condition(v)["reaction"]["escalated_at"] is not None)
    high = [a for a in view["alarms"]["items"] if a["priority"] == "HIGH"]
    assert all(a["escalated_at"] is not None for a in high)
    assert sorted(escalated_alarms(database_url, b.sid)) == sorted(a["id"] for a in high)
    session_server.advance(minutes=5)  # vitals overdue while paused (MEDIUM) …
    wait_for(b.get, lambda v: "vitals_overdue" in by_condition(v))
    session_server.advance(minutes=3)  # … escalates 2 min later
    wait_for(b.get, lambda v: by_condition(v)["vitals_overdue"]["escalated_at"] is not None)
    ids = escalated_alarms(database_url, b.sid)
    assert len(ids) == len(set(ids))  # audited once each, never twice


def test_acknowledging_before_the_deadline_cancels_the_escalation(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = low_pressure_reaction(session_server, team)
    session_server.advance(seconds=10)
    for alarm in b.get()["alarms"]["items"]:
        view = b.post("nurse", f"alarms/{alarm['id']}/acknowledge")
    acked = by_condition(view)["reaction"]
    assert acked["acknowledged_by"] is not None  # logged by person
    assert all(a["acknowledged_at"] is not None for a in view["alarms"]["items"])
    assert view["alarms"]["sounding"] is None
    session_server.advance(minutes=3)
    b.get()
    assert escalations(database_url, b.sid) == 0
    twice = team["nurse"].post(
        f"/api/v1/sessions/{b.sid}/alarms/{acked['id']}/acknowledge", json={}
    )
    assert twice.status_code == 409
    unknown = team["nurse"].post(f"/api/v1/sessions/{b.sid}/alarms/999/acknowledge", json={})
    assert unknown.status_code == 404


def test_audio_pause_silences_for_two_minutes_and_acknowledges_nothing(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = low_pressure_reaction(session_server, team)
    view = b.post("nurse", "alarms/audio-pause")
    assert view["alarms"]["sounding"] is None
    assert view["alarms"]["audio_paused_seconds"] == 120
    assert all(a["acknowledged_at"] is None for a in view["alarms"]["items"])
    session_server.advance(seconds=119)
    assert b.get()["alarms"]["sounding"] is None
    session_server.advance(seconds=1)
    assert b.get()["alarms"]["sounding"] == "HIGH"


def test_a_high_alarm_latches_after_its_condition_clears(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = low_pressure_reaction(session_server, team)
    session_server.advance(minutes=3)
    # still low while the reaction is open: the set's own HIGH alarm
    view = b.post("nurse", "vitals", {**OK_VITALS, "systolic_bp": 86, "confirm": True})
    low = by_condition(view)["vitals"]
    assert low["priority"] == "HIGH" and "systolic 86 mmHg" in low["message"]
    session_server.advance(minutes=3)
    view = b.post("nurse", "vitals", OK_VITALS)  # pressure back to 124
    low = by_condition(view)["vitals"]
    assert low["active"] and low["latched"]  # still shown until acknowledged
    view = b.post("physician", f"alarms/{low['id']}/acknowledge")
    assert not by_condition(view)["vitals"]["active"]


def test_a_skin_only_reaction_pauses_with_a_medium_alarm_that_ends_when_resolved(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=4)
    view = b.post("nurse", "reactions", {"symptoms": ["flushing"]})
    reaction = by_condition(view)["reaction"]
    assert reaction["priority"] == "MEDIUM" and reaction["value"] == "Flushing"
    assert view["status"] == "paused" and view["alarms"]["sounding"] == "MEDIUM"
    session_server.advance(minutes=3)
    b.vitals()
    view = b.post("nurse", "reactions/1/resolve", {"brown_grade": 1})
    assert "reaction" not in {a["condition"] for a in view["alarms"]["items"] if a["active"]}


def test_the_reaction_button_raises_a_high_alarm_that_latches_when_resolved(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=4)
    view = b.post("nurse", "reactions", {"symptoms": ["urticaria", "wheeze"]})
    reaction = by_condition(view)["reaction"]
    assert reaction["priority"] == "HIGH" and reaction["value"] == "Hives (urticaria); Wheeze"
    assert "stop the infusion" in reaction["message"]
    assert view["status"] == "paused" and view["alarms"]["sounding"] == "HIGH"
    session_server.advance(minutes=3)
    b.vitals()
    view = b.post("nurse", "reactions/1/resolve", {"brown_grade": 2})
    reaction = by_condition(view)["reaction"]
    assert reaction["active"] and reaction["latched"]  # shown until someone acknowledges it
    view = b.post("nurse", f"alarms/{reaction['id']}/acknowledge")
    assert not by_condition(view)["reaction"]["active"]
