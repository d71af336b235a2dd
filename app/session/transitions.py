"""The moves the session decisions share: accepting, keeping the step timer, starting and
stopping a step, pausing, checking what a person typed, and a physician's override of a gate."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from app.decision import Accepted, Event, Refused
from app.session import ledger as L
from app.session.commands import Ctx
from app.session.ledger import Segment
from app.session.record import Reaction, SessionState, session_start

Result = Accepted[SessionState] | Refused


def accept(state: SessionState, *events: Event, timer: bool = False) -> Accepted[SessionState]:
    return Accepted(state, tuple(events), timer)


def with_timer(state: SessionState, deadline: datetime | None) -> SessionState:
    return replace(
        state, deadline=deadline, timer_generation=state.timer_generation + 1, overdue=False
    )


def duration(value: Decimal) -> timedelta:
    # Rounded up to the microsecond: a step never ends a hair before its volume is given.
    micro = (value * 60_000_000).to_integral_value(rounding=ROUND_CEILING)
    return timedelta(microseconds=int(micro))


def user_time(
    given: datetime | None, ctx: Ctx, earliest: datetime | None, what: str
) -> datetime | Refused:
    """A time a person typed: not in the future, not before `earliest`."""
    at = given or ctx.now
    if at.tzinfo is None:
        return Refused(f"{what} needs a time zone", "invalid")
    if at > ctx.now:
        return Refused(f"{what} cannot be in the future", "invalid")
    if earliest is not None and at < earliest:
        return Refused(f"{what} cannot be before {earliest.isoformat()}", "invalid")
    return at


def required_text(value: str, what: str, limit: int = 500) -> str | Refused:
    cleaned = (value or "").strip()
    if not cleaned:
        return Refused(f"{what} is required", "invalid")
    if len(cleaned) > limit:
        return Refused(f"{what} must be at most {limit} characters", "invalid")
    return cleaned


def physician_override(
    ctx: Ctx, command: str, gates: list[str], reason: str
) -> Event | Refused | None:
    """A safety gate stands unless a physician overrides it with a reason; the override is an
    event of its own (timeline, report, audit). No gate: nothing to override."""
    if not gates:
        return None
    why = "; ".join(gates)
    cleaned = (reason or "").strip()
    if not cleaned:
        return Refused(f"{why}: a physician may {command} anyway with an override and a reason")
    if ctx.role != "physician":
        return Refused(
            f"{why}: only a physician may override this, not the {ctx.role}", "forbidden"
        )
    if len(cleaned) > 2000:
        return Refused("the override reason must be at most 2000 characters", "invalid")
    return Event("safety_override", {"command": command, "gates": gates, "reason": cleaned})


def stop_segment(state: SessionState, at: datetime) -> SessionState:
    running = state.running_segment
    if running is None:
        return state
    return replace(state, segments=(*state.segments[:-1], replace(running, stopped_at=at)))


def start_step(state: SessionState, index: int, at: datetime) -> tuple[SessionState, Event]:
    plan = state.plan
    step = plan.steps[index]
    given = L.ledger(plan, state.segments, at).delivered
    minutes = L.planned_minutes(plan, index, given)
    if step.is_infusion:
        limit = L.final_step_volume(plan, index, given) if plan.is_last(index) else None
        segment = Segment(index, step.solution, step.rate_ml_h, at, None, None, limit)
    else:
        dose = step.dose if not plan.is_last(index) else L.remaining_dose(plan, given)
        segment = Segment(index, None, None, at, at, dose, None)
    new = replace(
        state,
        status="running",
        current=index,
        next_step=None,
        segments=(*state.segments, segment),
        vitals_gate=state.vitals_count,
    )
    new = with_timer(new, at + duration(minutes))
    event = Event(
        "step_started",
        {
            "step": index,
            "solution": step.solution,
            "rate_ml_h": str(step.rate_ml_h) if step.rate_ml_h is not None else None,
            "dose": str(segment.dose_given) if segment.dose_given is not None else None,
            "minutes": str(minutes),
            "deadline": new.deadline.isoformat() if new.deadline else None,
        },
    )
    return new, event


def start_observation(state: SessionState, at: datetime, minutes: Decimal) -> SessionState:
    new = replace(
        state,
        status="observing",
        next_step=None,
        observation_started_at=at,
        observation_done=False,
        vitals_gate=state.vitals_count,
        observation_left=None,
    )
    return with_timer(new, at + duration(minutes))


def pause_infusion(
    state: SessionState, ctx: Ctx, stopped_given: datetime | None
) -> SessionState | Refused:
    if state.status not in ("running", "step_due", "observing"):
        return Refused(f"only a running or observed session can be paused; it is {state.status}")
    running = state.running_segment
    earliest = (
        running.started_at if running else (state.observation_started_at or session_start(state))
    )
    stopped_at = user_time(stopped_given, ctx, earliest, "the time the infusion was stopped")
    if isinstance(stopped_at, Refused):
        return stopped_at
    new = stop_segment(state, stopped_at)
    left = None
    if state.status == "observing" and not state.observation_done and state.deadline:
        left = Decimal(max((state.deadline - ctx.now).total_seconds(), 0)) / 60
    new = replace(
        new,
        status="paused",
        paused_from=state.status,
        paused_at=stopped_at,
        observation_left=left,
        vitals_gate=state.vitals_count,
    )
    return with_timer(new, None)


def replace_reaction(state: SessionState, reaction: Reaction) -> SessionState:
    reactions = tuple(reaction if r.number == reaction.number else r for r in state.reactions)
    return replace(state, reactions=reactions)
