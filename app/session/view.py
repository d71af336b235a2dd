"""The session as every screen, the API and the exports see it: a typed, frozen `SessionView`
built from the machine's state and the facts read once with it. Pure: no I/O.

Numbers stay Decimals and times datetimes; only `as_json` turns them into the strings the API
has always answered (`str(Decimal)`, `datetime.isoformat()`), so the answer does not change."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.alarms import logic
from app.session import bedside_checks as checks
from app.session import machine as M
from app.session.ledger import ledger
from app.vitals import news2
from app.vitals.grading import GradeSuggestion, suggest_grade
from app.vitals.rules import SYMPTOM_CLASSES, Thresholds
from app.vitals.validation import VitalsReading, validate_vitals

DEFAULT_DILUENT = "0.9 % sodium chloride"
# The newest stored sets (every version counts) a live view carries, besides the newest
# baseline; app.session.read reads just those.
RECENT_VITALS = 12


# --- the facts a view is built from -------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    username: str
    name: str  # the display name


@dataclass(frozen=True)
class Measure:
    """One recorded field of a stored vitals set."""

    status: str  # "measured", "unable_to_obtain" or "refused"
    value: Decimal | None  # measured only
    reason: str | None = None


@dataclass(frozen=True)
class VitalsSet:
    """One stored version of a vitals set, parsed once when it is read."""

    id: int
    reading_id: int  # the reading this is a version of
    version: int
    supersedes: int | None
    amendment_reason: str | None
    recorded_at: datetime
    recorded_by: int | None
    step: int | None
    baseline: bool
    within_limits: bool
    values: Mapping[str, Any]  # as stored: what the API answers
    measures: Mapping[str, Measure]  # every recorded measured field, by name
    symptoms: tuple[str, ...]
    note: str
    reading: VitalsReading | None  # None: the stored set no longer validates
    current: bool = True  # False once a newer version corrects it
    news2: news2.News2 | None = None  # adults only


def stored_vitals(
    *,
    id: int,
    reading_id: int | None,
    version: int,
    supersedes: int | None,
    amendment_reason: str | None,
    recorded_at: datetime,
    recorded_by: int | None,
    step: int | None,
    baseline: bool,
    within_limits: bool,
    values_json: str,
) -> VitalsSet:
    """A stored vitals set as typed values: its JSON is parsed and validated here, once."""
    values = json.loads(values_json)
    measures = {
        name: Measure(
            entry.get("status", ""),
            Decimal(str(entry["value"])) if entry.get("status") == "measured" else None,
            entry.get("reason"),
        )
        for name, entry in values.items()
        if isinstance(entry, dict)
    }
    reading = validate_vitals(values, spirometry_required=False)
    return VitalsSet(
        id=id,
        reading_id=reading_id or id,
        version=version,
        supersedes=supersedes,
        amendment_reason=amendment_reason,
        recorded_at=recorded_at,
        recorded_by=recorded_by,
        step=step,
        baseline=baseline,
        within_limits=within_limits,
        values=values,
        measures=measures,
        symptoms=tuple(values.get("symptoms") or ()),
        note=str(values.get("note") or ""),
        reading=reading if isinstance(reading, VitalsReading) else None,
    )


@dataclass(frozen=True)
class SessionFacts:
    """What a view needs besides the machine's state, read in one transaction."""

    id: int
    patient_id: int
    drug: str
    route: str
    template: str
    risk_tier: str
    location: str | None
    assigned_nurse_id: int | None
    diluent: str | None
    last_event_seq: int
    screening: Mapping[str, Any]
    threshold_overrides: Mapping[str, Any]  # as stored
    alarms: logic.AlarmBoard
    # The window of vitals the view carries (app.session.read): the newest stored sets and
    # the newest baseline, every version, oldest first; `vitals_total` counts them all (None:
    # `vitals` is the whole history).
    vitals: tuple[VitalsSet, ...] = ()
    age_years: Decimal | None = None
    people: Mapping[int, Person] = field(default_factory=dict)
    vitals_total: int | None = None
    # Current sets older than the window recorded during a reaction: a suggested grade counts
    # every set from onset to resolution, so these are read for it, never shown.
    reaction_vitals: tuple[VitalsSet, ...] = ()


