"""The migration to snapshot deltas, on a database that already holds full snapshots: they stay
valid as they are, the sessions' next snapshots start whole, and the downgrade turns every
delta written since back into the full snapshot it stands for."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.models import User
from app.db import UTCDateTime, create_engine, session_factory
from app.patients.models import Patient
from app.schema import downgrade, upgrade
from app.session import snapshots, store
from app.session.models import DesensitizationSession, SessionSnapshot, VitalsSet

BEFORE = "5b9c2e7d4f61"  # full snapshots only
DELTAS = "e1a7c3f95b20"

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

OLD_SNAPSHOT = sa.table(
    "session_snapshot",
    sa.column("session_id"),
    sa.column("seq"),
    sa.column("at", UTCDateTime()),
    sa.column("version"),
    sa.column("state_json"),
    sa.column("alarms_json"),
    sa.column("thresholds_json"),
    sa.column("vitals_upto"),
)


def texts(n: int) -> tuple[str, str, str]:
    """The session's three texts after change `n`: a log that grows, an alarm that changes."""
    state = {"status": "running", "version": n, "log": [{"at": i, "hr": 60 + i} for i in range(n)]}
    alarms = {"alarms": [{"id": 1, "acknowledged": n > 4}], "next_id": 2}
    thresholds = {"hr_high": 120} if n > 3 else {}
    return (
        json.dumps(state, sort_keys=True, separators=(",", ":")),
        json.dumps(alarms, sort_keys=True, separators=(",", ":")),
        json.dumps(thresholds, sort_keys=True),  # as thresholds are written: with spaces
    )


async def _session(engine: AsyncEngine, name: str = "migrator") -> int:
    async with engine.begin() as conn:
        user = (
            await conn.execute(
                sa.insert(User.__table__)
                .values(
                    username=name,
                    display_name="M",
                    role="nurse",
                    password_hash="x",
                    created_at=T0,
                )
                .returning(User.__table__.c.id)
            )
        ).scalar_one()
        patient = (
            await conn.execute(
                sa.insert(Patient.__table__)
                .values(
                    mrn=f"MIG-{name}",
                    family_name="Okafor",
                    given_name="Ada",
                    birth_date=date(1980, 1, 1),
                    weight_kg="70",
                    asthma=False,
                    created_at=T0,
                    created_by=user,
                    updated_at=T0,
                )
                .returning(Patient.__table__.c.id)
            )
        ).scalar_one()
        state, alarms, thresholds = texts(2)
        values = dict(
            patient_id=patient,
            drug="carboplatin",
            route="iv",
            target_dose="450",
            unit="mg",
            template="brigham-12",
            parameters_json="{}",
            index_reaction_json="{}",
            screening_json="{}",
            risk_tier="standard",
            status="running",
            version=2,
            state_json=state,
            alarms_json=alarms,
            thresholds_json=thresholds,
            last_event_seq=2,
            created_at=T0,
            created_by=user,
            updated_at=T0,
        )
        # The columns of that revision only: the model has grown since.
        table = sa.table(
            "desensitization_session",
            sa.column("id"),
            *(sa.column(k, UTCDateTime() if k.endswith("_at") else None) for k in values),
        )
        sid = (
            await conn.execute(sa.insert(table).values(values).returning(table.c.id))
        ).scalar_one()
        await conn.execute(
            sa.insert(OLD_SNAPSHOT),
            [
                dict(
                    session_id=sid,
                    seq=n,
                    at=T0 + timedelta(minutes=n),
                    version=n,
                    state_json=texts(n)[0],
                    alarms_json=texts(n)[1],
                    thresholds_json=texts(n)[2],
                    vitals_upto=0,
                )
                for n in (1, 2)
            ],
        )
    return sid


async def _changes(
    engine: AsyncEngine, sid: int, first: int, upto: int, *, event: bool = True
) -> None:
    """Commands first..upto as the unit of work runs them: one event each (unless not
    `event`), a vitals set in each."""
    for n in range(first, upto + 1):
        async with session_factory(engine)() as db:
            row, _ = await store.load_for_command(db, sid)
            before = snapshots.before_of(row)
            row.state_json, row.alarms_json, row.thresholds_json = texts(n)
            if event:
                row.last_event_seq, row.version = n, n
            db.add(
                VitalsSet(
                    session_id=sid,
                    recorded_at=T0,
                    recorded_by=1,
                    session_status="running",
                    values_json="{}",
                    within_limits=True,
                )
            )
            await db.flush()
            await store.snapshot(db, row, T0 + timedelta(minutes=n), before)
            await db.commit()


