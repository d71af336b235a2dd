"""A patient's history per drug, what it suggests for the next plan, and the tolerance window.
Pure: the shell loads the past sessions and passes them in with the time.

Next-session suggestions follow clinical-reference §c.2–c.3:
- a reaction at step k: insert an intermediate step before step k (where to insert it is not
  published; splitting the step that reacted is the usual reading, so the step goes between
  k-1 and k);
- a moderate or severe reaction (Brown 2–3): switch to the 16-step protocol;
- a severe reaction (Brown 3): consider an ICU setting;
- flushing: aspirin 325 mg + montelukast 10 mg two days before and on the day;
- respiratory symptoms: montelukast 10 mg.

Tolerance (clinical-reference §e): the desensitized state may wane within about 24 h of the
last dose, so a planned dose more than the window (24 h by default, configurable per drug)
after the last one needs a full desensitization.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.vitals.rules import SYMPTOM_CLASSES

DEFAULT_WINDOW_HOURS = Decimal(24)
MAX_WINDOW_HOURS = Decimal(24 * 30)
SIXTEEN_STEPS = "brigham-16"


@dataclass(frozen=True)
class PastReaction:
    number: int
    onset_at: datetime
    at_step: int | None  # the step of the approved ladder (1-based), None before the start
    brown_grade: int | None
    ctcae_grade: int | None
    symptoms: tuple[str, ...]


@dataclass(frozen=True)
class PastSession:
    id: int
    drug: str
    status: str
    template: str
    target_dose: Decimal
    unit: str
    created_at: datetime
    last_dose_at: datetime | None  # when drug was last given in it, None if none was
    reactions: tuple[PastReaction, ...] = ()
    # The intermediate step a reaction at ladder step k would insert: k -> a plan edit.
    intermediate_edits: Mapping[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    code: str  # insert_step | template | icu_setting | premedication
    text: str
    session_id: int
    reaction: int
    plan_edit: dict[str, Any] | None = None  # for insert_step: the edit to post to a draft
    template: str | None = None
    premedications: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tolerance:
    window_hours: Decimal
    hours_since_last_dose: Decimal | None
    needs_full_desensitization: bool
    message: str


@dataclass(frozen=True)
class DrugHistory:
    drug: str
    sessions: tuple[PastSession, ...]  # newest first
    last_dose_at: datetime | None
    tolerance: Tolerance
    suggestions: tuple[Suggestion, ...]


def drug_key(name: str) -> str:
    """Drug names compare without case or extra spaces: 'Carboplatin ' is 'carboplatin'."""
    return " ".join(name.split()).casefold()


def parse_windows(text: str) -> dict[str, Decimal]:
    """'penicillin=48, carboplatin=24' -> {drug: hours}; a clear ValueError otherwise."""
    windows: dict[str, Decimal] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        drug, sep, hours = part.partition("=")
        if not sep or not drug.strip():
            raise ValueError(f"{part!r}: write drug=hours, e.g. carboplatin=24")
        try:
            value = Decimal(hours.strip())
        except InvalidOperation:
            raise ValueError(f"{part!r}: the hours must be a number") from None
        if not value.is_finite() or not 0 < value <= MAX_WINDOW_HOURS:
            raise ValueError(f"{part!r}: the hours must be above 0 and at most {MAX_WINDOW_HOURS}")
        windows[drug_key(drug)] = value
    return windows


def window_for(drug: str, default: Decimal, by_drug: Mapping[str, Decimal]) -> Decimal:
    return by_drug.get(drug_key(drug), default)


def _hours(text: Decimal) -> str:
    return f"{text.normalize():f}"


def tolerance(
    last_dose_at: datetime | None, planned_at: datetime, window_hours: Decimal
) -> Tolerance:
    window = _hours(window_hours)
    if last_dose_at is None:
        return Tolerance(
            window_hours,
            None,
            True,
            "No earlier dose of this drug is recorded: a full desensitization is needed.",
        )
    seconds = Decimal(str((planned_at - last_dose_at).total_seconds()))
    since = (seconds / 3600).quantize(Decimal("0.1"))
    if since < 0:
        return Tolerance(
            window_hours,
            since,
            True,
            "The planned time is before the last recorded dose; check the planned time. "
            "Plan a full desensitization.",
        )
    if seconds > window_hours * 3600:
        return Tolerance(
            window_hours,
            since,
            True,
            f"The last dose was {_hours(since)} h before the planned dose, more than the "
            f"{window} h tolerance window: a full desensitization is needed.",
        )
    return Tolerance(
        window_hours,
        since,
        False,
        f"The last dose was {_hours(since)} h before the planned dose, within the {window} h "
        "tolerance window: tolerance may persist if dosing was not interrupted; the "
        "physician decides.",
    )


def suggestions(sessions: tuple[PastSession, ...]) -> tuple[Suggestion, ...]:
    """What the reactions of earlier sessions of one drug suggest for the next plan; each
    suggestion once, from its most recent source."""
    out: list[Suggestion] = []
    seen: set[tuple[str, Any]] = set()

    def add(key: tuple[str, Any], suggestion: Suggestion) -> None:
        if key not in seen:
            seen.add(key)
            out.append(suggestion)

    for session in sorted(sessions, key=lambda s: s.created_at, reverse=True):
        for reaction in session.reactions:
            where = f"session {session.id}, reaction {reaction.number}"
            grade = reaction.brown_grade or 0
            step = reaction.at_step
            if step is not None and step >= 2:
                add(
                    ("insert_step", step),
                    Suggestion(
                        "insert_step",
                        f"Reaction at step {step} ({where}): insert an intermediate step "
                        f"between steps {step - 1} and {step}.",
                        session.id,
                        reaction.number,
                        plan_edit=session.intermediate_edits.get(step),
                    ),
                )
            elif step == 1:
                add(
                    ("insert_step", 1),
                    Suggestion(
                        "insert_step",
                        f"Reaction at step 1 ({where}): no step can go before it; a longer "
                        "protocol that starts more dilute (16 steps) is the usual answer.",
                        session.id,
                        reaction.number,
                        template=SIXTEEN_STEPS,
                    ),
                )
            if grade >= 2:
                add(
                    ("template", SIXTEEN_STEPS),
                    Suggestion(
                        "template",
                        f"Moderate or severe reaction (Brown {grade}, {where}): use the "
                        "16-step protocol (brigham-16).",
                        session.id,
                        reaction.number,
                        template=SIXTEEN_STEPS,
                    ),
                )
            if grade >= 3:
                add(
                    ("icu_setting", None),
                    Suggestion(
                        "icu_setting",
                        f"Severe reaction (Brown 3, {where}): consider an ICU setting.",
                        session.id,
                        reaction.number,
                    ),
                )
            systems = {SYMPTOM_CLASSES[s].system for s in reaction.symptoms if s in SYMPTOM_CLASSES}
            if "flushing" in reaction.symptoms:
                add(
                    ("premedication", "aspirin"),
                    Suggestion(
                        "premedication",
                        f"Flushing ({where}): aspirin 325 mg and montelukast 10 mg, two days "
                        "before and on the day of the desensitization.",
                        session.id,
                        reaction.number,
                        premedications=("aspirin 325 mg PO", "montelukast 10 mg PO"),
                    ),
                )
            if "respiratory" in systems:
                add(
                    ("premedication", "montelukast"),
                    Suggestion(
                        "premedication",
                        f"Respiratory symptoms ({where}): montelukast 10 mg before the "
                        "desensitization.",
                        session.id,
                        reaction.number,
                        premedications=("montelukast 10 mg PO",),
                    ),
                )
    return tuple(out)


def histories(
    sessions: list[PastSession],
    planned_at: datetime,
    default_window: Decimal = DEFAULT_WINDOW_HOURS,
    windows: Mapping[str, Decimal] | None = None,
) -> list[DrugHistory]:
    """One history per drug, the most recently given drug first."""
    groups: dict[str, list[PastSession]] = {}
    for session in sessions:
        groups.setdefault(drug_key(session.drug), []).append(session)
    out = []
    for group in groups.values():
        ordered = tuple(sorted(group, key=lambda s: (s.created_at, s.id), reverse=True))
        doses = [s.last_dose_at for s in ordered if s.last_dose_at is not None]
        last = max(doses) if doses else None
        window = window_for(ordered[0].drug, default_window, windows or {})
        out.append(
            DrugHistory(
                drug=ordered[0].drug,
                sessions=ordered,
                last_dose_at=last,
                tolerance=tolerance(last, planned_at, window),
                suggestions=suggestions(ordered),
            )
        )
    return sorted(
        out,
        key=lambda h: (h.last_dose_at or h.sessions[0].created_at, h.sessions[0].id),
        reverse=True,
    )
