"""Writing and reading the session snapshots: a full one now and then, deltas in between
(app.session.snapshot_delta). A write is one INSERT and needs no read: the delta's base is
the row as the command found it, which is the last snapshot unless the row is marked stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.session.models import DesensitizationSession, SessionSnapshot, VitalsSet
from app.session.snapshot_delta import (
    DELTA,
    FULL,
    Parts,
    Stored,
    checkpoint_due,
    diff_parts,
    rebuild,
)


@dataclass(frozen=True)
class Before:
    """The session row as a command found it: its last event and its three texts."""

    seq: int
    parts: Parts


def parts_of(row: DesensitizationSession) -> Parts:
    return Parts(row.state_json, row.alarms_json, row.thresholds_json)


def before_of(row: DesensitizationSession) -> Before:
    return Before(row.last_event_seq, parts_of(row))


def new_row(
    row: DesensitizationSession, now: datetime, before: Before | None
) -> SessionSnapshot | None:
    """The snapshot of the change that took the row from `before` (None: it was just created)
    to what it is, or None when the change added no event (a snapshot is kept per event seq).
    Marks the row stale when it changed without one (its next snapshot is then a full one),
    and fresh again once a full one is written."""
    after = parts_of(row)
    base: int | None = None
    if before is not None:  # (a row just created has not read its stale mark back: not stale)
        if row.last_event_seq == before.seq:
            if after != before.parts and not row.snapshot_stale:
                row.snapshot_stale = True
            return None
        if row.snapshot_stale:
            row.snapshot_stale = False
        else:
            base = before.seq
    full = base is None or checkpoint_due(base, row.last_event_seq)
    kept = after if before is None or full else diff_parts(before.parts, after)
    return SessionSnapshot(
        session_id=row.id,
        seq=row.last_event_seq,
        at=now,
        version=row.version,
        kind=FULL if full else DELTA,
        base_seq=None if full else base,
        state_json=kept.state,
        alarms_json=kept.alarms,
        thresholds_json=kept.thresholds,
        # In the INSERT itself: the highest vitals id then, without a read of its own.
        vitals_upto=select(func.coalesce(func.max(VitalsSet.id), 0))
        .where(VitalsSet.session_id == row.id)
        .scalar_subquery(),
    )


@dataclass(frozen=True)
class Snapshot:
    """A snapshot with its parts whole."""

    seq: int
    at: datetime
    version: int
    vitals_upto: int
    parts: Parts


def _stored(row: SessionSnapshot) -> Stored:
    return Stored(
        row.seq,
        row.kind,
        row.base_seq,
        Parts(row.state_json, row.alarms_json, row.thresholds_json),
    )


def whole(rows: Sequence[SessionSnapshot]) -> list[Snapshot]:
    """Every snapshot of a session whole, from all its rows in seq order."""
    rebuilt = rebuild(_stored(r) for r in rows)
    return [
        Snapshot(r.seq, r.at, r.version, r.vitals_upto, parts)
        for r, (_, parts) in zip(rows, rebuilt, strict=True)
    ]


async def at(db: AsyncSession, session_id: int, seq: int) -> Snapshot | None:
    """The snapshot of the change that wrote event `seq` (the first kept at or after it),
    whole: its last full one and the deltas since, in one read. None: no such change (yet)."""
    this = SessionSnapshot
    target = (
        select(this.seq)
        .where(this.session_id == session_id, this.seq >= seq)
        .order_by(this.seq)
        .limit(1)
        .scalar_subquery()
    )
    start = (
        select(func.max(this.seq))
        .where(this.session_id == session_id, this.kind == FULL, this.seq <= target)
        .scalar_subquery()
    )
    rows = list(
        await db.scalars(
            select(this)
            .where(this.session_id == session_id, this.seq >= start, this.seq <= target)
            .order_by(this.seq)
        )
    )
    return whole(rows)[-1] if rows else None
