"""The alarm board of a session as stored JSON, and what a vitals evaluation does to it. Pure."""

from __future__ import annotations

import json
from datetime import datetime

from app.alarms import logic
from app.alarms.logic import AlarmBoard, AlarmSettings
from app.session import codec
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
                str(finding.value),
                limit,
                now,
            )
        )
    if reaction_opened:
        apply(
            logic.raise_alarm(
                board,
                REACTION_CONDITION,
                "HIGH",
                "physiological",
                "Reaction: stop the infusion now and call the physician.",
                reaction_opened,
                "",
                now,
            )
        )
    return board, events
