"""Technical alarms: what the session's own clock says is late (product-spec §4). Pure.

`conditions(state, now)` lists the technical conditions met at `now`; `reconcile` raises the
new ones on the alarm board and ends those no longer met, through the same alarm logic as the
physiological alarms (so acknowledgement, audio pause and escalation work the same way);
`next_change(state, now)` is when the list can next change without a command, which the shell
keeps as a durable timer.

- A step is due (LOW) and, when its pump change is not confirmed within 2 minutes, the step is
  unconfirmed (MEDIUM).
- Vitals are due before each step ends (LOW, in its last 2 minutes) and overdue once it has
  ended without them (MEDIUM); within a step and the observation they are due again at least
  every 30 minutes (the session's setting), so a 3-hour last step is not left unwatched; while
  paused they are due every 5 minutes; the observation's vitals are overdue once the
  observation is over without them.
- Lost contact: a running or step-due session whose vitals are overdue and which no bedside
  screen has shown for 2 minutes (MEDIUM), 5 minutes (HIGH). Whether a screen is open is a fact
  of the live hub, not of the state: ``lost_contact`` takes it as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from app.alarms import logic
from app.alarms.logic import AlarmBoard, Priority
from app.session.machine import SessionState, vitals_gate_met
from app.session.plan import Plan
from app.vitals.rules import CONDITION_WORDS

STEP_DUE = "step_due"
STEP_UNCONFIRMED = "step_unconfirmed"
VITALS_DUE = "vitals_due"
VITALS_OVERDUE = "vitals_overdue"
LOST_CONTACT = "lost_contact"
# The conditions `reconcile` keeps in step with the state; lost contact has its own.
CODES = frozenset({STEP_DUE, STEP_UNCONFIRMED, VITALS_DUE, VITALS_OVERDUE})


@dataclass(frozen=True)
class TechnicalSettings:
    confirm_within: timedelta = timedelta(minutes=2)  # a due step, before it turns MEDIUM
    vitals_due_soon: timedelta = timedelta(minutes=2)  # LOW before a step or observation ends
    paused_vitals_every: timedelta = timedelta(minutes=5)
    paused_vitals_soon: timedelta = timedelta(minutes=1)
    lost_contact_medium: timedelta = timedelta(minutes=2)  # no bedside screen this long
    lost_contact_high: timedelta = timedelta(minutes=5)
    zone: tzinfo = UTC  # the facility's: messages say times as people read them

    def at(self, moment: datetime) -> str:
        """ "09:58 EST": a time in a message."""
        return moment.astimezone(self.zone).strftime("%H:%M %Z")


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


def _within_step_due_at(state: SessionState) -> datetime | None:
    """Within a running step or the observation: vitals are due again this long after the
    latest set (or the start of the step), whatever the step's length."""
    if state.status == "running" and state.segments:
        since = state.segments[-1].started_at  # a dose step's segment is closed at once
    elif state.status == "observing" and state.observation_started_at is not None:
        since = state.observation_started_at
    else:
        return None
    if state.last_vitals_at is not None and state.last_vitals_at > since:
        since = state.last_vitals_at
    return since + timedelta(minutes=float(state.vitals_every_minutes))


def _cadence(state: SessionState, now: datetime, settings: TechnicalSettings) -> list[Condition]:
    due = _within_step_due_at(state)
    if due is None:
        return []
    every = f"{state.vitals_every_minutes.normalize():f} min"
    since = due - timedelta(minutes=float(state.vitals_every_minutes))
    if now >= due:
        return [
            Condition(
                VITALS_OVERDUE,
                "MEDIUM",
                f"Vitals are overdue: due every {every} within a step, and none since "
                f"{settings.at(since)}.",
                f"due {settings.at(due)}",
                f"every {every}",
            )
        ]
    if now >= due - settings.vitals_due_soon:
        return [
            Condition(
                VITALS_DUE,
                "LOW",
                f"Vitals are due at {settings.at(due)} (every {every} within a step).",
                f"due {settings.at(due)}",
                f"every {every}",
            )
        ]
    return []


def conditions(
    state: SessionState, now: datetime, settings: TechnicalSettings = DEFAULTS
) -> list[Condition]:
    """Every technical condition met at `now`; of the vitals ones, only the gravest."""
    found = _conditions(state, now, settings) + _cadence(state, now, settings)
    vitals = [c for c in found if c.code in (VITALS_DUE, VITALS_OVERDUE)]
    if len(vitals) > 1:
        keep = max(vitals, key=lambda c: c.priority == "MEDIUM")
        found = [c for c in found if c not in vitals or c is keep]
    return found


