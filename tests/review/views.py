"""Typed session views for the pure tests of the report and the FHIR export: every field a
plain default, the ones a test is about given."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.session import view as V
from app.vitals.rules import Thresholds


def session_view(**fields: Any) -> V.SessionView:
    defaults: dict[str, Any] = {
        "id": 7,
        "patient_id": 3,
        "drug": "ceftazidime",
        "route": "IV",
        "template": "brigham-12",
        "risk_tier": "standard",
        "location": None,
        "assigned_nurse": None,
        "diluent": V.DEFAULT_DILUENT,
        "signoffs": V.Signoffs(True, None, None),
        "status": "running",
        "version": 1,
        "last_event_seq": 1,
        "current_step": None,
        "next_step": None,
        "deadline": None,
        "overdue": False,
        "target_dose": Decimal(100),
        "unit": "mg",
        "delivered_dose": Decimal(0),
        "delivered_percent": Decimal(0),
        "plan": V.PlanView("infusion", (), ()),
        "segments": (),
        "checklist": V.Checklist((), False, False, False, False, (), ()),
        "reactions": (),
        "vitals_every_minutes": Decimal(30),
        "vitals_needed": False,
        "last_vitals_at": None,
        "observation_done": False,
        "abort_reason": None,
        "screening": {"outcome": "eligible", "reasons": []},
        "vitals": (),
        "alarms": V.Alarms(None, None, None, None, ()),
        "thresholds": V.ThresholdsView({}, (), Thresholds()),
    }
    return V.SessionView(**(defaults | fields))


def vitals_set(
    at: datetime,
    values: dict[str, Any],
    *,
    id: int = 1,
    reading_id: int | None = None,
    version: int = 1,
    current: bool = True,
    amendment_reason: str | None = None,
    recorded_by: int | None = None,
    step: int | None = 0,
    baseline: bool = False,
) -> V.VitalsSet:
    """A stored vitals set as the read side parses it."""
    stored = V.stored_vitals(
        id=id,
        reading_id=reading_id,
        version=version,
        supersedes=None,
        amendment_reason=amendment_reason,
        recorded_at=at,
        recorded_by=recorded_by,
        step=step,
        baseline=baseline,
        within_limits=True,
        values_json=json.dumps(values),
    )
    return replace(stored, current=current)
