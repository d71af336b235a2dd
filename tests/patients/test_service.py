"""The patients service on the databases under test, below the HTTP layer: what it commits, and
the refusals the API cannot provoke on demand (a lost race on the MRN)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit import Actor, AuditEvent, RequestInfo
from app.auth.models import User
from app.clock import ManualClock
from app.db import session_factory
from app.patients import service
from app.patients.models import Patient
from tests.patients.support import new_mrn
from tests.support import Account

WARD = RequestInfo(client_addr="10.1.2.3", request_id="req-p1")


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2031, 3, 4, 8, 0, tzinfo=UTC))


@pytest.fixture
async def nurse(db: AsyncSession, accounts: dict[str, Account]) -> Actor:
    username = accounts["nurse"].username
    user_id = await db.scalar(select(User.id).where(User.username == username))
    await db.rollback()
    return Actor(user_id=user_id, username=username, role="nurse")


def registration(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "mrn": new_mrn(),
        "family_name": "Seacole",
        "given_name": "Mary",
        "birth_date": date(1990, 2, 28),
        "weight_kg": Decimal("72.4"),
        "asthma": False,
    }
    values.update(overrides)
    return values


async def counts(db: AsyncSession) -> tuple[int, int]:
    patients = await db.scalar(select(func.count()).select_from(Patient))
    events = await db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("patient.%"))
    )
    await db.rollback()
    return patients or 0, events or 0


async def test_create_commits_the_row_and_its_audit_row_at_the_clock_time(
    db: AsyncSession, clock: ManualClock, nurse: Actor
) -> None:
    patient = await service.create_patient(
        db, clock, actor=nurse, request=WARD, **registration(sex="Female ")
    )
    assert patient.created_at == patient.updated_at == clock.now()
    assert patient.created_by == nurse.user_id
    assert patient.sex == "female"
    assert patient.weight_kg == Decimal("72.40")

    event = await db.scalar(
        select(AuditEvent).where(
            AuditEvent.entity == "patient", AuditEvent.entity_id == str(patient.id)
        )
    )
    assert event is not None
    assert event.occurred_at == clock.now()
    assert (event.client_addr, event.request_id) == ("10.1.2.3", "req-p1")


async def test_update_stamps_updated_at_with_the_clock(
    db: AsyncSession, clock: ManualClock, nurse: Actor
) -> None:
    patient = await service.create_patient(db, clock, actor=nurse, **registration())
    clock.advance(timedelta(minutes=5))
    updated = await service.update_patient(
        db, clock, actor=nurse, patient_id=patient.id, changes={"asthma": True}
    )
    assert updated.asthma is True
    assert updated.updated_at == clock.now()
    assert updated.created_at == clock.now() - timedelta(minutes=5)


async def test_a_lost_race_on_the_mrn_is_still_a_clean_refusal(
    db: AsyncSession, clock: ManualClock, nurse: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await service.create_patient(db, clock, actor=nurse, **registration())
    first_id, first_mrn = first.id, first.mrn  # counts() rolls back, which expires `first`
    before = await counts(db)
    real_holder = service._mrn_holder
    calls = 0

    async def stale_first_check(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The other desk's insert committed just after this desk looked.
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real_holder(*args, **kwargs)

    monkeypatch.setattr(service, "_mrn_holder", stale_first_check)
    with pytest.raises(service.DuplicateMrn, match=f"already registered to patient {first_id}"):
        await service.create_patient(db, clock, actor=nurse, **registration(mrn=first_mrn))
    assert calls == 2
    assert await counts(db) == before


async def test_a_person_is_required(db: AsyncSession, clock: ManualClock) -> None:
    system = Actor(user_id=None, username="system", role="system")
    with pytest.raises(service.PatientError, match="signed-in person"):
        await service.create_patient(db, clock, actor=system, **registration())


async def test_unknown_fields_are_refused_by_update(
    db: AsyncSession, clock: ManualClock, nurse: Actor
) -> None:
    patient = await service.create_patient(db, clock, actor=nurse, **registration())
    with pytest.raises(service.PatientError, match="unknown field 'created_by'") as refused:
        await service.update_patient(
            db, clock, actor=nurse, patient_id=patient.id, changes={"created_by": 1}
        )
    assert refused.value.field == "created_by"


async def test_the_birth_date_is_judged_against_the_clock(
    db: AsyncSession, clock: ManualClock, nurse: Actor
) -> None:
    tomorrow = clock.now().date() + timedelta(days=1)
    with pytest.raises(service.PatientError, match="in the future") as refused:
        await service.create_patient(db, clock, actor=nurse, **registration(birth_date=tomorrow))
    assert refused.value.field == "birth_date"
    born_today = await service.create_patient(
        db, clock, actor=nurse, **registration(birth_date=clock.now().date())
    )
    assert born_today.birth_date == date(2031, 3, 4)


async def test_list_is_capped_at_fifty(db: AsyncSession, clock: ManualClock, nurse: Actor) -> None:
    found = await service.list_patients(db, None, limit=500)
    assert len(found) <= service.LIST_LIMIT
