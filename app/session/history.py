"""A patient's past sessions, read for the history page and the next plan (the decisions are in
app.patients.history). Reads only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.patients import history as H
from app.session import codec
from app.session import machine as M
from app.session.models import DesensitizationSession
from app.session.plan import Plan


def _ladder_step(state: M.SessionState, index: int | None) -> int | None:
    """The approved step (1-based) a plan index stands for: steps added by a resume name it."""
    if index is None or index >= len(state.plan.steps):
        return None
    step = state.plan.steps[index]
    return (step.of_step if step.of_step is not None else index) + 1


def _last_dose_at(state: M.SessionState, now: datetime) -> datetime | None:
    times = []
    for segment in state.segments:
        if segment.dose_given is not None:
            if segment.dose_given > 0:
                times.append(segment.started_at)
        elif segment.stopped_at is None:
            times.append(now)  # infusing now
        elif segment.stopped_at > segment.started_at:
            times.append(segment.stopped_at)
    return max(times) if times else None


def _full_dose_at(state: M.SessionState) -> datetime | None:
    """When the target dose was reached (the infusion's end, where the observation began), for a
    session that was not aborted: the only dose after which tolerance may persist."""
    if state.status == "aborted":
        return None
    return state.observation_started_at


def intermediate_edit(plan: Plan, ladder_step: int) -> dict[str, Any] | None:
    """The draft-plan edit that puts one intermediate step before `ladder_step` (1-based), as
    the resume after a reaction would, or None when there is no step to interpolate from."""
    index = ladder_step - 1
    if not 1 <= index < len(plan.steps):
        return None
    made = M.intermediate_steps(plan, index, 1, plan.steps[index])
    if isinstance(made, M.Refused):
        return None
    (step,) = made
    edit: dict[str, Any] = {"action": "insert", "after": index}
    if step.is_infusion:
        edit |= {"rate_ml_h": str(step.rate_ml_h), "solution": step.solution}
        if step.minutes is not None:
            edit["minutes"] = str(step.minutes)
    else:
        assert step.dose is not None
        edit["dose"] = str(step.dose.quantize(Decimal("0.001")).normalize())
    return edit


def past_session(row: DesensitizationSession, now: datetime) -> H.PastSession:
    state = codec.loads(row.state_json)
    approved = state.approved or state.plan
    reactions = tuple(
        H.PastReaction(
            number=r.number,
            onset_at=r.onset_at,
            at_step=_ladder_step(state, r.at_step),
            brown_grade=r.brown_grade,
            ctcae_grade=r.ctcae_grade,
            symptoms=r.symptoms,
        )
        for r in state.reactions
    )
    edits = {}
    for reaction in reactions:
        if reaction.at_step is not None and reaction.at_step not in edits:
            edit = intermediate_edit(approved, reaction.at_step)
            if edit is not None:
                edits[reaction.at_step] = edit
    return H.PastSession(
        id=row.id,
        drug=row.drug,
        status=row.status,
        template=row.template,
        target_dose=row.target_dose,
        unit=row.unit,
        created_at=row.created_at,
        last_dose_at=_last_dose_at(state, now),
        full_dose_at=_full_dose_at(state),
        reactions=reactions,
        intermediate_edits=edits,
    )


async def past_sessions(
    db: AsyncSession, patient_id: int, now: datetime, *, exclude: int | None = None
) -> list[H.PastSession]:
    query = select(DesensitizationSession).where(DesensitizationSession.patient_id == patient_id)
    if exclude is not None:
        query = query.where(DesensitizationSession.id != exclude)
    return [past_session(row, now) for row in await db.scalars(query)]


def history_view(item: H.DrugHistory) -> dict[str, Any]:
    return {
        "drug": item.drug,
        "last_dose_at": item.last_dose_at.isoformat() if item.last_dose_at else None,
        "last_full_dose_at": item.last_full_dose_at.isoformat() if item.last_full_dose_at else None,
        "tolerance": tolerance_view(item.tolerance),
        "sessions": [
            {
                "id": s.id,
                "status": s.status,
                "template": s.template,
                "target_dose": str(s.target_dose),
                "unit": s.unit,
                "created_at": s.created_at.isoformat(),
                "last_dose_at": s.last_dose_at.isoformat() if s.last_dose_at else None,
                "full_dose_at": s.full_dose_at.isoformat() if s.full_dose_at else None,
                "reactions": [
                    {
                        "number": r.number,
                        "onset_at": r.onset_at.isoformat(),
                        "at_step": r.at_step,
                        "brown_grade": r.brown_grade,
                        "ctcae_grade": r.ctcae_grade,
                        "symptoms": list(r.symptoms),
                    }
                    for r in s.reactions
                ],
            }
            for s in item.sessions
        ],
        "suggestions": [
            {
                "code": g.code,
                "text": g.text,
                "session_id": g.session_id,
                "reaction": g.reaction,
                "plan_edit": g.plan_edit,
                "template": g.template,
                "premedications": list(g.premedications),
            }
            for g in item.suggestions
        ],
    }


def tolerance_view(t: H.Tolerance) -> dict[str, Any]:
    return {
        "band": t.band,
        "title": t.title,
        "window_hours": str(t.window.persist_hours),
        "uncertain_until_hours": str(t.window.uncertain_hours),
        "hours_since_last_dose": str(t.hours_since_last_dose)
        if t.hours_since_last_dose is not None
        else None,
        "needs_full_desensitization": t.needs_full_desensitization,
        "message": t.message,
    }
