"""Bag labels in the database: printed when the bags are verified (one per bag), reprinted on
request (numbered, the previous copy voided), and looked up when a code is scanned. Called
inside a session's unit of work (app.session.unit_of_work), which commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.labels.checks import IssuedLabel
from app.labels.code import new_code, parse
from app.labels.models import BagLabel


@dataclass(frozen=True)
class Printed:
    bag: int
    copy: int
    code: str


def _printed(db: AsyncSession, label: BagLabel) -> Printed:
    """A new label with a fresh code, added to the unit's session."""
    label.code = new_code(label.session_id, label.bag).text
    db.add(label)
    return Printed(label.bag, label.copy, label.code)


async def issue(
    db: AsyncSession,
    session_id: int,
    bags: Sequence[int],
    keeps_hours: Decimal,
    now: datetime,
    prepared_by: int | None,
) -> list[Printed]:
    """The first label of each of these bags, prepared now; they keep `keeps_hours`."""
    expires_at = now + timedelta(hours=float(keeps_hours))
    return [
        _printed(
            db,
            BagLabel(
                session_id=session_id,
                bag=number,
                copy=1,
                printed_at=now,
                printed_by=prepared_by,
                prepared_by=prepared_by,
                prepared_at=now,
                expires_at=expires_at,
            ),
        )
        for number in bags
    ]


async def reprint(
    db: AsyncSession, session_id: int, bag: int, now: datetime, by: int | None
) -> tuple[Printed, int]:
    """A new copy of a bag's label; the copy it replaces is void from now. Returns the new
    copy and the number of the voided one. The bag must have been labelled."""
    current = await db.scalar(
        select(BagLabel)
        .where(BagLabel.session_id == session_id, BagLabel.bag == bag)
        .order_by(BagLabel.copy.desc())
        .limit(1)
    )
    if current is None:
        raise LookupError(f"bag {bag} has no label to reprint")
    current.voided_at = current.voided_at or now
    again = BagLabel(
        session_id=session_id,
        bag=bag,
        copy=current.copy + 1,
        printed_at=now,
        printed_by=by,
        prepared_by=current.prepared_by,
        prepared_at=current.prepared_at,
        expires_at=current.expires_at,  # the bag keeps as long as it did
    )
    return _printed(db, again), current.copy


async def current_labels(db: AsyncSession, session_id: int) -> list[BagLabel]:
    """The label of each bag that scans now: its newest copy, not voided."""
    rows = await db.scalars(
        select(BagLabel)
        .where(BagLabel.session_id == session_id, BagLabel.voided_at.is_(None))
        .order_by(BagLabel.bag)
    )
    return list(rows)


def as_json(label: BagLabel) -> dict[str, Any]:
    return {
        "bag": label.bag,
        "copy": label.copy,
        "code": label.code,
        "printed": parse(label.code).printed,
        "printed_at": label.printed_at.isoformat(),
        "prepared_at": label.prepared_at.isoformat(),
        "expires_at": label.expires_at.isoformat(),
    }


async def issued(db: AsyncSession, code: str) -> IssuedLabel | None:
    label = await db.scalar(select(BagLabel).where(BagLabel.code == code))
    if label is None:
        return None
    return IssuedLabel(
        label.code, label.session_id, label.bag, label.copy, label.expires_at, label.voided_at
    )
