"""The printable session report: plan beside the actual administration, vitals with the trend
chart, alarms, reactions and treatments, deviations from the plan, pauses and signatures.

`build_report` is pure: the typed session view (app.session.view), the session's events, the
people named in them and the approved plan go in; the report's rows come out, with the
cumulative doses, pause durations and deviations worked out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Any

from app.live import present as P
from app.patients.rules import age_in_years, rules_age
from app.protocol.screening import REACTION_LABELS
from app.review.check_words import check_records
from app.review.report_model import (
    INDEX_FLAGS,
    OUTCOME_WORDS,
    SIGNED_EVENTS,
    VITAL_STATUS,
    ZERO,
    AdministrationRow,
    AlarmRow,
    BagRow,
    EventRecord,
    PatientFacts,
    Person,
    PlanRow,
    ReactionRow,
    Report,
    Signature,
    TreatmentRow,
    VitalsEntry,
    person_name,
)
from app.review.report_pauses import deviations_of, pauses_of, resume_choice
from app.session import machine as M
from app.session.ledger import PRECISION
from app.session.plan import Plan
from app.session.record import Treatment
from app.session.view import SessionView
from app.vitals.grading import GradeSuggestion
from app.vitals.rules import symptom_words


def _minutes(start: datetime, end: datetime) -> Decimal:
    return Decimal(str((end - start).total_seconds())) / 60


def _administration(view: SessionView, now: datetime) -> tuple[AdministrationRow, ...]:
    steps = view.plan.steps
    rows = []
    with localcontext() as ctx:
        ctx.prec = PRECISION  # the ledger's precision: the last total is the view's, exactly
        cumulative = ZERO
        for ordinal, segment in enumerate(view.segments, start=1):
            cumulative += segment.dose
            started, stopped = segment.started_at, segment.stopped_at
            infusion = segment.solution is not None
            rows.append(
                AdministrationRow(
                    ordinal=ordinal,
                    step=segment.step + 1,
                    origin=steps[segment.step].origin,
                    bag=segment.solution,
                    rate_ml_h=segment.rate_ml_h,
                    started_at=started,
                    stopped_at=stopped,
                    minutes=_minutes(started, stopped or now) if infusion else None,
                    volume_ml=segment.volume_ml,
                    dose=segment.dose,
                    cumulative=cumulative,
                )
            )
    return tuple(rows)


def _plan_rows(
    view: SessionView,
    approved: Plan | None,
    administration: Sequence[AdministrationRow],
    reactions: Sequence[M.Reaction],
) -> tuple[PlanRow, ...]:
    steps = view.plan.steps
    current = view.current_step
    terminal = view.status in ("completed", "aborted")
    running = {r.step for r in administration if r.stopped_at is None}
    rows = []
    for index, step in enumerate(steps):
        origin = step.origin
        # The approved step this one stands for: copies name it, untouched steps are it, and
        # an intermediate step is new.
        stands_for: int | None = None
        if origin != "intermediate":
            stands_for = step.of_step if step.of_step is not None else index
        base = None
        if approved is not None and stands_for is not None and stands_for < len(approved.steps):
            base = approved.steps[stands_for]
        given = [r for r in administration if r.step == index + 1]
        with localcontext() as ctx:
            ctx.prec = PRECISION
            given_dose = sum((r.dose for r in given), ZERO) if given else None
            timed = [r.minutes for r in given if r.minutes is not None]
            given_minutes = sum(timed, ZERO) if timed else None
        reacted = tuple(r.number for r in reactions if r.at_step == index)
        if index + 1 in running:
            state = "running"
        elif given:
            # A step that stopped before its time: a reaction, a hold or an abort.
            stopped_early = bool(reacted) or (
                step.minutes is not None
                and given_minutes is not None
                and given_minutes < step.minutes
            )
            state = "interrupted" if stopped_early else "given"
        elif terminal or (current is not None and index < current):
            state = "not given"
        else:
            state = "to come"
        rows.append(
            PlanRow(
                step=index + 1,
                origin=origin,
                stands_for=None if stands_for is None else stands_for + 1,
                bag=step.solution,
                rate_ml_h=step.rate_ml_h,
                approved_rate_ml_h=base.rate_ml_h if base is not None else None,
                minutes=step.minutes,
                approved_minutes=base.minutes if base is not None else None,
                planned_dose=step.dose,
                given_minutes=given_minutes,
                given_dose=given_dose,
                state=state,
                reactions=reacted,
            )
        )
    return tuple(rows)


def _vitals(
    view: SessionView, users: Mapping[int, Person]
) -> tuple[tuple[VitalsEntry, ...], tuple[str, ...]]:
    seen: set[str] = set()
    entries = []
    for v in view.vitals:
        shown: dict[str, str] = {}
        for name in P.VITAL_LABELS:
            measure = v.measures.get(name)
            if measure is None:
                continue
            seen.add(name)
            if measure.status == "measured":
                shown[name] = P.amount(measure.value, 2)
            else:
                word = VITAL_STATUS.get(measure.status, measure.status)
                shown[name] = f"{word}: {measure.reason}" if measure.reason else word
        entries.append(
            VitalsEntry(
                reading=v.reading_id,
                version=v.version,
                current=v.current,
                amendment_reason=v.amendment_reason,
                recorded_at=v.recorded_at,
                recorded_by=person_name(users, v.recorded_by),
                step=None if v.step is None else v.step + 1,
                baseline=v.baseline,
                within_limits=v.within_limits,
                values=shown,
                symptoms=tuple(symptom_words(s) for s in v.symptoms),
                note=v.note,
            )
        )
    return tuple(entries), tuple(n for n in P.VITAL_LABELS if n in seen)


def _alarms(view: SessionView, users: Mapping[int, Person]) -> tuple[AlarmRow, ...]:
    rows = [
        AlarmRow(
            id=a.id,
            priority=a.priority,
            kind=a.kind,
            condition=a.condition,
            message=a.message,
            value=a.value or "",
            raised_at=a.raised_at,
            acknowledged_by=person_name(users, a.acknowledged_by)
            if a.acknowledged_by is not None
            else "",
            acknowledged_at=a.acknowledged_at,
            escalated_at=a.escalated_at,
            cleared_at=a.cleared_at,
            active=a.active,
        )
        for a in view.alarms.items
    ]
    return tuple(sorted(rows, key=lambda r: (r.raised_at, r.id)))


def _reactions(
    view: SessionView, events: Sequence[EventRecord], users: Mapping[int, Person]
) -> tuple[ReactionRow, ...]:
    graded = {
        e.data.get("reaction"): person_name(users, e.actor_id, e.actor_role)
        for e in events
        if e.kind in ("reaction_resolved", "reaction_closed")
    }
    return tuple(
        ReactionRow(
            number=r.number,
            onset_at=r.onset_at,
            at_step=None if r.at_step is None else r.at_step + 1,
            symptoms=tuple(symptom_words(s) for s in r.symptoms),
            brown_grade=r.brown_grade,
            ctcae_grade=r.ctcae_grade,
            resolved_at=r.resolved_at,
            graded_by=graded.get(r.number, ""),
            treatments=tuple(_treatment(t) for t in r.treatments),
            note=r.note or "",
            findings=tuple(r.findings or ()),
            outcome=OUTCOME_WORDS.get(r.outcome or "", ""),
            closed_by_abort=bool(r.closed_by_abort),
            suggested=_suggested_words(r.suggested_grade),
        )
        for r in view.reactions
    )


def _suggested_words(suggested: GradeSuggestion | None) -> str:
    if suggested is None or suggested.brown_grade is None:
        return ""
    text = f"Brown grade {suggested.brown_grade}"
    if suggested.ctcae_grade is not None:
        text += f", CTCAE grade {suggested.ctcae_grade}"
    reasons = "; ".join(suggested.reasons)
    return f"{text} ({reasons})" if reasons else text


def _treatment(given: Treatment | M.Premedication) -> TreatmentRow:
    return TreatmentRow(given.drug, given.dose, given.route, given.given_at)


def _signature_detail(event: EventRecord, unit: str) -> str:
    data = event.data
    if event.kind == "plan_edited":
        return str(data.get("edit") or "")
    if event.kind == "paused":
        return str(data.get("reason") or "")
    if event.kind == "assigned":
        return f"chair {data.get('location') or 'not set'}; nurse {data.get('nurse') or 'none'}"
    if event.kind in ("reaction_resolved", "reaction_closed"):
        grade = f"reaction {data.get('reaction')}: Brown grade {data.get('brown_grade')}"
        if data.get("ctcae_grade"):
            grade += f", CTCAE grade {data['ctcae_grade']}"
        if data.get("outcome"):
            grade += f"; outcome {OUTCOME_WORDS.get(data['outcome'], data['outcome'])}"
        return grade
    if event.kind == "safety_override":
        gates = "; ".join(data.get("gates") or ())
        return f"{data.get('command', '')}: {gates}. Reason: {data.get('reason', '')}"
    if event.kind == "resumed":
        return resume_choice(data)
    if event.kind == "completed":
        return f"{P.amount(data.get('delivered'), 3)} {unit} delivered"
    if event.kind == "aborted":
        return f"{data.get('reason', '')}; {P.amount(data.get('delivered'), 3)} {unit} delivered"
    return ""


def _signatures(
    events: Iterable[EventRecord], users: Mapping[int, Person], unit: str
) -> tuple[Signature, ...]:
    return tuple(
        Signature(
            what=SIGNED_EVENTS[e.kind],
            detail=_signature_detail(e, unit),
            who=person_name(users, e.actor_id, e.actor_role),
            role=e.actor_role,
            at=e.at,
        )
        for e in events
        if e.kind in SIGNED_EVENTS
    )


def build_report(
    view: SessionView,
    events: Sequence[EventRecord],
    users: Mapping[int, Person],
    approved: Plan | None,
    patient: PatientFacts,
    index_reaction: Mapping[str, Any],
    now: datetime,
    where: tzinfo = UTC,
) -> Report:
    """The report's rows from one consistent read of the session, its times read in the
    facility's zone `where`. Pure."""
    events = sorted(events, key=lambda e: e.seq)
    administration = _administration(view, now)
    plan = _plan_rows(view, approved, administration, view.reactions)
    pauses = pauses_of(events, administration, users, now)
    target = view.target_dose
    delivered = view.delivered_dose
    vitals, fields = _vitals(view, users)
    started = next((e.at for e in events if e.kind == "started"), None)
    ended = next((e.at for e in events if e.kind in ("completed", "aborted")), None)
    first = events[0].at if events else now
    last = ended or now
    age = (
        age_in_years(patient.birth_date, first.date())
        if patient.birth_date <= first.date()
        else None
    )
    fev1 = index_reaction.get("fev1_percent_predicted")
    flags = [label for key, label in INDEX_FLAGS if index_reaction.get(key)]
    if fev1 is not None:
        flags.append(f"FEV1 {P.amount(fev1, 0)} % of predicted")
    return Report(
        session_id=view.id,
        status=view.status,
        status_title=P.STATUS_TITLES.get(view.status, view.status),
        drug=view.drug,
        route=view.route,
        template=view.template,
        risk_tier=view.risk_tier,
        unit=view.unit,
        target_dose=target,
        delivered_dose=delivered,
        delivered_percent=view.delivered_percent,
        patient=patient,
        age=age,
        age_for_rules=rules_age(patient.birth_date, first.date()) if age is not None else None,
        index_reactions=tuple(
            REACTION_LABELS.get(r, r.replace("_", " ")) for r in index_reaction.get("reactions", [])
        ),
        index_flags=tuple(flags),
        screening=view.screening,
        started_at=started,
        ended_at=ended,
        abort_reason=view.abort_reason,
        bags=tuple(
            BagRow(b.number, b.label, b.volume_ml, b.concentration, b.volume_ml * b.concentration)
            for b in view.plan.bags
        ),
        plan=plan,
        administration=administration,
        pauses=pauses,
        deviations=deviations_of(
            plan,
            pauses,
            status=view.status,
            delivered=delivered,
            target=target,
            unit=view.unit,
        ),
        vitals=vitals,
        vital_fields=fields,
        alarms=_alarms(view, users),
        reactions=_reactions(view, events, users),
        premedications=tuple(_treatment(p) for p in view.checklist.premedications),
        signatures=_signatures(events, users, view.unit),
        generated_at=now,
        multi_day=first.astimezone(where).date() != last.astimezone(where).date(),
        where=where,
        checks=check_records(
            ((e, e.data) for e in events), lambda user_id: person_name(users, user_id)
        ),
    )
