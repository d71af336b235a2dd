"""The migration that puts step, escalation and alarm-check timers into one table, on a database
that already holds timers of every kind and state: nothing is lost either way, and the one
table keeps the old tables' constraints."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.models import User
from app.db import UTCDateTime, create_engine, session_factory
from app.patients.models import Patient
from app.schema import current_revision, downgrade, head_revision, upgrade
from app.session.models import Timer

BEFORE = "7d8e976b781d"  # the three timer tables
ONE_TABLE = "5b9c2e7d4f61"

T0 = datetime(2026, 12, 7, 9, 0, 0, 250000, tzinfo=UTC)
MIN = timedelta(minutes=1)

OLD_TABLES = {
    "session_timer": sa.table(
        "session_timer",
        sa.column("id"),
        sa.column("session_id"),
        sa.column("generation"),
        sa.column("due_at", UTCDateTime()),
        sa.column("status"),
        sa.column("fired_at", UTCDateTime()),
        sa.column("late_seconds"),
    ),
    "alarm_timer": sa.table(
        "alarm_timer",
        sa.column("id"),
        sa.column("session_id"),
        sa.column("alarm_number"),
        sa.column("due_at", UTCDateTime()),
        sa.column("status"),
        sa.column("fired_at", UTCDateTime()),
    ),
    "alarm_check_timer": sa.table(
        "alarm_check_timer",
        sa.column("id"),
        sa.column("session_id"),
        sa.column("due_at", UTCDateTime()),
        sa.column("status"),
        sa.column("fired_at", UTCDateTime()),
    ),
}


def _old_rows(first: int, second: int) -> dict[str, list[dict[str, object]]]:
    """Timers of both sessions in every state, each table's rows in id order."""
    return {
        "session_timer": [
            {
                "session_id": first,
                "generation": 1,
                "due_at": T0,
                "status": "fired",
                "fired_at": T0 + timedelta(seconds=1.5),
                "late_seconds": "1.5",
            },
            {
                "session_id": first,
                "generation": 2,
                "due_at": T0 + 15 * MIN,
                "status": "cancelled",
                "fired_at": None,
                "late_seconds": None,
            },
            {
                "session_id": first,
                "generation": 3,
                "due_at": T0 + 20 * MIN,
                "status": "pending",
                "fired_at": None,
                "late_seconds": None,
            },
            {
                "session_id": second,
                "generation": 1,
                "due_at": T0 + 5 * MIN,
                "status": "pending",
                "fired_at": None,
                "late_seconds": None,
            },
        ],
        "alarm_timer": [
            {
                "session_id": first,
                "alarm_number": 1,
                "due_at": T0 + 2 * MIN,
                "status": "fired",
                "fired_at": T0 + 2 * MIN,
            },
            {
                "session_id": first,
                "alarm_number": 2,
                "due_at": T0 + 4 * MIN,
                "status": "cancelled",
                "fired_at": None,
            },
            {
                "session_id": second,
                "alarm_number": 1,
                "due_at": T0 + 6 * MIN,
                "status": "pending",
                "fired_at": None,
            },
        ],
        "alarm_check_timer": [
            {"session_id": first, "due_at": T0 + MIN, "status": "fired", "fired_at": T0 + MIN},
            {"session_id": first, "due_at": T0 + 3 * MIN, "status": "cancelled", "fired_at": None},
            {"session_id": second, "due_at": T0 + 7 * MIN, "status": "pending", "fired_at": None},
        ],
    }


def _as_timers(old: dict[str, list[dict[str, object]]]) -> list[dict[str, object]]:
    """The old rows as the one table holds them: steps, then escalations, then checks."""
    kinds = {
        "session_timer": "step",
        "alarm_timer": "escalation",
        "alarm_check_timer": "alarm_check",
    }
    timers = []
    for table, kind in kinds.items():
        for row in old[table]:
            timers.append(
                {
                    "session_id": row["session_id"],
                    "kind": kind,
                    "generation": row.get("generation"),
                    "alarm_number": row.get("alarm_number"),
                    "due_at": row["due_at"],
                    "status": row["status"],
                    "fired_at": row["fired_at"],
                    "late_seconds": Decimal(str(row["late_seconds"]))
                    if row.get("late_seconds") is not None
                    else None,
                }
            )
    return timers