def _conditions(
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
                    f"{prompt}: due since {settings.at(since)} and not confirmed.",
                    settings.at(since),
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
                    f"due {settings.at(due)}",
                    f"every {every}",
                )
            )
        elif due is not None and now >= due - settings.paused_vitals_soon:
            out.append(
                Condition(
                    VITALS_DUE,
                    "LOW",
                    f"Vitals are due at {settings.at(due)} (every {every} while paused).",
                    f"due {settings.at(due)}",
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
    due = _within_step_due_at(state)
    if due is not None:
        # Only within the step: its deadline brings a command (and a new check) of its own.
        candidates += [
            at
            for at in (due - settings.vitals_due_soon, due)
            if state.deadline is None or at < state.deadline
        ]
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


def contact_matters(
    state: SessionState, now: datetime, settings: TechnicalSettings = DEFAULTS
) -> bool:
    """Only a running or step-due session whose vitals are overdue can lose contact."""
    return state.status in ("running", "step_due") and any(
        c.code == VITALS_OVERDUE for c in conditions(state, now, settings)
    )


def lost_contact(
    state: SessionState,
    now: datetime,
    absent_since: datetime | None,
    settings: TechnicalSettings = DEFAULTS,
) -> Condition | None:
    """Lost contact with a running or step-due session: its vitals are overdue and no bedside
    screen has shown it since `absent_since` (None: a screen shows it now)."""
    if absent_since is None or not contact_matters(state, now, settings):
        return None
    gone = now - absent_since
    if gone >= settings.lost_contact_high:
        priority: Priority = "HIGH"
    elif gone >= settings.lost_contact_medium:
        priority = "MEDIUM"
    else:
        return None
    return Condition(
        LOST_CONTACT,
        priority,
        f"Lost contact: no bedside screen has shown this session for {_minutes(gone)} "
        "and its vitals are overdue. Go to the patient.",
        _minutes(gone),
        _minutes(
            settings.lost_contact_high if priority == "HIGH" else settings.lost_contact_medium
        ),
    )


def contact_reconcile(
    board: AlarmBoard, wanted: Condition | None, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """Bring the lost-contact alarm in line with `wanted`: end one of another priority (or
    all, when contact is back), raise the wanted one if it is not up yet."""
    events: list[logic.Event] = []
    for alarm in board.active:
        stale = wanted is None or alarm.priority != wanted.priority
        if alarm.condition == LOST_CONTACT and alarm.condition_active and stale:
            result = logic.condition_cleared(board, LOST_CONTACT, now)
            if isinstance(result, logic.Accepted):
                board = result.state
                events.extend(result.events)
            break  # condition_cleared ends every alarm of the condition at once
    if wanted is not None and not any(
        a.condition == LOST_CONTACT and a.priority == wanted.priority and a.condition_active
        for a in board.active
    ):
        result = logic.raise_alarm(
            board,
            LOST_CONTACT,
            wanted.priority,
            "technical",
            wanted.message,
            wanted.value,
            wanted.limit,
            now,
        )
        if isinstance(result, logic.Accepted):
            board = result.state
            events.extend(result.events)
    return board, events


def lost_contact_shown(board: AlarmBoard) -> Priority | None:
    """The priority of the active lost-contact alarm whose condition holds, if any."""
    return next(
        (a.priority for a in board.active if a.condition == LOST_CONTACT and a.condition_active),
        None,
    )


def reconcile(
    board: AlarmBoard, wanted: list[Condition], now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """End the technical alarms whose condition is no longer met, then raise the conditions
    that have no active alarm yet (an existing one is left as it is, acknowledged or not)."""
    events: list[logic.Event] = []

    def apply(result: logic.Result) -> None:
        nonlocal board
        if isinstance(result, logic.Accepted):
            board = result.state
            events.extend(result.events)

    met = {(c.code, c.priority) for c in wanted}
    for alarm in board.active:
        if alarm.kind != "technical" or not alarm.condition_active or alarm.condition not in CODES:
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


TECHNICAL_WORDS: dict[str, str] = {
    STEP_DUE: "step due",
    STEP_UNCONFIRMED: "pump change not confirmed",
    VITALS_DUE: "vitals due",
    VITALS_OVERDUE: "vitals overdue",
    LOST_CONTACT: "lost contact",
}


def condition_words(code: str) -> str:
    """Any alarm condition code, physiological or technical, in words."""
    if code == "reaction":
        return "reaction"
    return TECHNICAL_WORDS.get(code) or CONDITION_WORDS.get(code) or code.replace("_", " ")
