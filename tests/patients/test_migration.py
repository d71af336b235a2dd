"""The patients migration creates its table with the database's own checks, and takes it away."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.db import create_engine
from app.schema import downgrade, upgrade

PATIENTS = "9a1f3c5e7b20"
BEFORE_PATIENTS = "7d4b2e6c1a55"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _insert_patient(url: str, weight: str, sex: str = "female") -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO app_user (username, display_name, role, password_hash, is_demo,"
                    " created_at) VALUES ('u1', 'U', 'nurse', 'x', false, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO patient (mrn, family_name, given_name, birth_date, sex, "
                    "weight_kg, asthma, created_at, created_by, updated_at) VALUES ('M1', 'F', "
                    "'G', '2000-01-01', :sex, :weight, false, CURRENT_TIMESTAMP, "
                    "(SELECT id FROM app_user), CURRENT_TIMESTAMP)"
                ),
                {"weight": weight, "sex": sex},
            )
    finally:
        await engine.dispose()


async def test_the_patients_migration_is_reversible(empty_database_url: str) -> None:
    url = empty_database_url
    assert await asyncio.to_thread(upgrade, url, PATIENTS) == PATIENTS
    assert "patient" in await _tables(url)

    assert await asyncio.to_thread(downgrade, url, BEFORE_PATIENTS) == BEFORE_PATIENTS
    tables = await _tables(url)
    assert "patient" not in tables and "app_user" in tables

    assert await asyncio.to_thread(upgrade, url, PATIENTS) == PATIENTS
    assert "patient" in await _tables(url)


@pytest.mark.parametrize(("weight", "sex"), [("400.5", "female"), ("0.1", "male"), ("70", "x")])
async def test_the_database_refuses_impossible_rows_itself(
    empty_database_url: str, weight: str, sex: str
) -> None:
    await asyncio.to_thread(upgrade, empty_database_url, PATIENTS)
    with pytest.raises(IntegrityError):
        await _insert_patient(empty_database_url, weight, sex)
