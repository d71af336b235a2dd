"""The alarms of one session as pure data and decisions (product-spec §4, IEC 60601-1-8).

An `AlarmBoard` holds the alarms of one session and its audio-pause state. Every command is a
function `command(board, ..., now) -> Accepted | Refused`: an accepted one returns the new board
and the events to audit, a refused one a one-line reason, and the board is untouched. No I/O, no
clock: the time comes in as an argument, and it never runs back.

- HIGH alarms latch: when their condition clears they stay (condition_active=False) until
  acknowledged. MEDIUM and LOW alarms end when their condition clears.
- Acknowledging is logged by person and time. An acknowledged alarm is silent; it stays on the
  board while its condition is active and ends when the condition clears.
- An audio pause is something else: it silences, for 2 minutes, the alarms active and not
  acknowledged when it starts, acknowledges nothing and ends by itself. An alarm raised during
  the pause stays silent too unless its priority is higher than every alarm the pause silenced:
  then it breaks through.
- An unacknowledged HIGH alarm escalates to every physician 30 s after it was raised, a MEDIUM
  one after 2 minutes (`AlarmSettings`); acknowledging first cancels it. The shell keeps durable
  timers at `escalation_deadlines(board)` and calls `escalate_due(board, now)` when they fire.
- Every command first applies an audio pause that has run out (`tick` does only that).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from app.decision import Accepted, Event, Refused

Priority = Literal["HIGH", "MEDIUM", "LOW"]
Kind = Literal["physiological", "technical"]

PRIORITIES: tuple[Priority, ...] = ("HIGH", "MEDIUM", "LOW")
KINDS: tuple[Kind, ...] = ("physiological", "technical")
RANK: dict[str, int] = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}
LATCHING: frozenset[str] = frozenset({"HIGH"})

# What the screen shows: (colour, flashing).
VISUAL: dict[str, tuple[str, bool]] = {
    "HIGH": ("red", True),
    "MEDIUM": ("yellow", True),
    "LOW": ("cyan", False),
}
# The audio pattern: pulses per burst.
AUDIO_PULSES: dict[str, int] = {"HIGH": 10, "MEDIUM": 3, "LOW": 1}

AUDIO_PAUSE = timedelta(minutes=2)


@dataclass(frozen=True)
class AlarmSettings:
    """How long an unacknowledged alarm waits before it escalates; None = never."""

    escalate_high_after: timedelta | None = timedelta(seconds=30)
    escalate_medium_after: timedelta | None = timedelta(minutes=2)
    escalate_low_after: timedelta | None = None

    def __post_init__(self) -> None:
        for delay in (
            self.escalate_high_after,
            self.escalate_medium_after,
            self.escalate_low_after,
        ):
            if delay is not None and delay <= timedelta(0):
                raise ValueError("an escalation delay must be longer than zero")

    @classmethod
    def for_speed(cls, speed: float) -> AlarmSettings:
        """Escalation measures how long a person has not answered: on a training clock that
        runs `speed` times faster, the delays in session time are `speed` times longer, so they
        last 30 s and 2 min of the nurse's time."""
        base = cls()
        return cls(
            *(
                None if delay is None else delay * speed
                for delay in (
                    base.escalate_high_after,
                    base.escalate_medium_after,
                    base.escalate_low_after,
                )
            )
        )

    def escalation_delay(self, priority: str) -> timedelta | None:
        return {
            "HIGH": self.escalate_high_after,
            "MEDIUM": self.escalate_medium_after,
            "LOW": self.escalate_low_after,
        }[priority]


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    id: int
    priority: Priority
    kind: Kind
    condition: str
    message: str
    value: str  # the triggering value, as shown
    limit: str  # the limit in force when it was raised (or last updated)
    raised_at: datetime
    condition_active: bool = True
    acknowledged_by: int | None = None
    acknowledged_at: datetime | None = None
    audio_paused_until: datetime | None = None
    cleared_at: datetime | None = None  # when the alarm ended
    escalated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def latched(self) -> bool:
        """A HIGH alarm whose condition has cleared, waiting for its acknowledgement."""
        return self.active and not self.condition_active

    @property
    def visual(self) -> tuple[str, bool]:
        return VISUAL[self.priority]


