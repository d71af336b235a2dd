"""Technical alarms through the API with a manual clock: the stored check timers raise them
when nobody sends a command, commands end them, and they escalate like any other alarm."""

from __future__ import annotations

from tests.session.conftest import SessionServer, wait_for
from tests.session.test_alarms_api import escalations
from tests.session.test_api_races_and_bad_input import at_step_due, ready_session
from tests.support import SignedInClient


def active(view: dict) -> dict[str, str]:
    return {a["condition"]: a["priority"] for a in view["alarms"]["items"] if a["active"]}


def test_a_due_step_left_unconfirmed_for_two_minutes_raises_a_medium_alarm(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b, view = at_step_due(session_server, team)  # due at 15 min, the clock at 16
    assert active(view) == {"step_due": "LOW"}
    assert "set the pump to" in view["alarms"]["items"][0]["message"]
    session_server.advance(seconds=59)
    assert active(b.get()) == {"step_due": "LOW"}
    session_server.advance(seconds=1)  # two minutes after the step came due
    view = wait_for(b.get, lambda v: "step_unconfirmed" in active(v))
    assert active(view) == {"step_unconfirmed": "MEDIUM"}
    assert view["alarms"]["sounding"] == "MEDIUM"
    view = b.post("nurse", "confirm-step", {"expected_version": view["version"]})
    assert active(view) == {}
    assert view["alarms"]["sounding"] is None
    assert escalations(database_url, b.sid) == 0


def test_an_unconfirmed_step_escalates_after_two_more_minutes(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b, _ = at_step_due(session_server, team)
    session_server.advance(minutes=1)
    wait_for(b.get, lambda v: "step_unconfirmed" in active(v))
    session_server.advance(seconds=119)
    assert escalations(database_url, b.sid) == 0
    session_server.advance(seconds=1)
    view = wait_for(
        b.get,
        lambda v: any(a["escalated_at"] for a in v["alarms"]["items"] if a["active"]),
    )
    escalated = [a for a in view["alarms"]["items"] if a["escalated_at"]]
    assert [a["condition"] for a in escalated] == ["step_unconfirmed"]
    assert escalations(database_url, b.sid) == 1


def test_vitals_not_recorded_during_a_step_come_due_then_overdue(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=12, seconds=59)
    assert active(b.get()) == {}
    session_server.advance(seconds=1)  # two minutes before the 15-minute step ends
    wait_for(b.get, lambda v: active(v) == {"vitals_due": "LOW"})
    session_server.advance(minutes=2)
    view = wait_for(b.get, lambda v: v["status"] == "step_due")
    assert active(view) == {"step_due": "LOW", "vitals_overdue": "MEDIUM"}
    confirm = team["nurse"].post(f"/api/v1/sessions/{b.sid}/confirm-step", json={})
    assert confirm.status_code == 409 and "vitals of step 1" in confirm.json()["detail"]
    view = b.vitals()
    assert active(view) == {"step_due": "LOW"}


def test_while_paused_vitals_are_asked_for_every_five_minutes(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = ready_session(session_server, team)
    b.post("nurse", "start")
    session_server.advance(minutes=3)
    b.post("nurse", "pause", {"reason": "patient to the bathroom"})
    session_server.advance(minutes=4)
    wait_for(b.get, lambda v: active(v) == {"vitals_due": "LOW"})
    session_server.advance(minutes=1)
    view = wait_for(b.get, lambda v: active(v) == {"vitals_overdue": "MEDIUM"})
    overdue = next(a for a in view["alarms"]["items"] if a["condition"] == "vitals_overdue")
    assert overdue["limit"] == "every 5 min"
    view = b.vitals()
    assert active(view) == {}
    session_server.advance(minutes=5)
    wait_for(b.get, lambda v: active(v) == {"vitals_overdue": "MEDIUM"})