# --- the view -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signoff:
    by: Person | None
    at: datetime | None


@dataclass(frozen=True)
class Signoffs:
    pharmacist_needed: bool
    approved: Signoff | None
    bags_verified: Signoff | None


@dataclass(frozen=True)
class BedsideChecks:
    """Right bag, right patient, second pair of eyes (app.session.bedside_checks): what the
    coming pump start still needs."""

    scan_required: bool = False
    wristband_due: bool = False  # the start needs the patient's wristband scanned
    bag_due: int | None = None  # the coming pump start hangs this bag: its label is scanned
    bag_checked: int | None = None
    double_check_required: bool = False  # a high-alert drug
    double_check_due: bool = False  # the coming pump start needs a second clinician


def bedside_checks(state: M.SessionState) -> BedsideChecks:
    index = checks.starting_index(state)
    due = checks.due_bag(state) if state.scan_required else None
    return BedsideChecks(
        scan_required=state.scan_required,
        wristband_due=checks.wristband_due(state),
        bag_due=due,
        bag_checked=state.bag_checked,
        double_check_required=state.double_check_required,
        double_check_due=index is not None and checks.double_check_needed(state, index),
    )


@dataclass(frozen=True)
class Bag:
    number: int
    label: str
    volume_ml: Decimal
    concentration: Decimal


@dataclass(frozen=True)
class Step:
    position: int
    solution: int | None  # the bag; None for a dose given at once
    rate_ml_h: Decimal | None
    minutes: Decimal | None
    dose: Decimal | None
    origin: str
    of_step: int | None


