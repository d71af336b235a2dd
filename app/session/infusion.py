"""Running the infusion: vitals, the pump change of each step, the step timer, holds, the
observation that ends it, and an abort."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from app.decision import Event, Refused
from app.session.bedside_checks import after_pump_start, checks_before_pump
from app.session.commands import (
    Abort,
    AmendLatestVitals,
    Complete,
    ConfirmStep,
    Ctx,
    Pause,
    RecordVitals,
    TimerFired,
)
from app.session.record import OUTCOMES, SessionState, delivered, vitals_gate_met
from app.session.transitions import (
    Result,
    accept,
    pause_infusion,
    replace_reaction,
    required_text,
    start_observation,
    start_step,
    stop_segment,
    with_timer,
)

LATE_FIRE = timedelta(seconds=60)


def record_vitals(state: SessionState, command: RecordVitals, ctx: Ctx) -> Result:
    if state.status == "planned":
        return Refused("vitals are recorded once the plan is approved and ready")
    new = replace(
        state,
        last_vitals_at=ctx.now,
        vitals_count=state.vitals_count + 1,
        last_vitals_within_limits=command.within_limits,
        last_vitals_findings=command.findings,
    )
    if state.status == "ready":
        checklist = replace(
            state.checklist,
            baseline_vitals=True,
            baseline_spirometry=state.checklist.baseline_spirometry or command.has_spirometry,
            baseline_high=command.high_findings,
        )
        new = replace(new, checklist=checklist)
    reaction = new.open_reaction
    if reaction is not None and command.symptoms:
        # A reaction is graded on its worst: symptoms seen while it is open are part of it.
        merged = tuple(dict.fromkeys((*reaction.symptoms, *command.symptoms)))
        new = replace_reaction(new, replace(reaction, symptoms=merged))
    return accept(
        new,
        Event(
            "vitals_recorded",
            {
                "within_limits": command.within_limits,
                "status": state.status,
                "findings": list(command.findings),
            },
        ),
    )


def amend_latest_vitals(state: SessionState, command: AmendLatestVitals, ctx: Ctx) -> Result:
    if state.last_vitals_at is None:
        return Refused("there are no vitals to amend", "invalid")
    new = replace(
        state,
        last_vitals_within_limits=command.within_limits,
        last_vitals_findings=command.findings,
    )
    if command.baseline and state.status == "ready":
        new = replace(new, checklist=replace(new.checklist, baseline_high=command.high_findings))
    return accept(
        new,
        Event(
            "vitals_amended",
            {"within_limits": command.within_limits, "findings": list(command.findings)},
        ),
    )


def confirm_step(state: SessionState, command: ConfirmStep, ctx: Ctx) -> Result:
    if state.status != "step_due":
        return Refused(f"no pump change is due; the session is {state.status}")
    if state.open_reaction is not None:
        return Refused("a reaction is open: resolve it first")
    if not vitals_gate_met(state):
        step = (state.current or 0) + 1
        return Refused(f"record the vitals of step {step} first")
    assert state.next_step is not None
    stopped = stop_segment(state, ctx.now)
    given = delivered(stopped, ctx.now)
    if given >= state.plan.target_dose:
        # The pump ran long enough at the old rate to give the whole target: no new bag.
        new = start_observation(after_pump_start(stopped), ctx.now, state.observation_minutes)
        return accept(new, Event("target_reached", {"delivered": str(given)}), timer=True)
    checks = checks_before_pump(state, state.next_step, ctx, command.cosigner)
    if isinstance(checks, Refused):
        return checks
    stopped = after_pump_start(stopped)
    new, event = start_step(stopped, state.next_step, ctx.now)
    confirmed = Event("step_confirmed", {"step": state.next_step})
    return accept(new, *checks, confirmed, event, timer=True)


def timer_fired(state: SessionState, command: TimerFired, ctx: Ctx) -> Result:
    if command.generation != state.timer_generation or state.deadline is None:
        return Refused("this timer was replaced", "stale")
    if ctx.now < state.deadline:
        return Refused("the timer is not due yet", "stale")
    late = ctx.now - state.deadline
    info = {
        "due_at": state.deadline.isoformat(),
        "late_seconds": round(late.total_seconds(), 3),
        "overdue": late > LATE_FIRE,
    }
    if state.status == "running":
        assert state.current is not None
        if state.plan.is_last(state.current):
            # The last step is volume-limited: the pump has stopped by itself at the deadline.
            stopped = stop_segment(state, state.deadline)
            new = start_observation(stopped, state.deadline, state.observation_minutes)
            return accept(new, Event("last_step_done", info), timer=True)
        new = replace(
            state,
            status="step_due",
            next_step=state.current + 1,
            deadline=None,
            due_since=state.deadline,
            overdue=late > LATE_FIRE,
        )
        return accept(new, Event("step_due", {**info, "next_step": state.current + 1}), timer=True)
    if state.status == "observing" and not state.observation_done:
        new = replace(state, observation_done=True, deadline=None, overdue=late > LATE_FIRE)
        return accept(new, Event("observation_done", info), timer=True)
    return Refused(f"no timer runs while the session is {state.status}", "stale")


def pause(state: SessionState, command: Pause, ctx: Ctx) -> Result:
    reason = required_text(command.reason, "the reason for the hold")
    if isinstance(reason, Refused):
        return reason
    new = pause_infusion(state, ctx, command.stopped_at)
    if isinstance(new, Refused):
        return new
    new = replace(new, pause_reason=reason)
    assert new.paused_at is not None  # pause_infusion stamps it
    return accept(
        new,
        Event(
            "paused",
            {"reason": reason, "from": state.status, "stopped_at": new.paused_at.isoformat()},
        ),
        timer=True,
    )


def complete(state: SessionState, _: Complete, ctx: Ctx) -> Result:
    if state.status != "observing":
        return Refused(f"a session is completed after its observation; it is {state.status}")
    if not state.observation_done:
        return Refused("the observation period is not over yet")
    if not vitals_gate_met(state):
        return Refused("record the observation vitals first")
    new = with_timer(replace(state, status="completed"), None)
    return accept(
        new, Event("completed", {"delivered": str(delivered(state, ctx.now))}), timer=True
    )


def _close_with_abort(
    state: SessionState, command: Abort, ctx: Ctx
) -> tuple[SessionState, tuple[Event, ...]] | Refused:
    """An open reaction does not outlive the session: the abort carries its grade and outcome
    and closes it, so the record ends graded."""
    reaction = state.open_reaction
    given = (command.reaction_brown_grade, command.reaction_ctcae_grade, command.reaction_outcome)
    if reaction is None:
        if given != (None, None, None):
            return Refused("there is no open reaction to grade with the abort", "state")
        return state, ()
    if command.reaction_brown_grade is None or command.reaction_outcome is None:
        return Refused(
            f"reaction {reaction.number} is open: the abort closes it, so give its Brown grade "
            "(reaction_brown_grade) and outcome (reaction_outcome)",
            "invalid",
        )
    if command.reaction_brown_grade not in (1, 2, 3):
        return Refused("the Brown grade must be 1, 2 or 3", "invalid")
    if command.reaction_ctcae_grade is not None and command.reaction_ctcae_grade not in range(1, 6):
        return Refused("the CTCAE grade must be 1 to 5", "invalid")
    if command.reaction_outcome not in OUTCOMES:
        return Refused(f"the outcome must be one of: {', '.join(OUTCOMES)}", "invalid")
    closed = replace(
        reaction,
        resolved_at=ctx.now,
        brown_grade=command.reaction_brown_grade,
        ctcae_grade=command.reaction_ctcae_grade,
        outcome=command.reaction_outcome,
        closed_by_abort=True,
    )
    event = Event(
        "reaction_closed",
        {
            "reaction": reaction.number,
            "brown_grade": closed.brown_grade,
            "ctcae_grade": closed.ctcae_grade,
            "outcome": closed.outcome,
            "closed_at": ctx.now.isoformat(),
            "by": "abort",
        },
    )
    return replace_reaction(state, closed), (event,)


def abort(state: SessionState, command: Abort, ctx: Ctx) -> Result:
    reason = required_text(command.reason, "the reason for aborting", 2000)
    if isinstance(reason, Refused):
        return reason
    closing = _close_with_abort(state, command, ctx)
    if isinstance(closing, Refused):
        return closing
    new, closed = closing
    new = stop_segment(new, ctx.now)
    new = with_timer(replace(new, status="aborted", abort_reason=reason), None)
    return accept(
        new,
        *closed,
        Event(
            "aborted",
            {"reason": reason, "from": state.status, "delivered": str(delivered(new, ctx.now))},
        ),
        timer=True,
    )
