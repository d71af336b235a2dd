"""Technical alarms from the session's own clock, at and around each deadline (pure)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from app.alarms import logic
from app.protocol.templates import DosesParameters, build
from app.session import machine as M
from app.session import technical_alarms as technical
from app.session.plan import plan_from_protocol
from app.session.technical_alarms import (
    STEP_DUE,
    STEP_UNCONFIRMED,
    VITALS_DUE,
    VITALS_OVERDUE,
    conditions,
    next_change,
    reconcile,
)
from tests.session.walk import Walker

SECOND = timedelta(seconds=1)


def codes(w: Walker, at=None) -> dict[str, str]:
    return {c.code: c.priority for c in conditions(w.state, at or w.now)}


def test_a_running_step_asks_for_vitals_in_its_last_two_minutes() -> None:
    w = Walker()
    w.prepare()
    deadline = w.state.deadline
    assert deadline is not None
    soon = deadline - timedelta(minutes=2)
    assert codes(w, soon - SECOND) == {}
    assert codes(w, soon) == {VITALS_DUE: "LOW"}
    assert next_change(w.state, w.now) == soon
    w.wait(minutes=14)
    w.do(M.RecordVitals(within_limits=True))
    assert codes(w) == {}  # recorded: nothing due
    assert next_change(w.state, w.now) is None


def test_a_step_ended_without_vitals_makes_them_overdue() -> None:
    w = Walker()
    w.prepare()
    w.until_deadline()
    assert w.state.status == "step_due"
    assert codes(w) == {STEP_DUE: "LOW", VITALS_OVERDUE: "MEDIUM"}
    w.do(M.RecordVitals(within_limits=True))
    assert codes(w) == {STEP_DUE: "LOW"}


def test_a_due_step_turns_medium_when_not_confirmed_within_two_minutes() -> None:
    w = Walker()
    w.prepare()
    w.wait(minutes=5)
    w.do(M.RecordVitals(within_limits=True))
    w.until_deadline()
    due = w.state.due_since
    assert due == w.now
    limit = due + timedelta(minutes=2)
    assert codes(w, limit - SECOND) == {STEP_DUE: "LOW"}
    assert codes(w, limit) == {STEP_UNCONFIRMED: "MEDIUM"}
    assert next_change(w.state, w.now) == limit
    prompt = conditions(w.state, w.now)[0].message
    assert "Step 2: set the pump to" in prompt and "from bag 1" in prompt
    w.wait(minutes=3)
    w.do(M.ConfirmStep())
    assert codes(w) == {}


def test_while_paused_vitals_are_due_every_five_minutes() -> None:
    w = Walker()
    w.prepare()
    w.wait(minutes=3)
    w.do(M.Pause("patient to the bathroom"))
    paused = w.now
    assert codes(w, paused + timedelta(minutes=4) - SECOND) == {}
    assert codes(w, paused + timedelta(minutes=4)) == {VITALS_DUE: "LOW"}
    assert codes(w, paused + timedelta(minutes=5)) == {VITALS_OVERDUE: "MEDIUM"}
    assert next_change(w.state, w.now) == paused + timedelta(minutes=4)
    w.wait(minutes=6)
    w.do(M.RecordVitals(within_limits=True))
    assert codes(w) == {}  # the clock restarts from these vitals
    assert codes(w, w.now + timedelta(minutes=5)) == {VITALS_OVERDUE: "MEDIUM"}


def test_the_observation_vitals_are_overdue_once_it_ends_without_them() -> None:
    w = Walker()
    w.prepare()
    while w.state.status in ("running", "step_due"):
        w.step_through()
    assert w.state.status == "observing"
    deadline = w.state.deadline
    assert deadline is not None
    assert codes(w, deadline - timedelta(minutes=2)) == {VITALS_DUE: "LOW"}
    w.until_deadline()
    assert codes(w) == {VITALS_OVERDUE: "MEDIUM"}
    w.do(M.RecordVitals(within_limits=True))
    assert codes(w) == {}


def test_terminal_and_planned_sessions_have_no_technical_conditions() -> None:
    w = Walker()
    assert codes(w) == {}
    w.prepare()
    w.until_deadline()
    w.do(M.Abort("line lost"), "physician")
    assert codes(w) == {}
    assert next_change(w.state, w.now) is None


def test_reconcile_raises_once_and_ends_what_is_no_longer_met() -> None:
    w = Walker()
    w.prepare()
    w.until_deadline()
    board, events = reconcile(logic.AlarmBoard(), conditions(w.state, w.now), w.now)
    assert sorted((e.kind, e.data["condition"]) for e in events) == [
        ("raised", STEP_DUE),
        ("raised", VITALS_OVERDUE),
    ]
    assert all(a.kind == "technical" for a in board.active)
    again, none = reconcile(board, conditions(w.state, w.now), w.now)
    assert none == [] and again == board  # already raised: nothing new
    w.wait(minutes=1)
    w.do(M.RecordVitals(within_limits=True))
    board, events = reconcile(board, conditions(w.state, w.now), w.now)
    assert [(e.kind, e.data["condition"]) for e in events] == [("ended", VITALS_OVERDUE)]
    w.wait(minutes=2)  # now past the two minutes: LOW gives way to MEDIUM
    board, events = reconcile(board, conditions(w.state, w.now), w.now)
    assert [(e.kind, e.data["condition"]) for e in events] == [
        ("ended", STEP_DUE),
        ("raised", STEP_UNCONFIRMED),
    ]
    assert logic.sounding(board, w.now) == "MEDIUM"


def test_an_acknowledged_technical_alarm_is_not_raised_again_while_its_condition_holds() -> None:
    w = Walker()
    w.prepare()
    w.until_deadline()
    board, _ = reconcile(logic.AlarmBoard(), conditions(w.state, w.now), w.now)
    overdue = next(a for a in board.active if a.condition == VITALS_OVERDUE)
    acked = logic.acknowledge(board, overdue.id, 7, w.now)
    assert isinstance(acked, logic.Accepted)
    w.wait(seconds=30)
    board, events = reconcile(acked.state, conditions(w.state, w.now), w.now)
    assert events == []
    assert board.get(overdue.id).acknowledged_by == 7


def test_dose_steps_prompt_for_a_dose_not_a_pump() -> None:
    protocol = build("doses", DosesParameters((Decimal(1), Decimal(10), Decimal(100)), "mg"))
    plan = plan_from_protocol(protocol)
    assert technical.pump_prompt(plan, 1) == "Step 2: give 10 mg"
    assert technical.pump_prompt(plan, 2) == "Step 3: give the rest of the target"
    infusion = Walker().state.plan
    assert infusion.steps[0].rate_ml_h == Decimal("2.0000")
    assert technical.pump_prompt(infusion, 0) == "Step 1: set the pump to 2 mL/h from bag 1"