@dataclass(frozen=True)
class AudioPause:
    started_at: datetime
    until: datetime  # the deadline of the countdown
    by: int
    ceiling: Priority  # the highest priority it silenced: only a higher one breaks through
    alarm_ids: tuple[int, ...]  # the alarms it silenced when it started


@dataclass(frozen=True)
class AlarmBoard:
    alarms: tuple[Alarm, ...] = ()  # every alarm of the session, ended ones too, by id
    audio_pause: AudioPause | None = None
    settings: AlarmSettings = field(default_factory=AlarmSettings)
    next_id: int = 1
    last_at: datetime | None = None  # latest time in the record: time never runs backwards

    def get(self, alarm_id: int) -> Alarm | None:
        return next((a for a in self.alarms if a.id == alarm_id), None)

    @property
    def active(self) -> tuple[Alarm, ...]:
        return tuple(a for a in self.alarms if a.active)


# --- results -----------------------------------------------------------------------------------

# Event kinds: raised | updated | latched | acknowledged | audio_paused | audio_pause_expired
# | ended | escalated
Result = Accepted[AlarmBoard] | Refused


# --- queries -----------------------------------------------------------------------------------


def audible(alarm: Alarm, now: datetime) -> bool:
    """Active, not acknowledged and not silenced by an audio pause at `now`."""
    if not alarm.active or alarm.acknowledged:
        return False
    return alarm.audio_paused_until is None or now >= alarm.audio_paused_until


def sounding(board: AlarmBoard, now: datetime) -> Priority | None:
    """The priority the speaker plays at `now`, or None for silence."""
    ranks = [RANK[a.priority] for a in board.alarms if audible(a, now)]
    if not ranks:
        return None
    top = max(ranks)
    return next(p for p in PRIORITIES if RANK[p] == top)


def pause_remaining(board: AlarmBoard, now: datetime) -> timedelta | None:
    """What the audio-pause countdown shows, or None when no pause is running."""
    pause = board.audio_pause
    if pause is None or now >= pause.until:
        return None
    return pause.until - now


def escalation_due_at(alarm: Alarm, settings: AlarmSettings) -> datetime | None:
    """When this alarm escalates, or None: ended, acknowledged, escalated or never escalating."""
    if not alarm.active or alarm.acknowledged or alarm.escalated_at is not None:
        return None
    delay = settings.escalation_delay(alarm.priority)
    return None if delay is None else alarm.raised_at + delay


def escalation_deadlines(board: AlarmBoard) -> list[tuple[int, datetime]]:
    """(alarm id, due at) of every pending escalation, soonest first: the shell's timers."""
    out = []
    for alarm in board.alarms:
        due = escalation_due_at(alarm, board.settings)
        if due is not None:
            out.append((alarm.id, due))
    return sorted(out, key=lambda item: (item[1], item[0]))


# --- commands ----------------------------------------------------------------------------------


