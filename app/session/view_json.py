"""The session view as the API answers it: the same keys in the same order, decimals as
`str(Decimal)` and times as `datetime.isoformat()`, as every client has always read it. Pure."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.session import codec
from app.session.view import Alarms, Person, SessionView, Signoff, VitalsSet


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _person(person: Person | None) -> dict[str, str] | None:
    return None if person is None else {"username": person.username, "name": person.name}


def _signoff(signoff: Signoff | None) -> dict[str, Any] | None:
    if signoff is None:
        return None
    return {"by": _person(signoff.by), "at": _time(signoff.at)}


def vitals_json(v: VitalsSet) -> dict[str, Any]:
    score = v.news2
    return {
        "id": v.id,
        "reading_id": v.reading_id,
        "version": v.version,
        "current": v.current,
        "supersedes": v.supersedes,
        "amendment_reason": v.amendment_reason,
        "recorded_at": v.recorded_at.isoformat(),
        "recorded_by": v.recorded_by,
        "step": v.step,
        "baseline": v.baseline,
        "within_limits": v.within_limits,
        "values": v.values,
        "news2": None
        if score is None
        else {
            "total": score.total,
            "partial": score.partial,
            "missing": list(score.missing),
            "response": score.response,
            "text": score.text(),
        },
    }


def _alarms(alarms: Alarms) -> dict[str, Any]:
    return {
        "sounding": alarms.sounding,
        "sounding_after_pause": alarms.sounding_after_pause,
        "audio_paused_seconds": alarms.audio_paused_seconds,
        "audio_paused_until": _time(alarms.audio_paused_until),
        "items": [
            {
                "id": a.id,
                "priority": a.priority,
                "kind": a.kind,
                "condition": a.condition,
                "message": a.message,
                "value": a.value,
                "limit": a.limit,
                "raised_at": a.raised_at.isoformat(),
                "active": a.active,
                "latched": a.latched,
                "acknowledged_by": a.acknowledged_by,
                "acknowledged_at": _time(a.acknowledged_at),
                "escalated_at": _time(a.escalated_at),
                "cleared_at": _time(a.cleared_at),
                "colour": a.colour,
                "flashing": a.flashing,
            }
            for a in alarms.items
        ],
    }


def as_json(view: SessionView) -> dict[str, Any]:
    """The view as the API's JSON answer (app.contract.SessionView)."""
    plan, checklist = view.plan, view.checklist
    return {
        "id": view.id,
        "patient_id": view.patient_id,
        "drug": view.drug,
        "route": view.route,
        "template": view.template,
        "risk_tier": view.risk_tier,
        "location": view.location,
        "assigned_nurse": _person(view.assigned_nurse),
        "diluent": view.diluent,
        "signoffs": {
            "pharmacist_needed": view.signoffs.pharmacist_needed,
            "approved": _signoff(view.signoffs.approved),
            "bags_verified": _signoff(view.signoffs.bags_verified),
        },
        "status": view.status,
        "version": view.version,
        "last_event_seq": view.last_event_seq,
        "current_step": view.current_step,
        "next_step": view.next_step,
        "deadline": _time(view.deadline),
        "overdue": view.overdue,
        "target_dose": str(view.target_dose),
        "unit": view.unit,
        "delivered_dose": str(view.delivered_dose),
        "delivered_percent": str(view.delivered_percent),
        "plan": {
            "kind": plan.kind,
            "bags": [
                {
                    "number": b.number,
                    "label": b.label,
                    "volume_ml": str(b.volume_ml),
                    "concentration": str(b.concentration),
                }
                for b in plan.bags
            ],
            "steps": [
                {
                    "position": s.position,
                    "solution": s.solution,
                    "rate_ml_h": _str(s.rate_ml_h),
                    "minutes": _str(s.minutes),
                    "dose": _str(s.dose),
                    "origin": s.origin,
                    "of_step": s.of_step,
                }
                for s in plan.steps
            ],
        },
        "segments": [
            {
                "step": s.step,
                "solution": s.solution,
                "rate_ml_h": _str(s.rate_ml_h),
                "started_at": s.started_at.isoformat(),
                "stopped_at": _time(s.stopped_at),
                "volume_ml": _str(s.volume_ml),
                "dose": str(s.dose),
            }
            for s in view.segments
        ],
        "checklist": {
            "missing": list(checklist.missing),
            "consent": checklist.consent,
            "baseline_vitals": checklist.baseline_vitals,
            "spirometry_required": checklist.spirometry_required,
            "rescue_kit": checklist.rescue_kit,
            "baseline_high": list(checklist.baseline_high),
            "premedications": [codec.encode(p) for p in checklist.premedications],
        },
        # Every field the machine records of a reaction, then the suggested grade.
        "reactions": [codec.encode(r) for r in view.reactions],
        "vitals_every_minutes": str(view.vitals_every_minutes),
        "vitals_needed": view.vitals_needed,
        "last_vitals_at": _time(view.last_vitals_at),
        "observation_done": view.observation_done,
        "abort_reason": view.abort_reason,
        "screening": view.screening,
        # The newest sets and the newest baseline; the rest: GET /sessions/{id}/vitals.
        "vitals": [vitals_json(v) for v in view.vitals],
        "vitals_total": view.vitals_total,
        "checks": dataclasses.asdict(view.checks),
        "alarms": _alarms(view.alarms),
        "thresholds": {
            "overrides": view.thresholds.overrides,
            "in_force": list(view.thresholds.in_force),
        },
    }
