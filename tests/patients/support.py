"""Shared pieces of the patients tests: unique record numbers, and a look at the rows behind the
API."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.audit import AuditEvent
from app.db import create_engine, session_factory
from app.patients.models import Patient
from tests.support import run_async


def new_mrn(prefix: str = "T") -> str:
    return f"{prefix}-{secrets.token_hex(5).upper()}"


def today_utc() -> date:
    return datetime.now(UTC).date()


def patient_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mrn": new_mrn(),
        "family_name": "Lovelace",
        "given_name": "Ada",
        "birth_date": "1985-12-10",
        "sex": "female",
        "weight_kg": 61.5,
        "asthma": True,
        "allergy_history": "Anaphylaxis to ceftazidime, 2025",
    }
    body.update(overrides)
    return body


def future_date(days: int = 2) -> str:
    # Two days ahead: still the future whatever the server's and this machine's time zones.
    return (today_utc() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class AuditRow:
    action: str
    entity: str | None
    entity_id: str | None
    actor_username: str
    actor_role: str
    actor_id: int | None
    client_addr: str | None
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        action=event.action,
        entity=event.entity,
        entity_id=event.entity_id,
        actor_username=event.actor_username,
        actor_role=event.actor_role,
        actor_id=event.actor_id,
        client_addr=event.client_addr,
        request_id=event.request_id,
        before=json.loads(event.before_json) if event.before_json else None,
        after=json.loads(event.after_json) if event.after_json else None,
    )


class Rows:
    """Read-only queries on the test database, each on its own short-lived engine."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def _run(self, make_query: Any, many: bool = False) -> Any:
        async def run() -> Any:
            engine = create_engine(self.database_url)
            try:
                async with session_factory(engine)() as db:
                    if many:
                        return list(await db.scalars(make_query()))
                    return await db.scalar(make_query())
            finally:
                await engine.dispose()

        return run_async(run)

    def patient_count(self, mrn: str | None = None) -> int:
        def query() -> Any:
            q = select(func.count()).select_from(Patient)
            return q if mrn is None else q.where(func.upper(Patient.mrn) == mrn.upper())

        return self._run(query)

    def patient_audit_count(self) -> int:
        return self._run(
            lambda: (
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.like("patient.%"))
            )
        )

    def audit_of(self, patient_id: int) -> list[AuditRow]:
        events = self._run(
            lambda: (
                select(AuditEvent)
                .where(AuditEvent.entity == "patient", AuditEvent.entity_id == str(patient_id))
                .order_by(AuditEvent.seq)
            ),
            many=True,
        )
        return [_row(event) for event in events]

    def snapshot(self) -> tuple[int, int]:
        """What a refused request must leave untouched."""
        return self.patient_count(), self.patient_audit_count()
