"""The acceptance scenario of step 3 through the pure machine, and specific refusals."""

from __future__ import annotations

from decimal import Decimal

from app.session import machine as M
from tests.session.walk import PHARMACIST, PHYSICIAN, Walker


def test_full_session_with_a_reaction_at_step_9_completes_exactly_the_target() -> None:
    w = Walker(2000)
    w.prepare()
    for _ in range(8):
        w.step_through()
    assert (w.state.status, w.state.current) == ("running", 8)  # step 9 runs
    w.wait(minutes=5)
    w.do(M.ReportReaction(("urticaria", "flushing")))
    assert w.state.status == "paused" and w.state.running_segment is None
    w.wait(minutes=2)
    w.do(M.RecordTreatment("diphenhydramine", "25 mg", "IV"))
    w.wait(minutes=20)
    w.do(M.ResolveReaction(brown_grade=1))
    assert "fresh vitals" in w.refuse(M.Resume("back1"), PHYSICIAN).reason
    w.wait(minutes=1)
    w.do(M.RecordVitals(within_limits=True))
    assert "physician" in w.refuse(M.Resume("back1")).reason  # a nurse may not resume
    w.do(M.Resume("back1", Decimal(2), 1), PHYSICIAN)
    added = w.state.plan.steps[9:]
    assert [s.origin for s in added] == [
        "step_back",
        "intermediate",
        "step_back",
        "plan",
        "plan",
        "plan",
    ]
    assert added[0].rate_ml_h == Decimal(40) and added[0].minutes == Decimal(30)
    assert added[1].solution == 3 and added[1].rate_ml_h < Decimal(10)
    w.wait(minutes=1)
    w.do(M.ConfirmStep())
    while w.state.status in ("running", "step_due"):
        w.step_through()
    assert w.state.status == "observing"
    assert w.delivered() == Decimal(2000)  # exactly, not approximately
    w.wait(minutes=10)
    w.do(M.RecordVitals(within_limits=True))
    assert "not over" in w.refuse(M.Complete()).reason
    w.until_deadline()
    w.do(M.Complete())
    assert w.state.status == "completed"
    assert "completed" in w.refuse(M.Abort("too late"), PHYSICIAN).reason


def test_start_says_what_is_missing() -> None:
    w = Walker()
    w.do(M.Approve(), PHYSICIAN)
    w.do(M.VerifyBags(), PHARMACIST)
    w.do(M.ChecklistItem("consent"))
    refusal = w.refuse(M.Start())
    assert refusal.reason == (
        "before the start: baseline vitals, premedications, rescue kit at the bedside still missing"
    )


def test_confirm_step_is_gated_on_vitals_and_open_reactions() -> None:
    w = Walker()
    w.prepare()
    w.until_deadline()
    assert w.state.status == "step_due"
    assert w.refuse(M.ConfirmStep()).reason == "record the vitals of step 1 first"
    w.do(M.RecordVitals(within_limits=True))
    w.do(M.ConfirmStep())
    assert w.state.current == 1


def test_the_pump_keeps_running_at_the_old_rate_until_confirmed_and_it_counts() -> None:
    w = Walker()
    w.prepare()
    w.wait(minutes=5)
    w.do(M.RecordVitals(within_limits=True))
    w.until_deadline()
    on_time = w.delivered()
    w.wait(minutes=15)  # nobody changed the pump for 15 minutes
    assert w.delivered() == on_time * 2  # 2 mL/h for 15 more minutes of the 1/100 bag
    w.do(M.ConfirmStep())
    assert w.state.segments[0].stopped_at == w.now


def test_after_a_reaction_finish_needs_something_left_to_finish() -> None:
    w = Walker()
    w.prepare()
    w.wait(minutes=5)
    w.do(M.RecordVitals(within_limits=True))
    w.until_deadline()  # step 1 has run its time; the pump change is due
    w.do(M.ReportReaction(("flushing",)))
    w.wait(minutes=10)
    w.do(M.ResolveReaction(brown_grade=1))
    w.do(M.RecordVitals(within_limits=True))
    refusal = w.refuse(M.Resume("finish"), PHYSICIAN)
    assert "choose repeat or step back" in refusal.reason
    assert w.refuse(M.Resume("back1"), PHYSICIAN).reason == (
        "there are not 1 earlier steps to step back to"
    )
    w.do(M.Resume("repeat"), PHYSICIAN)
    w.do(M.ConfirmStep())
    assert w.state.running_segment.rate_ml_h == Decimal(2)


def test_stale_and_early_timers_are_refused() -> None:
    w = Walker()
    w.prepare()
    generation = w.state.timer_generation
    assert w.refuse(M.TimerFired(generation), "system").kind == "stale"  # not due yet
    w.wait(minutes=3)
    w.do(M.Pause("patient to the bathroom"))
    w.wait(minutes=30)
    assert w.refuse(M.TimerFired(generation), "system").kind == "stale"  # replaced by the pause


def test_a_late_timer_is_flagged_overdue() -> None:
    w = Walker()
    w.prepare()
    assert w.state.deadline is not None
    w.now = w.state.deadline
    w.wait(seconds=90)  # e.g. the server was down
    w.do(M.TimerFired(w.state.timer_generation), "system")
    assert w.state.overdue and w.events[-1].data["late_seconds"] == 90.0