async def _kept(engine: AsyncEngine, sid: int) -> list[tuple[int, str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OLD_SNAPSHOT).where(OLD_SNAPSHOT.c.session_id == sid).order_by("seq")
        )
        return [(r.seq, r.state_json, r.alarms_json, r.thresholds_json) for r in rows]


async def test_full_snapshots_stay_valid_and_deltas_go_back_whole(empty_database_url: str) -> None:
    url = empty_database_url
    await asyncio.to_thread(upgrade, url, BEFORE)
    engine = create_engine(url)
    try:
        sid = await _session(engine)
        await asyncio.to_thread(upgrade, url, DELTAS)
        await _changes(engine, sid, 3, 8)
        async with session_factory(engine)() as db:
            kinds = [
                (s.seq, s.kind, s.base_seq, s.vitals_upto)
                for s in await db.scalars(
                    sa.select(SessionSnapshot)
                    .where(SessionSnapshot.session_id == sid)
                    .order_by(SessionSnapshot.seq)
                )
            ]
            # The old ones as they were; the first after the upgrade whole (the row may have
            # changed since its last snapshot); deltas after it.
            assert kinds[:3] == [(1, "full", None, 0), (2, "full", None, 0), (3, "full", None, 1)]
            assert kinds[3:] == [(n, "delta", n - 1, n - 2) for n in range(4, 9)]
            for n in range(1, 9):
                snap = await snapshots.at(db, sid, n)
                assert snap is not None and snap.seq == n
                assert (snap.parts.state, snap.parts.alarms, snap.parts.thresholds) == texts(n)
            assert await snapshots.at(db, sid, 9) is None
            assert not (await db.get(DesensitizationSession, sid)).snapshot_stale  # type: ignore[union-attr]

        await asyncio.to_thread(downgrade, url, BEFORE)
        assert await _kept(engine, sid) == [(n, *texts(n)) for n in range(1, 9)]
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {x["name"] for x in sa.inspect(c).get_columns("session_snapshot")}
            )
        assert {"kind", "base_seq"}.isdisjoint(columns)

        await asyncio.to_thread(upgrade, url)
        await _changes(engine, sid, 9, 10)  # and on again
        async with session_factory(engine)() as db:
            snap = await snapshots.at(db, sid, 10)
            assert snap is not None and snap.parts.state == texts(10)[0]
    finally:
        await engine.dispose()


async def _kinds(engine: AsyncEngine, sid: int) -> list[tuple[int, str, int | None]]:
    async with session_factory(engine)() as db:
        return [
            (s.seq, s.kind, s.base_seq)
            for s in await db.scalars(
                sa.select(SessionSnapshot)
                .where(SessionSnapshot.session_id == sid)
                .order_by(SessionSnapshot.seq)
            )
        ]


async def test_a_change_without_an_event_makes_the_next_snapshot_whole(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        sid = await _session(engine, "drifter")
        await _changes(engine, sid, 3, 3)
        # The row changes (an alarm board rewritten) but no event is written: no snapshot.
        await _changes(engine, sid, 5, 5, event=False)
        async with session_factory(engine)() as db:
            assert (await store.load(db, sid)).snapshot_stale
        await _changes(engine, sid, 6, 7)
        # Snapshot 3 is no base for 6: the row had changed since. 6 is whole, 7 a delta on it.
        assert await _kinds(engine, sid) == [
            (1, "full", None),
            (2, "full", None),
            (3, "delta", 2),
            (6, "full", None),
            (7, "delta", 6),
        ]
        async with session_factory(engine)() as db:
            assert not (await store.load(db, sid)).snapshot_stale
            for seq, n in ((3, 3), (4, 6), (6, 6), (7, 7)):
                snap = await snapshots.at(db, sid, seq)
                assert snap is not None
                assert (snap.parts.state, snap.parts.alarms, snap.parts.thresholds) == texts(n)
    finally:
        await engine.dispose()