def raise_alarm(
    board: AlarmBoard,
    condition: str,
    priority: Priority,
    kind: Kind,
    message: str,
    value: str,
    limit: str,
    now: datetime,
) -> Result:
    """Raise an alarm; a condition already alarming at this priority is updated instead."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    condition = (condition or "").strip()
    message = (message or "").strip()
    if not condition:
        return Refused("an alarm needs a condition code", "invalid")
    if priority not in RANK:
        return Refused(f"priority must be HIGH, MEDIUM or LOW, not {priority!r}", "invalid")
    if kind not in KINDS:
        return Refused(f"kind must be physiological or technical, not {kind!r}", "invalid")
    if not message:
        return Refused("an alarm needs a message", "invalid")
    existing = next(
        (a for a in new.alarms if a.active and a.condition == condition and a.priority == priority),
        None,
    )
    if existing is not None:
        updated = replace(
            existing, message=message, value=value, limit=limit, condition_active=True
        )
        events.append(
            Event(
                "updated",
                {
                    "alarm_id": existing.id,
                    "condition": condition,
                    "priority": priority,
                    "value": value,
                    "limit": limit,
                    "message": message,
                    "previous_value": existing.value,
                    "previous_limit": existing.limit,
                    "reactivated": not existing.condition_active,
                },
            )
        )
        return _accept(board, _put(new, updated), events, now)
    pause = new.audio_pause  # still running: _begin ended an expired one
    breaks_through = pause is not None and RANK[priority] > RANK[pause.ceiling]
    paused_until = pause.until if pause is not None and not breaks_through else None
    alarm = Alarm(
        id=new.next_id,
        priority=priority,
        kind=kind,
        condition=condition,
        message=message,
        value=value,
        limit=limit,
        raised_at=now,
        audio_paused_until=paused_until,
    )
    events.append(
        Event(
            "raised",
            {
                "alarm_id": alarm.id,
                "condition": condition,
                "priority": priority,
                "kind": kind,
                "message": message,
                "value": value,
                "limit": limit,
                "raised_at": now.isoformat(),
                "audio_paused_until": _iso(paused_until),
                "breaks_through_pause": breaks_through,
            },
        )
    )
    new = replace(new, alarms=(*new.alarms, alarm), next_id=new.next_id + 1)
    return _accept(board, new, events, now)


def condition_cleared(board: AlarmBoard, condition: str, now: datetime) -> Result:
    """The condition is gone: MEDIUM and LOW alarms (and acknowledged HIGH ones) end, an
    unacknowledged HIGH alarm latches until acknowledged."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    targets = [
        a for a in new.alarms if a.active and a.condition == condition and a.condition_active
    ]
    if not targets:
        if any(a.latched and a.condition == condition for a in new.alarms):
            return Refused(
                f"the condition {condition} has already cleared; its HIGH alarm ends when "
                "acknowledged"
            )
        return Refused(f"no alarm for the condition {condition} is active", "unknown")
    for alarm in targets:
        if alarm.priority in LATCHING and not alarm.acknowledged:
            new = _put(new, replace(alarm, condition_active=False))
            events.append(
                Event(
                    "latched",
                    {"alarm_id": alarm.id, "condition": condition, "priority": alarm.priority},
                )
            )
        else:
            new = _put(new, replace(alarm, condition_active=False, cleared_at=now))
            events.append(_ended(alarm, "condition cleared"))
    return _accept(board, new, events, now)


