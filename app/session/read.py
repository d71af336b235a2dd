"""Reading a session for its view: the facts are loaded once, in the caller's transaction, and
handed to the pure builder (app.session.view). Reads only."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.alarms import logic
from app.auth.models import User
from app.patients.models import Patient
from app.patients.rules import rules_age
from app.session import alarm_board, codec, snapshots
from app.session import machine as M
from app.session.models import DesensitizationSession
from app.session.models import VitalsSet as VitalsRow
from app.session.store import load
from app.session.view import (
    RECENT_VITALS,
    Person,
    SessionFacts,
    SessionView,
    VitalsSet,
    build,
    shown_vitals,
    stored_vitals,
)
from app.session.view_json import as_json

# A window of vitals and the count of all sets, as window_of reads them.
KnownWindow = tuple[list[VitalsSet], int]


def _board(alarms_json: str) -> logic.AlarmBoard:
    return alarm_board.loads(alarms_json, logic.AlarmSettings.for_speed(1.0))


# Every view (command answers, GET, the bedside, a replay) carries the newest RECENT_VITALS
# sets and the newest baseline; the full history is paged (`history_page`).
HISTORY_PAGE = 50  # sets per page of the full history, by default
HISTORY_PAGE_MAX = 200


def parsed(r: VitalsRow) -> VitalsSet:
    return _parse(
        id=r.id,
        reading_id=r.reading_id,
        version=r.version,
        supersedes=r.supersedes_id,
        amendment_reason=r.amendment_reason,
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        step=r.step_position,
        baseline=r.baseline,
        within_limits=r.within_limits,
        values_json=r.values_json,
    )


# A stored set never changes (a correction is a new row), and its parsed form is frozen: the
# same row read again (by every view after every change) is parsed once per process. The key is
# the whole row, so rows of different databases never mix.
_parse = lru_cache(maxsize=4096)(stored_vitals)


def _of_session(table: Any, session_id: int, upto: int | None) -> list[Any]:
    where = [table.session_id == session_id]
    if upto is not None:
        where.append(table.id <= upto)
    return where


async def vitals_of(db: AsyncSession, session_id: int) -> list[VitalsSet]:
    """Every version of every reading, oldest first, each parsed once (the review's read)."""
    rows = await db.scalars(
        select(VitalsRow).where(VitalsRow.session_id == session_id).order_by(VitalsRow.id)
    )
    return [parsed(r) for r in rows]


async def window_of(
    db: AsyncSession, session_id: int, *, upto: int | None = None, recent: int = RECENT_VITALS
) -> tuple[list[VitalsSet], int]:
    """The newest `recent` stored sets and the newest baseline set (its limits and the
    start's gate need it however old), oldest first, each parsed once; and how many sets
    there are in all. One statement that reads only those rows. `upto`: only the sets
    recorded up to that id (a replay)."""
    params = {"session_id": session_id, "recent": recent}
    if upto is not None:
        params["upto"] = upto
    rows = (await db.execute(_window_statement(upto is not None), params)).all()
    return [parsed(r) for r, _ in rows], (rows[0][1] if rows else 0)


@lru_cache(maxsize=2)
def _window_statement(bounded: bool) -> Any:
    """window_of's statement, built once (building it costs more than running it), with the
    session, the number of recent sets and, when `bounded`, the newest id as parameters."""
    newest, baseline, every = aliased(VitalsRow), aliased(VitalsRow), aliased(VitalsRow)

    def of_session(table: Any) -> list[Any]:
        where = [table.session_id == bindparam("session_id")]
        if bounded:
            where.append(table.id <= bindparam("upto"))
        return where

    recent_ids = (
        select(newest.id)
        .where(*of_session(newest))
        .order_by(newest.id.desc())
        .limit(bindparam("recent", type_=Integer))
        .subquery()
    )
    oldest_recent = select(func.min(recent_ids.c.id)).scalar_subquery()
    newest_baseline = (
        select(func.max(baseline.id))
        .where(*of_session(baseline), baseline.baseline.is_(True))
        .scalar_subquery()
    )
    total = (select(func.count()).select_from(every).where(*of_session(every))).scalar_subquery()
    return (
        select(VitalsRow, total)
        .where(
            *of_session(VitalsRow),
            or_(VitalsRow.id >= oldest_recent, VitalsRow.id == newest_baseline),
        )
        .order_by(VitalsRow.id)
    )


async def reaction_vitals_of(
    db: AsyncSession,
    session_id: int,
    reactions: tuple[M.Reaction, ...],
    before: int,
    upto: int | None,
) -> list[VitalsSet]:
    """The current, non-baseline sets older than the window (id < `before`) recorded while a
    reaction was open: its suggested grade counts every set from onset to resolution."""
    if not reactions:
        return []
    newer = aliased(VitalsRow)
    superseded = exists().where(
        newer.supersedes_id == VitalsRow.id, *([newer.id <= upto] if upto is not None else [])
    )
    spans = [
        and_(
            VitalsRow.recorded_at >= r.onset_at,
            *([VitalsRow.recorded_at <= r.resolved_at] if r.resolved_at is not None else []),
        )
        for r in reactions
    ]
    rows = await db.scalars(
        select(VitalsRow)
        .where(
            *_of_session(VitalsRow, session_id, upto),
            VitalsRow.id < before,
            VitalsRow.baseline.is_(False),
            ~superseded,
            or_(*spans),
        )
        .order_by(VitalsRow.id)
    )
    return [parsed(r) for r in rows]


async def people_of(
    db: AsyncSession, row: DesensitizationSession, state: M.SessionState
) -> dict[int, Person]:
    """The users a view names: who approved, who verified the bags, the assigned nurse."""
    ids = {state.approved_by, state.bags_verified_by, row.assigned_nurse_id} - {None}
    if not ids:
        return {}
    users = await db.scalars(select(User).where(User.id.in_(ids)))
    return {u.id: Person(u.username, u.display_name) for u in users}


async def facts_of(
    db: AsyncSession,
    row: DesensitizationSession,
    state: M.SessionState,
    now: datetime,
    *,
    vitals_upto: int | None = None,
    full_history: bool = False,
    window: KnownWindow | None = None,
) -> SessionFacts:
    """Everything the view shows beside the state, as of `now`: the window of vitals, or
    every set with `full_history` (the review and its exports). `vitals_upto`: only the vitals
    sets recorded up to that id (a replay)."""
    patient = await db.get(Patient, row.patient_id)
    graded: list[VitalsSet] = []
    if full_history:
        vitals = await vitals_of(db, row.id)
        total = len(vitals)
    else:
        # `window`: the command that stored the newest set already knows the window.
        vitals, total = window or await window_of(db, row.id, upto=vitals_upto)
        if total > len(vitals):  # older sets exist: those of a reaction still count for its grade
            before = vitals[-RECENT_VITALS].id
            graded = await reaction_vitals_of(db, row.id, state.reactions, before, vitals_upto)
    return SessionFacts(
        id=row.id,
        patient_id=row.patient_id,
        drug=row.drug,
        route=row.route,
        template=row.template,
        risk_tier=row.risk_tier,
        location=row.location,
        assigned_nurse_id=row.assigned_nurse_id,
        diluent=row.diluent,
        last_event_seq=row.last_event_seq,
        screening=json.loads(row.screening_json),
        threshold_overrides=json.loads(row.thresholds_json),
        alarms=_board(row.alarms_json),
        vitals=tuple(vitals),
        age_years=rules_age(patient.birth_date, now.date()) if patient is not None else None,
        people=await people_of(db, row, state),
        vitals_total=total,
        reaction_vitals=tuple(graded),
    )


async def view_of(
    db: AsyncSession,
    row: DesensitizationSession,
    state: M.SessionState,
    now: datetime,
    *,
    full_history: bool = False,
    window: KnownWindow | None = None,
) -> SessionView:
    facts = await facts_of(db, row, state, now, full_history=full_history, window=window)
    return build(state, facts, now)


async def current_view(
    db: AsyncSession, row: DesensitizationSession, now: datetime, *, full_history: bool = False
) -> SessionView:
    """The session now, with the window of vitals; `full_history`: with every set (the
    review, the report and the exports, which need the older readings)."""
    return await view_of(db, row, codec.loads(row.state_json), now, full_history=full_history)


async def command_view(
    db: AsyncSession,
    row: DesensitizationSession,
    state: M.SessionState,
    now: datetime,
    window: KnownWindow | None = None,
) -> SessionView:
    """The view a command answers with, and hands to the screens."""
    return await view_of(db, row, state, now, window=window)


async def answer_of(
    db: AsyncSession,
    row: DesensitizationSession,
    state: M.SessionState,
    now: datetime,
    window: KnownWindow | None = None,
) -> dict[str, Any]:
    """The view as a command's JSON answer."""
    return as_json(await view_of(db, row, state, now, window=window))


async def view_at(db: AsyncSession, session_id: int, seq: int) -> SessionView | None:
    """The session's view as its screens and its API showed it once the change that wrote event
    `seq` was committed (one change can write several events: vitals that open a reaction and
    raise alarms): rebuilt from that change's snapshot and the vitals recorded up to it. None
    for a seq that does not exist (yet)."""
    row = await load(db, session_id)
    if seq < 1:
        return None
    snap = await snapshots.at(db, session_id, seq)
    if snap is None:
        return None
    state = codec.loads(snap.parts.state)
    facts = await facts_of(db, row, state, snap.at, vitals_upto=snap.vitals_upto)
    then = replace(
        facts,
        last_event_seq=snap.seq,
        threshold_overrides=json.loads(snap.parts.thresholds),
        alarms=_board(snap.parts.alarms),
    )
    return build(state, then, snap.at)


@dataclass(frozen=True)
class HistoryPage:
    """One page of a session's full vitals history, newest first."""

    items: tuple[VitalsSet, ...]
    total: int  # every stored set (every version)
    next_before: int | None  # the `before` of the next (older) page; None on the last


async def history_page(
    db: AsyncSession, row: DesensitizationSession, now: datetime, *, before: int | None, limit: int
) -> HistoryPage:
    """Up to `limit` stored sets older than id `before` (the newest without it), newest first:
    keyset paging, so a set recorded meanwhile neither shifts nor repeats a page."""
    where = [VitalsRow.session_id == row.id]
    if before is not None:
        where.append(VitalsRow.id < before)
    rows = list(
        await db.scalars(
            select(VitalsRow).where(*where).order_by(VitalsRow.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r.id for r in rows]
    corrected = (
        await db.scalars(select(VitalsRow.supersedes_id).where(VitalsRow.supersedes_id.in_(ids)))
        if ids
        else ()
    )
    superseded = frozenset(i for i in corrected if i is not None)
    total = await db.scalar(
        select(func.count()).select_from(VitalsRow).where(VitalsRow.session_id == row.id)
    )
    patient = await db.get(Patient, row.patient_id)
    age = rules_age(patient.birth_date, now.date()) if patient is not None else None
    items = shown_vitals(tuple(parsed(r) for r in rows), age, superseded)
    return HistoryPage(items, total or 0, rows[-1].id if more else None)
