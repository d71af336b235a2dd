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

Tolerance (clinical-reference §d–e): only a session that reached its target dose makes the
patient desensitized; an aborted or incomplete one never does. Tolerance is kept only by
continued dosing and wanes after the last dose, in three bands per drug (configurable):
under 24 h "may persist — allergist to confirm", 24–48 h "uncertain — full desensitization
recommended", over 48 h "lost — full desensitization needed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

# The tolerance window types live in the kernel, where configuration builds them; they stay
# importable from here too, next to the history that places a dose in them.
from app.tolerance import TolerancePolicy, ToleranceWindow, drug_key, hours_text
from app.vitals.rule_table import SYMPTOM_CLASSES

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
    # When its last dose was given if it reached the target dose (and was not aborted): the
    # only doses that leave the patient desensitized. None otherwise.
    full_dose_at: datetime | None = None
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


ToleranceBand = Literal["none", "may_persist", "uncertain", "lost", "check_time"]


@dataclass(frozen=True)
class Tolerance:
    window: ToleranceWindow
    band: ToleranceBand
    hours_since_last_dose: Decimal | None  # since the last full dose
    needs_full_desensitization: bool
    message: str

    @property
    def window_hours(self) -> Decimal:
        return self.window.persist_hours

    @property
    def title(self) -> str:
        return BAND_TITLES[self.band]


BAND_TITLES: dict[str, str] = {
    "none": "Not desensitized: a full desensitization is needed",
    "may_persist": "Tolerance may persist: allergist to confirm",
    "uncertain": "Tolerance uncertain: a full desensitization is recommended",
    "lost": "Tolerance lost: a full desensitization is needed",
    "check_time": "Check the planned time",
}


@dataclass(frozen=True)
class DrugHistory:
    drug: str
    sessions: tuple[PastSession, ...]  # newest first
    last_dose_at: datetime | None
    tolerance: Tolerance
    suggestions: tuple[Suggestion, ...]
    last_full_dose_at: datetime | None = None  # what the tolerance counts from


def tolerance(
    last_full_dose_at: datetime | None, planned_at: datetime, window: ToleranceWindow
) -> Tolerance:
    """Where the planned time falls after the last full dose of the drug."""
    persist, uncertain = hours_text(window.persist_hours), hours_text(window.uncertain_hours)
    if last_full_dose_at is None:
        return Tolerance(
            window,
            "none",
            None,
            True,
            "No completed desensitization to this drug is recorded (an aborted or incomplete "
            "one does not count): a full desensitization is needed.",
        )
    seconds = Decimal(str((planned_at - last_full_dose_at).total_seconds()))
    since = (seconds / 3600).quantize(Decimal("0.1"))
    if since < 0:
        return Tolerance(
            window,
            "check_time",
            since,
            True,
            "The planned time is before the last full dose; check the planned time. "
            "Plan a full desensitization.",
        )
    ago = f"The last full dose was {hours_text(since)} h before the planned dose"
    if seconds < window.persist_hours * 3600:
        return Tolerance(
            window,
            "may_persist",
            since,
            False,
            f"{ago}, within {persist} h: tolerance may persist if dosing was not interrupted "
            "— allergist to confirm.",
        )
    if seconds <= window.uncertain_hours * 3600:
        return Tolerance(
            window,
            "uncertain",
            since,
            True,
            f"{ago}, {persist}–{uncertain} h: tolerance is uncertain — a full desensitization "
            "is recommended.",
        )
    return Tolerance(
        window,
        "lost",
        since,
        True,
        f"{ago}, more than {uncertain} h: tolerance is lost — a full desensitization is needed.",
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
    policy: TolerancePolicy | None = None,
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
        full = [s.full_dose_at for s in ordered if s.full_dose_at is not None]
        window = (policy or TolerancePolicy()).window_for(ordered[0].drug)
        out.append(
            DrugHistory(
                drug=ordered[0].drug,
                sessions=ordered,
                last_dose_at=last,
                tolerance=tolerance(max(full) if full else None, planned_at, window),
                suggestions=suggestions(ordered),
                last_full_dose_at=max(full) if full else None,
            )
        )
    return sorted(
        out,
        key=lambda h: (h.last_dose_at or h.sessions[0].created_at, h.sessions[0].id),
        reverse=True,
    )