async def _two_sessions(engine: AsyncEngine) -> tuple[int, int]:
    async with session_factory(engine)() as db:
        user = User(
            username="migrator",
            display_name="M",
            role="physician",
            password_hash="not-a-hash",
            created_at=T0,
        )
        db.add(user)
        await db.flush()
        patient = Patient(
            mrn="MIG-1",
            family_name="Okafor",
            given_name="Ada",
            birth_date=date(1980, 1, 1),
            weight_kg=Decimal("70"),
            asthma=False,
            created_at=T0,
            created_by=user.id,
            updated_at=T0,
        )
        db.add(patient)
        await db.flush()
        # A core insert of the columns of that revision: the model has grown columns since.
        values = dict(
            patient_id=patient.id,
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
            version=1,
            state_json="{}",
            last_event_seq=0,
            created_at=T0,
            created_by=user.id,
            updated_at=T0,
        )
        table = sa.table(
            "desensitization_session",
            sa.column("id"),
            *(sa.column(name, UTCDateTime() if name.endswith("_at") else None) for name in values),
        )
        ids = [
            (await db.execute(sa.insert(table).values(values).returning(table.c.id))).scalar_one()
            for _ in range(2)
        ]
        await db.commit()
        return ids[0], ids[1]


async def _fill(engine: AsyncEngine, old: dict[str, list[dict[str, object]]]) -> None:
    async with engine.begin() as conn:
        for table, rows in old.items():
            await conn.execute(sa.insert(OLD_TABLES[table]), rows)


async def _read_old(engine: AsyncEngine) -> dict[str, list[dict[str, object]]]:
    async with engine.connect() as conn:
        return {
            name: [
                {k: v for k, v in row._asdict().items() if k != "id"}
                for row in await conn.execute(sa.select(table).order_by(table.c.id))
            ]
            for name, table in OLD_TABLES.items()
        }


async def _read_timers(engine: AsyncEngine) -> list[dict[str, object]]:
    async with session_factory(engine)() as db:
        return [
            {
                "session_id": t.session_id,
                "kind": t.kind,
                "generation": t.generation,
                "alarm_number": t.alarm_number,
                "due_at": t.due_at,
                "status": t.status,
                "fired_at": t.fired_at,
                "late_seconds": t.late_seconds,
            }
            for t in await db.scalars(sa.select(Timer).order_by(Timer.id))
        ]


async def _refused(engine: AsyncEngine, timer: Timer) -> bool:
    async with session_factory(engine)() as db:
        db.add(timer)
        try:
            await db.commit()
        except IntegrityError:
            return True
    return False


async def test_every_timer_survives_the_move_to_one_table_and_back(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    assert await asyncio.to_thread(upgrade, url, BEFORE) == BEFORE
    engine = create_engine(url)
    try:
        first, second = await _two_sessions(engine)
        old = _old_rows(first, second)
        await _fill(engine, old)

        assert await asyncio.to_thread(upgrade, url, ONE_TABLE) == ONE_TABLE
        assert await _read_timers(engine) == _as_timers(old)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        assert tables.isdisjoint(OLD_TABLES)

        await asyncio.to_thread(downgrade, url, BEFORE)
        async with engine.connect() as conn:
            assert await conn.run_sync(current_revision) == BEFORE
        assert await _read_old(engine) == old

        assert await asyncio.to_thread(upgrade, url) == head_revision()
        assert await _read_timers(engine) == _as_timers(old)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "timer",
    [
        pytest.param(dict(kind="step", generation=1), id="a second timer of one step generation"),
        pytest.param(dict(kind="escalation", alarm_number=1), id="a second escalation of an alarm"),
        pytest.param(dict(kind="step"), id="a step timer without its generation"),
        pytest.param(dict(kind="escalation"), id="an escalation without its alarm"),
        pytest.param(dict(kind="alarm_check", generation=4), id="a check with a generation"),
        pytest.param(dict(kind="snooze"), id="an unknown kind"),
    ],
)
async def test_the_one_table_refuses_what_the_old_tables_could_not_hold(
    empty_database_url: str, timer: dict[str, object]
) -> None:
    url = empty_database_url
    await asyncio.to_thread(upgrade, url, BEFORE)
    engine = create_engine(url)
    try:
        first, second = await _two_sessions(engine)
        await _fill(engine, _old_rows(first, second))
        await asyncio.to_thread(upgrade, url)
        # A new row beside the copied ones: the ids the copy used are not handed out again.
        assert not await _refused(
            engine, Timer(session_id=second, kind="alarm_check", due_at=T0, status="pending")
        )
        assert await _refused(engine, Timer(session_id=first, due_at=T0, status="pending", **timer))
    finally:
        await engine.dispose()