@dataclass(frozen=True)
class PlanView:
    kind: str
    bags: tuple[Bag, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Segment:
    step: int
    solution: int | None
    rate_ml_h: Decimal | None
    started_at: datetime
    stopped_at: datetime | None
    volume_ml: Decimal | None
    dose: Decimal


@dataclass(frozen=True)
class Checklist:
    missing: tuple[str, ...]
    consent: bool
    baseline_vitals: bool
    spirometry_required: bool
    rescue_kit: bool
    baseline_high: tuple[str, ...]
    premedications: tuple[M.Premedication, ...]


@dataclass(frozen=True)
class Reaction(M.Reaction):
    """A reaction as recorded, with the grade its findings suggest."""

    suggested_grade: GradeSuggestion | None = None


@dataclass(frozen=True)
class Alarm:
    id: int
    priority: str
    kind: str
    condition: str
    message: str
    value: str
    limit: str
    raised_at: datetime
    active: bool
    latched: bool
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    cleared_at: datetime | None
    colour: str
    flashing: bool


@dataclass(frozen=True)
class Alarms:
    sounding: str | None
    sounding_after_pause: str | None  # what sounds once a running audio pause ends
    audio_paused_seconds: float | None
    audio_paused_until: datetime | None
    items: tuple[Alarm, ...]


@dataclass(frozen=True)
class ThresholdsView:
    overrides: Mapping[str, Any]  # as stored
    in_force: tuple[str, ...]
    thresholds: Thresholds


@dataclass(frozen=True)
class SessionView:
    id: int
    patient_id: int
    drug: str
    route: str
    template: str
    risk_tier: str
    location: str | None
    assigned_nurse: Person | None
    diluent: str
    signoffs: Signoffs
    status: str
    version: int
    last_event_seq: int
    current_step: int | None
    next_step: int | None
    deadline: datetime | None
    overdue: bool
    target_dose: Decimal
    unit: str
    delivered_dose: Decimal
    delivered_percent: Decimal
    plan: PlanView
    segments: tuple[Segment, ...]
    checklist: Checklist
    reactions: tuple[Reaction, ...]
    vitals_every_minutes: Decimal
    vitals_needed: bool
    last_vitals_at: datetime | None
    observation_done: bool
    abort_reason: str | None
    screening: Mapping[str, Any]
    vitals: tuple[VitalsSet, ...]  # the window: the newest sets and the newest baseline
    alarms: Alarms
    thresholds: ThresholdsView
    vitals_total: int = 0  # every stored set (every version), in the window or not
    checks: BedsideChecks = BedsideChecks()

    @property
    def open_reaction(self) -> Reaction | None:
        return next((r for r in self.reactions if r.resolved_at is None), None)

    @property
    def current_vitals(self) -> tuple[VitalsSet, ...]:
        """The newest version of every reading, oldest reading first."""
        return tuple(v for v in self.vitals if v.current)

    @property
    def carried_baseline(self) -> int | None:
        """The id of the baseline set the window carries from before its newest sets (sets
        were left out between them), or None."""
        first = self.vitals[0] if self.vitals else None
        separated = len(self.vitals) > RECENT_VITALS and self.vitals_total > len(self.vitals)
        return first.id if first is not None and first.baseline and separated else None


def suggested_grade(
    reaction: M.Reaction, vitals: tuple[VitalsSet, ...], age_years: Decimal | None
) -> GradeSuggestion:
    """The grade the findings suggest, with the reasons: for the nurse or physician to confirm
    or change when resolving the reaction (their choice is what is recorded). Brown grades the
    worst stage, so every set from onset to resolution counts (current versions)."""
    current = [v for v in vitals if v.current]
    end = reaction.resolved_at
    window = [
        v.reading
        for v in current
        if not v.baseline
        and v.recorded_at >= reaction.onset_at
        and (end is None or v.recorded_at <= end)
        and v.reading is not None
    ]
    baseline = next((v.reading for v in reversed(current) if v.baseline), None)
    symptoms = {s for s in reaction.symptoms if s in SYMPTOM_CLASSES}
    return suggest_grade(symptoms, window, baseline, age_years=age_years)


def shown_vitals(
    rows: tuple[VitalsSet, ...],
    age_years: Decimal | None,
    superseded: frozenset[int] | None = None,
) -> tuple[VitalsSet, ...]:
    """The sets as shown: whether each is the newest version, and its NEWS2 (adults).
    `superseded`: the ids a newer version corrects; by default worked out from `rows` (a
    newer version always has a higher id, so a window of the newest rows holds it)."""
    if superseded is None:
        superseded = frozenset(r.supersedes for r in rows if r.supersedes is not None)
    adult = news2.applies_to(age_years)
    return tuple(
        replace(
            r,
            current=r.id not in superseded,
            news2=news2.score(news2.values_of_stored(r.values)) if adult else None,
        )
        for r in rows
    )


def _alarms(board: logic.AlarmBoard, now: datetime) -> Alarms:
    remaining = logic.pause_remaining(board, now)
    unsilenced = [a.priority for a in board.alarms if a.active and not a.acknowledged]
    return Alarms(
        sounding=logic.sounding(board, now),
        sounding_after_pause=max(unsilenced, key=lambda p: logic.RANK[p]) if unsilenced else None,
        audio_paused_seconds=remaining.total_seconds() if remaining else None,
        audio_paused_until=board.audio_pause.until if board.audio_pause and remaining else None,
        items=tuple(
            Alarm(
                id=a.id,
                priority=a.priority,
                kind=a.kind,
                condition=a.condition,
                message=a.message,
                value=a.value,
                limit=a.limit,
                raised_at=a.raised_at,
                active=a.active,
                latched=a.latched,
                acknowledged_by=a.acknowledged_by,
                acknowledged_at=a.acknowledged_at,
                escalated_at=a.escalated_at,
                cleared_at=a.cleared_at,
                colour=a.visual[0],
                flashing=a.visual[1],
            )
            for a in board.alarms
        ),
    )


def _signoff(people: Mapping[int, Person], user_id: int | None, at: datetime | None):
    return None if user_id is None else Signoff(people.get(user_id), at)


def build(state: M.SessionState, facts: SessionFacts, now: datetime) -> SessionView:
    book = ledger(state.plan, state.segments, now)
    plan = state.plan
    people = facts.people
    vitals = shown_vitals(facts.vitals, facts.age_years)
    graded = tuple(sorted((*facts.reaction_vitals, *vitals), key=lambda v: v.id))
    thresholds = Thresholds().with_overrides(facts.threshold_overrides)
    nurse = facts.assigned_nurse_id
    return SessionView(
        id=facts.id,
        patient_id=facts.patient_id,
        drug=facts.drug,
        route=facts.route,
        template=facts.template,
        risk_tier=facts.risk_tier,
        location=facts.location,
        assigned_nurse=people.get(nurse) if nurse is not None else None,
        diluent=facts.diluent or DEFAULT_DILUENT,
        signoffs=Signoffs(
            pharmacist_needed=state.pharmacist_signoff,
            approved=_signoff(people, state.approved_by, state.approved_at),
            bags_verified=_signoff(people, state.bags_verified_by, state.bags_verified_at),
        ),
        status=state.status,
        version=state.version,
        last_event_seq=facts.last_event_seq,
        current_step=state.current,
        next_step=state.next_step,
        deadline=state.deadline,
        overdue=state.overdue,
        target_dose=plan.target_dose,
        unit=plan.unit,
        delivered_dose=book.delivered,
        delivered_percent=book.delivered / plan.target_dose * 100,
        plan=PlanView(
            kind=plan.kind,
            bags=tuple(Bag(b.number, b.label, b.volume_ml, b.concentration) for b in plan.bags),
            steps=tuple(
                Step(
                    position=i,
                    solution=s.solution,
                    rate_ml_h=s.rate_ml_h,
                    minutes=s.minutes,
                    dose=s.dose if not s.is_infusion else plan.planned_dose(i),
                    origin=s.origin,
                    of_step=s.of_step,
                )
                for i, s in enumerate(plan.steps)
            ),
        ),
        segments=tuple(
            Segment(
                step=d.segment.step,
                solution=d.segment.solution,
                rate_ml_h=d.segment.rate_ml_h,
                started_at=d.segment.started_at,
                stopped_at=d.segment.stopped_at,
                volume_ml=d.volume_ml,
                dose=d.dose,
            )
            for d in book.deliveries
        ),
        checklist=Checklist(
            missing=tuple(state.checklist.missing()),
            consent=state.checklist.consent,
            baseline_vitals=state.checklist.baseline_vitals,
            spirometry_required=state.checklist.spirometry_required,
            rescue_kit=state.checklist.rescue_kit,
            baseline_high=tuple(state.checklist.baseline_high),
            premedications=tuple(state.checklist.premedications),
        ),
        reactions=tuple(
            Reaction(
                **{f.name: getattr(r, f.name) for f in dataclasses.fields(r)},
                suggested_grade=suggested_grade(r, graded, facts.age_years),
            )
            for r in state.reactions
        ),
        vitals_every_minutes=state.vitals_every_minutes,
        vitals_needed=not M.vitals_gate_met(state),
        last_vitals_at=state.last_vitals_at,
        observation_done=state.observation_done,
        abort_reason=state.abort_reason or None,
        screening=facts.screening,
        vitals=vitals,
        alarms=_alarms(facts.alarms, now),
        thresholds=ThresholdsView(
            overrides=facts.threshold_overrides,
            in_force=thresholds.describe(),
            thresholds=thresholds,
        ),
        vitals_total=len(vitals) if facts.vitals_total is None else facts.vitals_total,
        checks=bedside_checks(state),
    )


def window_after(
    window: Sequence[VitalsSet], total: int, new: VitalsSet, recent: int = RECENT_VITALS
) -> tuple[list[VitalsSet], int]:
    """The window of vitals (the newest `recent` sets and the newest baseline, oldest first)
    once `new` is stored after the sets of `window`, out of `total` in all: what reading the
    window again would give, worked out instead of read."""
    newest = [*window[-min(total, recent) :], new][-recent:] if total else [new]
    baselines = [v for v in (*window, new) if v.baseline]
    kept = {v.id: v for v in newest}
    if baselines:
        kept.setdefault(baselines[-1].id, baselines[-1])
    return sorted(kept.values(), key=lambda v: v.id), total + 1
