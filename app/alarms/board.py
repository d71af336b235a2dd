"""The alarm board of a session as stored JSON, and what a vitals evaluation does to it. Pure."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from app.alarms import logic
from app.alarms.logic import AlarmBoard, AlarmSettings
from app.session import codec
from app.session.machine import SessionState
from app.vitals.rules import Evaluation

REACTION_CONDITION = "reaction"
EMPTY_BOARD_JSON = '{"alarms":[],"audio_pause":null,"last_at":null,"next_id":1}'


def dumps(board: AlarmBoard) -> str:
    data = codec.encode(board)
    data.pop("settings")  # settings are configuration, not state
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def loads(text: str, settings: AlarmSettings | None = None) -> AlarmBoard:
    data = json.loads(text)
    fields = {
        name: codec.decode(kind, data[name])
        for name, kind in (
            ("alarms", tuple[logic.Alarm, ...]),
            ("audio_pause", logic.AudioPause | None),
            ("next_id", int),
            ("last_at", datetime | None),
        )
    }
    return AlarmBoard(**fields, settings=settings or AlarmSettings())


def shown_value(value: object) -> str:
    """A computed fall (31.4516… %) to one decimal, cut the way the rule's message cuts it
    (31.4: still "more than 30"); a measurement or a code as it is."""
    if isinstance(value, Decimal) and value != value.quantize(Decimal("0.01")):
        return str(value.quantize(Decimal("0.1"), ROUND_DOWN))
    return str(value)


def after_vitals(
    board: AlarmBoard, evaluation: Evaluation, reaction_opened: str | None, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """Raise an alarm for each finding; end (or latch) the physiological alarms whose condition
    this reading no longer meets; a reaction that was opened raises a HIGH alarm that tells the
    nurse to stop the infusion."""
    events: list[logic.Event] = []

    def apply(result: logic.Result) -> None:
        nonlocal board
        if isinstance(result, logic.Accepted):
            board = result.board
            events.extend(result.events)

    met = {f.condition for f in evaluation.findings}
    for alarm in board.active:
        physiological = alarm.kind == "physiological" and alarm.condition != REACTION_CONDITION
        if physiological and alarm.condition not in met and alarm.condition_active:
            apply(logic.condition_cleared(board, alarm.condition, now))
    for finding in evaluation.findings:
        limit = "" if finding.limit is None else f"{finding.limit} {finding.unit}".strip()
        apply(
            logic.raise_alarm(
                board,
                finding.condition,
                finding.priority,
                "physiological",
                finding.message,
                shown_value(finding.value),
                limit,
                now,
            )
        )
    if reaction_opened:
        board, opened = reaction_changed(board, reaction_opened, None, now)
        events.extend(opened)
    return board, events


def reaction_changed(
    board: AlarmBoard, opened: str | None, resolved: bool | None, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """A reaction was opened (`opened`: its symptoms): a HIGH alarm tells the nurse to stop
    the infusion. It was resolved: the alarm's condition clears, so it latches until it is
    acknowledged (or ends, if it already was)."""
    result: logic.Result
    if opened is not None:
        result = logic.raise_alarm(
            board,
            REACTION_CONDITION,
            "HIGH",
            "physiological",
            "Reaction: stop the infusion now and call the physician.",
            opened,
            "",
            now,
        )
    elif resolved and any(
        a.condition == REACTION_CONDITION and a.condition_active for a in board.active
    ):
        result = logic.condition_cleared(board, REACTION_CONDITION, now)
    else:
        return board, []
    if isinstance(result, logic.Refused):
        return board, []
    return result.board, list(result.events)


def reaction_work(
    board: AlarmBoard, old: SessionState, new: SessionState, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """What a reaction command does to the alarms, from the states before and after."""
    opened = new.open_reaction if old.open_reaction is None else None
    resolved = old.open_reaction is not None and new.open_reaction is None
    return reaction_changed(board, ", ".join(opened.symptoms) if opened else None, resolved, now)
