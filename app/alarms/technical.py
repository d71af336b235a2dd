"""Technical alarms: what the session's own clock says is late (product-spec §4). Pure.

`conditions(state, now)` lists the technical conditions met at `now`; `reconcile` raises the
new ones on the alarm board and ends those no longer met, through the same alarm logic as the
physiological alarms (so acknowledgement, audio pause and escalation work the same way);
`next_change(state, now)` is when the list can next change without a command, which the shell
keeps as a durable timer.

- A step is due (LOW) and, when its pump change is not confirmed within 2 minutes, the step is
  unconfirmed (MEDIUM).
- Vitals are due before each step ends (LOW, in its last 2 minutes) and overdue once it has
  ended without them (MEDIUM); while paused they are due every 5 minutes; the observation's
  vitals are overdue once the observation is over without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from app.alarms import logic
from app.alarms.logic import AlarmBoard, Priority
from app.session.machine import SessionState, vitals_gate_met
from app.session.plan import Plan

STEP_DUE = "step_due"
STEP_UNCONFIRMED = "step_unconfirmed"
VITALS_DUE = "vitals_due"
VITALS_OVERDUE = "vitals_overdue"
CODES = frozenset({STEP_DUE, STEP_UNCONFIRMED, VITALS_DUE, VITALS_OVERDUE})


@dataclass(frozen=True)
class TechnicalSettings:
    confirm_within: timedelta = timedelta(minutes=2)  # a due step, before it turns MEDIUM
    vitals_due_soon: timedelta = timedelta(minutes=2)  # LOW before a step or observation ends
    paused_vitals_every: timedelta = timedelta(minutes=5)
    paused_vitals_soon: timedelta = timedelta(minutes=1)


DEFAULTS = TechnicalSettings()


@dataclass(frozen=True)
class Condition:
    code: str
    priority: Priority
    message: str
    value: str
    limit: str


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:g} min"


def _plain(value: Decimal | None) -> str:
    """5.0000 -> '5', 2.50 -> '2.5': as a pump or a syringe shows it."""
    if value is None:
        return "?"
    text = f"{value.normalize():f}"
    return text


def pump_prompt(plan: Plan, index: int) -> str:
    """What the nurse does at a step change: 'Step 4: set the pump to 25 mL/h from bag 2'."""
    step = plan.steps[index]
    if step.is_infusion:
        rate = _plain(step.rate_ml_h)
        return f"Step {index + 1}: set the pump to {rate} mL/h from bag {step.solution}"
    dose = "the rest of the target" if plan.is_last(index) else f"{_plain(step.dose)} {plan.unit}"
    return f"Step {index + 1}: give {dose}"


def _paused_vitals_due_at(state: SessionState, settings: TechnicalSettings) -> datetime | None:
    if state.paused_at is None:
        return None
    since = state.paused_at
    if state.last_vitals_at is not None and state.last_vitals_at > since:
        since = state.last_vitals_at
    return since + settings.paused_vitals_every


def conditions(
    state: SessionState, now: datetime, settings: TechnicalSettings = DEFAULTS
) -> list[Condition]:
    out: list[Condition] = []
    step = (state.current or 0) + 1
    if state.status == "step_due" and state.next_step is not None:
        since = state.due_since or now
        prompt = pump_prompt(state.plan, state.next_step)
        if now - since < settings.confirm_within:
            out.append(Condition(STEP_DUE, "LOW", f"{prompt}, then confirm.", prompt, ""))
        else:
            out.append(
                Condition(
                    STEP_UNCONFIRMED,
                    "MEDIUM",
                    f"{prompt}: due since {since.isoformat(timespec='seconds')} and not confirmed.",
                    since.isoformat(timespec="seconds"),
                    _minutes(settings.confirm_within),
                )
            )
        if not vitals_gate_met(state):
            out.append(
                Condition(
                    VITALS_OVERDUE,
                    "MEDIUM",
                    f"The vitals of step {step} are overdue: record them before the pump change.",
                    f"step {step}",
                    "each step",
                )
            )
    elif state.status == "running" and state.deadline is not None:
        if not vitals_gate_met(state) and now >= state.deadline - settings.vitals_due_soon:
            out.append(
                Condition(
                    VITALS_DUE,
                    "LOW",
                    f"Vitals of step {step} are due before the step ends.",
                    f"step {step}",
                    "each step",
                )
            )
    elif state.status == "paused":
        due = _paused_vitals_due_at(state, settings)
        every = _minutes(settings.paused_vitals_every)
        if due is not None and now >= due:
            out.append(
                Condition(
                    VITALS_OVERDUE,
                    "MEDIUM",
                    f"Vitals are overdue: record them every {every} while paused.",
                    f"due {due.isoformat(timespec='seconds')}",
                    f"every {every}",
                )
            )
        elif due is not None and now >= due - settings.paused_vitals_soon:
            out.append(
                Condition(
                    VITALS_DUE,
                    "LOW",
                    f"Vitals are due at {due.isoformat(timespec='seconds')} (every {every} "
                    "while paused).",
                    f"due {due.isoformat(timespec='seconds')}",
                    f"every {every}",
                )
            )
    elif state.status == "observing" and not vitals_gate_met(state):
        if state.observation_done:
            out.append(
                Condition(
                    VITALS_OVERDUE,
                    "MEDIUM",
                    "The observation is over: its vitals are overdue.",
                    "observation",
                    "end of observation",
                )
            )
        elif state.deadline is not None and now >= state.deadline - settings.vitals_due_soon:
            out.append(
                Condition(
                    VITALS_DUE,
                    "LOW",
                    "Observation vitals are due before the observation ends.",
                    "observation",
                    "end of observation",
                )
            )
    return out


def next_change(
    state: SessionState, now: datetime, settings: TechnicalSettings = DEFAULTS
) -> datetime | None:
    """The next moment `conditions` can change with no command in between (step and
    observation deadlines are the step timer's; they come with a command)."""
    candidates: list[datetime] = []
    if state.status == "step_due" and state.due_since is not None:
        candidates.append(state.due_since + settings.confirm_within)
    elif state.status in ("running", "observing") and state.deadline is not None:
        if not vitals_gate_met(state):
            candidates.append(state.deadline - settings.vitals_due_soon)
    elif state.status == "paused":
        due = _paused_vitals_due_at(state, settings)
        if due is not None:
            candidates += [due - settings.paused_vitals_soon, due]
    future = [at for at in candidates if at > now]
    return min(future) if future else None


def reconcile(
    board: AlarmBoard, wanted: list[Condition], now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """End the technical alarms whose condition is no longer met, then raise the conditions
    that have no active alarm yet (an existing one is left as it is, acknowledged or not)."""
    events: list[logic.Event] = []

    def apply(result: logic.Result) -> None:
        nonlocal board
        if isinstance(result, logic.Accepted):
            board = result.board
            events.extend(result.events)

    met = {(c.code, c.priority) for c in wanted}
    for alarm in board.active:
        if alarm.kind != "technical" or not alarm.condition_active:
            continue
        if (alarm.condition, alarm.priority) not in met:
            apply(logic.condition_cleared(board, alarm.condition, now))
    for condition in wanted:
        present = any(
            a.condition == condition.code and a.priority == condition.priority for a in board.active
        )
        if not present:
            apply(
                logic.raise_alarm(
                    board,
                    condition.code,
                    condition.priority,
                    "technical",
                    condition.message,
                    condition.value,
                    condition.limit,
                    now,
                )
            )
    return board, events
