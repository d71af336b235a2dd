"""Shared building blocks of the audit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.db import create_engine, session_factory

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
NURSE = Actor(user_id=7, username="nurse1", role="nurse")
SYSTEM = Actor(user_id=None, username="system", role="system")
WARD = RequestInfo(client_addr="10.0.0.5", user_agent="Bedside/1.0", request_id="req-1")


def entry_kwargs(i: int) -> dict[str, Any]:
    """Keyword arguments of a varied, valid ``append`` call number ``i``."""
    return {
        "at": T0 + timedelta(minutes=i, microseconds=i),
        "actor": NURSE if i % 2 else SYSTEM,
        "action": "session.step_started" if i % 2 else "protocol.edited",
        "entity": "session",
        "entity_id": str(100 + i),
        "before": None if i % 3 == 0 else {"step": i, "rate_ml_h": "2.5", "ok": True},
        "after": {"step": i + 1, "note": f"schritt {i} – Ü", "dose": [1, 2, None]},
        "reason": None if i % 2 else f"reason {i}",
        "request": WARD if i % 2 else None,
    }


async def append_committed(url: str, count: int, start: int = 0) -> None:
    """Append ``count`` entries to the database at ``url``, each in its own transaction."""
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        for i in range(start, start + count):
            async with sessions() as session, session.begin():
                await audit_service.append(session, **entry_kwargs(i))
    finally:
        await engine.dispose()


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    if isinstance(url_or_engine, str):
        return url_or_engine.startswith("sqlite")
    return url_or_engine.dialect.name == "sqlite"


async def drop_append_only_triggers(engine: AsyncEngine) -> None:
    """What an attacker with direct database access would do first."""
    async with engine.begin() as conn:
        if is_sqlite(engine):
            await conn.execute(text("DROP TRIGGER audit_event_no_update"))
            await conn.execute(text("DROP TRIGGER audit_event_no_delete"))
        else:
            await conn.execute(text("DROP TRIGGER audit_event_no_update_delete ON audit_event"))
            await conn.execute(text("DROP TRIGGER audit_event_no_truncate ON audit_event"))