def acknowledge(board: AlarmBoard, alarm_id: int, user_id: int, now: datetime) -> Result:
    """Acknowledge one alarm: it falls silent for good, and its escalation is cancelled. A HIGH
    alarm whose condition has cleared ends; one whose condition is active stays on the board."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    alarm = new.get(alarm_id)
    if alarm is None:
        return Refused(f"there is no alarm {alarm_id}", "unknown")
    if not alarm.active:
        assert alarm.cleared_at is not None
        return Refused(
            f"alarm {alarm_id} ended at {alarm.cleared_at.isoformat()}; nothing to acknowledge"
        )
    if alarm.acknowledged:
        assert alarm.acknowledged_at is not None
        return Refused(
            f"alarm {alarm_id} was already acknowledged by user {alarm.acknowledged_by} at "
            f"{alarm.acknowledged_at.isoformat()}"
        )
    pending = escalation_due_at(alarm, new.settings) is not None
    acked = replace(alarm, acknowledged_by=user_id, acknowledged_at=now)
    events.append(
        Event(
            "acknowledged",
            {
                "alarm_id": alarm.id,
                "condition": alarm.condition,
                "priority": alarm.priority,
                "by": user_id,
                "at": now.isoformat(),
                "condition_active": alarm.condition_active,
                "escalation_cancelled": pending,
            },
        )
    )
    if not alarm.condition_active:
        acked = replace(acked, cleared_at=now)
        events.append(_ended(alarm, "acknowledged after its condition cleared"))
    return _accept(board, _put(new, acked), events, now)


def pause_audio(
    board: AlarmBoard, user_id: int, now: datetime, duration: timedelta = AUDIO_PAUSE
) -> Result:
    """Silence the alarms active and unacknowledged now for `duration`. Acknowledges nothing.
    Pressed again while something sounds (an alarm broke through), it starts a new pause."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    if duration <= timedelta(0):
        return Refused("an audio pause must last longer than zero", "invalid")
    if sounding(new, now) is None:
        pause = new.audio_pause
        running = f"; audio is paused until {pause.until.isoformat()}" if pause else ""
        return Refused(f"nothing is sounding, so there is nothing to pause{running}")
    until = now + duration
    covered = [a for a in new.alarms if a.active and not a.acknowledged]
    top = max(RANK[a.priority] for a in covered)
    ceiling = next(p for p in PRIORITIES if RANK[p] == top)
    for alarm in covered:
        new = _put(new, replace(alarm, audio_paused_until=until))
    ids = tuple(a.id for a in covered)
    new = replace(new, audio_pause=AudioPause(now, until, user_id, ceiling, ids))
    events.append(
        Event(
            "audio_paused",
            {
                "by": user_id,
                "at": now.isoformat(),
                "until": until.isoformat(),
                "seconds": duration.total_seconds(),
                "ceiling": ceiling,
                "alarm_ids": list(ids),
            },
        )
    )
    return _accept(board, new, events, now)


def tick(board: AlarmBoard, now: datetime) -> Result:
    """Apply what has run out by `now` (the audio pause). Nothing due: the same board, no
    events."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    return _accept(board, new, events, now)


def escalate_due(board: AlarmBoard, now: datetime) -> Result:
    """Escalate to every physician each unacknowledged alarm whose deadline has come, once."""
    start = _begin(board, now)
    if isinstance(start, Refused):
        return start
    new, events = start
    for alarm in new.alarms:
        due = escalation_due_at(alarm, new.settings)
        if due is None or due > now:
            continue
        new = _put(new, replace(alarm, escalated_at=now))
        events.append(
            Event(
                "escalated",
                {
                    "alarm_id": alarm.id,
                    "condition": alarm.condition,
                    "priority": alarm.priority,
                    "to": "physicians",
                    "due_at": due.isoformat(),
                    "at": now.isoformat(),
                },
            )
        )
    return _accept(board, new, events, now)


# --- internals ---------------------------------------------------------------------------------


def _begin(board: AlarmBoard, now: datetime) -> tuple[AlarmBoard, list[Event]] | Refused:
    """Check the time, then end an audio pause that has run out."""
    if now.tzinfo is None or now.utcoffset() is None:
        return Refused("the time needs a time zone", "invalid")
    if board.last_at is not None and now < board.last_at:
        return Refused(
            f"{now.isoformat()} is earlier than the last entry ({board.last_at.isoformat()}); "
            "time never runs back",
            "invalid",
        )
    pause = board.audio_pause
    if pause is None or now < pause.until:
        return board, []
    expired = Event(
        "audio_pause_expired",
        {"until": pause.until.isoformat(), "by": pause.by, "alarm_ids": list(pause.alarm_ids)},
    )
    return replace(board, audio_pause=None), [expired]


def _accept(old: AlarmBoard, new: AlarmBoard, events: list[Event], now: datetime) -> Accepted:
    if not events:
        return Accepted(old, ())
    return Accepted(replace(new, last_at=now), tuple(events))


def _put(board: AlarmBoard, alarm: Alarm) -> AlarmBoard:
    return replace(board, alarms=tuple(alarm if a.id == alarm.id else a for a in board.alarms))


def _ended(alarm: Alarm, why: str) -> Event:
    return Event(
        "ended",
        {
            "alarm_id": alarm.id,
            "condition": alarm.condition,
            "priority": alarm.priority,
            "reason": why,
        },
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
