"""The alarm board of a session as stored JSON, and what a vitals evaluation or a reaction does
to it. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pydantic import TypeAdapter

from app.alarms import logic
from app.alarms.logic import AlarmBoard, AlarmSettings, Priority
from app.session import codec
from app.session.machine import Reaction, SessionState
from app.vitals.rule_table import SYMPTOM_CLASSES
from app.vitals.rules import CONDITION_WORDS, Evaluation, symptom_words

REACTION_CONDITION = "reaction"
EMPTY_BOARD_JSON = '{"alarms":[],"audio_pause":null,"last_at":null,"next_id":1}'
BOARD = TypeAdapter(AlarmBoard)


def dumps(board: AlarmBoard) -> str:
    # Settings are configuration, not state: the one loading the board brings its own.
    return codec.to_json(BOARD.dump_python(board, exclude={"settings"}))


def loads(text: str, settings: AlarmSettings | None = None) -> AlarmBoard:
    return replace(BOARD.validate_json(text), settings=settings or AlarmSettings())


def reaction_words(reaction: Reaction) -> str:
    """What a reaction shows, in words: its clinical findings, then its symptoms by name."""
    return "; ".join([*reaction.findings, *(symptom_words(c) for c in reaction.symptoms)])


def reaction_priority(symptoms: tuple[str, ...], evaluation: Evaluation | None = None) -> Priority:
    """HIGH for a reaction that meets any HIGH criterion; skin-only (Brown grade 1) reactions
    still pause the session but raise a MEDIUM alarm (product-spec §4)."""
    if evaluation is not None and evaluation.highest == "HIGH":
        return "HIGH"
    graded = [SYMPTOM_CLASSES[c].brown_grade for c in symptoms if c in SYMPTOM_CLASSES]
    return "HIGH" if any(grade >= 2 for grade in graded) else "MEDIUM"


VITALS_CONDITION = "vitals"
# Alarms raised one per finding before findings were grouped: a later set still ends them.
PHYSIOLOGICAL_OF_OLD = frozenset(CONDITION_WORDS) - {VITALS_CONDITION}


def findings_text(evaluation: Evaluation) -> str:
    """What one set found, in words: measured findings, then symptoms by name."""
    symptoms = [f.words for f in evaluation.findings if f.is_symptom]
    return "; ".join([*evaluation.clinical_findings(), *symptoms])


def after_vitals(
    board: AlarmBoard, evaluation: Evaluation, opened: Reaction | None, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """One vitals set is one event, and one event raises one alarm (product-spec §4): a set
    that opens a reaction raises the reaction's alarm, which names its findings; any other set
    with findings raises (or updates) the one "vitals out of limits" alarm at the priority of
    its gravest finding. A set within limits ends it (a HIGH one latches until acknowledged)."""
    events: list[logic.Event] = []

    def apply(result: logic.Result) -> None:
        nonlocal board
        if isinstance(result, logic.Accepted):
            board = result.state
            events.extend(result.events)

    wanted = evaluation.highest if evaluation.findings and opened is None else None
    for alarm in board.active:
        ours = alarm.condition == VITALS_CONDITION or alarm.condition in PHYSIOLOGICAL_OF_OLD
        if (
            ours
            and alarm.condition_active
            and (alarm.priority != wanted or alarm.condition != VITALS_CONDITION)
        ):
            apply(logic.condition_cleared(board, alarm.condition, now))
    if wanted is not None:
        text = findings_text(evaluation)
        apply(
            logic.raise_alarm(
                board,
                VITALS_CONDITION,
                wanted,
                "physiological",
                f"Vitals out of limits: {text}.",
                text,
                "",
                now,
            )
        )
    if opened is not None:
        priority = reaction_priority(opened.symptoms, evaluation)
        board, raised = reaction_changed(board, opened, priority, False, now)
        events.extend(raised)
    return board, events


def reaction_changed(
    board: AlarmBoard,
    opened: Reaction | None,
    priority: Priority,
    resolved: bool,
    now: datetime,
) -> tuple[AlarmBoard, list[logic.Event]]:
    """A reaction was opened: an alarm tells the nurse to stop the infusion. It was resolved
    (or closed by an abort): the alarm's condition clears, so a HIGH one latches until it is
    acknowledged (or ends, if it already was)."""
    result: logic.Result
    if opened is not None:
        words = reaction_words(opened)
        result = logic.raise_alarm(
            board,
            REACTION_CONDITION,
            priority,
            "physiological",
            "Reaction: stop the infusion now and call the physician."
            + (f" {words}." if words else ""),
            words,
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
    return result.state, list(result.events)


def reaction_work(
    board: AlarmBoard, old: SessionState, new: SessionState, now: datetime
) -> tuple[AlarmBoard, list[logic.Event]]:
    """What a reaction command (report, resolve, an abort that closes one) does to the alarms,
    from the states before and after."""
    opened = new.open_reaction if old.open_reaction is None else None
    resolved = old.open_reaction is not None and new.open_reaction is None
    priority = reaction_priority(opened.symptoms) if opened is not None else "HIGH"
    return reaction_changed(board, opened, priority, resolved, now)
