"""Appending to and verifying the audit log on real databases (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event as sql_events
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit import Actor, AuditChainHead, AuditEvent, RequestInfo
from app.audit import service as audit_service
from app.audit.chain import GENESIS_HASH, canonical_json, entry_hash
from app.db import create_engine, session_factory
from tests.audit.support import (
    NURSE,
    T0,
    WARD,
    append_committed,
    drop_append_only_triggers,
    entry_kwargs,
    is_sqlite,
)


async def _head(session: AsyncSession) -> tuple[int, str]:
    head = (await session.execute(select(AuditChainHead))).scalar_one()
    return head.last_seq, head.last_hash


async def _rows(session: AsyncSession) -> list[dict[str, Any]]:
    result = await session.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq))
    return [dict(row) for row in result.mappings()]


async def _count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()


# --- appending -------------------------------------------------------------------------------


async def test_appends_form_a_linked_gap_free_chain(engine: AsyncEngine) -> None:
    # The session database is shared: whatever other tests committed stays, ours is rolled back.
    async with session_factory(engine)() as session:
        start_seq, start_hash = await _head(session)
        events = [await audit_service.append(session, **entry_kwargs(i)) for i in range(6)]

        assert [event.seq for event in events] == list(range(start_seq + 1, start_seq + 7))
        assert events[0].prev_hash == start_hash
        for earlier, later in itertools.pairwise(events):
            assert later.prev_hash == earlier.hash
        assert await _head(session) == (events[-1].seq, events[-1].hash)

        report = await audit_service.verify(session, batch_size=4)
        assert report.ok, report.reason
        assert (report.entries, report.last_seq) == (start_seq + 6, start_seq + 6)
        await session.rollback()


async def test_stored_rows_hash_to_their_own_hash(fresh_engine: AsyncEngine) -> None:
    before = {"step": 3, "dose": {"amount": "0.1", "unit": "mg"}}
    after = {"step": 4, "note": "Ü – ×", "flags": [True, None]}
    at = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)
    async with session_factory(fresh_engine)() as session, session.begin():
        await audit_service.append(
            session, at=at, actor=NURSE, action="session.step_started", entity="session",
            entity_id="12", before=before, after=after, reason="on time", request=WARD,
        )  # fmt: skip

    # Read back through a new engine: what the database returns, not what the session cached.
    async with session_factory(fresh_engine)() as session:
        (row,) = await _rows(session)

    assert row["seq"] == 1
    assert row["prev_hash"] == GENESIS_HASH
    assert row["occurred_at"] == at
    assert row["before_json"] == canonical_json(before)
    assert row["after_json"] == canonical_json(after)
    assert (row["actor_id"], row["actor_username"], row["actor_role"]) == (7, "nurse1", "nurse")
    assert (row["client_addr"], row["user_agent"], row["request_id"]) == (
        "10.0.0.5",
        "Bedside/1.0",
        "req-1",
    )
    assert entry_hash(row) == row["hash"]


async def test_absent_states_are_null_and_aware_times_are_stored_in_utc(
    engine: AsyncEngine,
) -> None:
    from datetime import timedelta, timezone

    berlin_winter = timezone(timedelta(hours=1))
    async with session_factory(engine)() as session:
        event = await audit_service.append(
            session,
            at=datetime(2026, 11, 21, 10, 0, tzinfo=berlin_winter),
            actor=Actor(user_id=None, username="cli:root", role="system"),
            action="user.create",
            after={},
        )
        await session.flush()
        session.expunge(event)
        loaded = await session.get(AuditEvent, event.seq)
        assert loaded is not None
        assert loaded is not event
        assert loaded.occurred_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
        assert loaded.occurred_at.tzinfo is UTC
        assert loaded.before_json is None
        assert loaded.after_json == "{}"
        assert loaded.actor_id is None
        await session.rollback()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"after": {"password": "x"}}, "look secret"),
        ({"before": {"user": {"Password_Hash": "x"}}}, "look secret"),
        ({"after": {"sessions": [{"token": "abc"}]}}, "look secret"),
        ({"after": {"client_SECRET": "x"}}, "look secret"),
        ({"at": datetime(2026, 11, 21, 10, 0)}, "timezone-aware"),
        ({"action": ""}, "blank"),
        ({"action": "x" * 65}, "longer than 64"),
        ({"actor": Actor(user_id=1, username=" ", role="nurse")}, "blank"),
        ({"after": {"rate": float("nan")}}, "no JSON form"),
        ({"after": {"when": datetime(2026, 11, 21)}}, "naive"),
        ({"after": ["not", "a", "mapping"]}, "mapping"),
        ({"reason": "nul \x00 byte"}, "NUL"),
    ],
)
async def test_bad_appends_are_refused_and_write_nothing(
    engine: AsyncEngine, changes: dict[str, Any], message: str
) -> None:
    async with session_factory(engine)() as session:
        head = await _head(session)
        count = await _count(session)

        with pytest.raises(ValueError, match=message):
            await audit_service.append(session, **{**entry_kwargs(1), **changes})

        assert await _head(session) == head
        assert await _count(session) == count
        assert not session.new
        await session.rollback()


async def test_a_long_browser_string_is_cut_not_refused(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        event = await audit_service.append(
            session, **{**entry_kwargs(1), "request": RequestInfo(user_agent="x" * 5000)}
        )
        await session.rollback()

    assert event.user_agent == "x" * audit_service.UA_MAX_CHARS


async def test_an_append_commits_or_rolls_back_with_the_callers_transaction(
    fresh_engine: AsyncEngine,
) -> None:
    sessions = session_factory(fresh_engine)
    async with sessions() as session:
        await audit_service.append(session, **entry_kwargs(0))
        await session.rollback()
    async with sessions() as session, session.begin():
        event = await audit_service.append(session, **entry_kwargs(1))
    async with sessions() as session:
        assert await _count(session) == 1
        assert await _head(session) == (1, event.hash)
        assert event.seq == 1


async def test_a_process_that_moved_the_head_last_appends_without_reading_it(
    fresh_engine: AsyncEngine,
) -> None:
    sessions = session_factory(fresh_engine)
    sent: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    async with sessions() as session, session.begin():
        await audit_service.append(session, **entry_kwargs(0))
    sql_events.listen(fresh_engine.sync_engine, "before_cursor_execute", keep)
    try:
        async with sessions() as session, session.begin():
            second = await audit_service.append(session, **entry_kwargs(1))
    finally:
        sql_events.remove(fresh_engine.sync_engine, "before_cursor_execute", keep)
    assert not [s for s in sent if s.startswith("SELECT")], sent
    assert [s.split()[0] for s in sent if not s.startswith("BEGIN")] == ["UPDATE", "INSERT"]
    async with sessions() as session:
        assert await _head(session) == (2, second.hash)
        assert (await audit_service.verify(session)).ok


# --- serialized appends ----------------------------------------------------------------------

WRITERS = 3
APPENDS_PER_WRITER = 15


async def test_racing_writers_build_one_unbroken_chain(fresh_url: str) -> None:
    engines = [create_engine(fresh_url) for _ in range(WRITERS)]
    start = asyncio.Event()

    async def writer(number: int, engine: AsyncEngine) -> list[int]:
        sessions = session_factory(engine)
        await start.wait()
        seqs = []
        for i in range(APPENDS_PER_WRITER):
            async with sessions() as session, session.begin():
                event = await audit_service.append(
                    session, **{**entry_kwargs(i), "entity_id": f"writer-{number}"}
                )
                seqs.append(event.seq)
        return seqs

    try:
        # Every writer opens its connection first, so that they really run side by side.
        for engine in engines:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        tasks = [asyncio.create_task(writer(n, e)) for n, e in enumerate(engines)]
        start.set()
        written = await asyncio.gather(*tasks)

        async with session_factory(engines[0])() as session:
            rows = await _rows(session)
            report = await audit_service.verify(session)
            head = await _head(session)
    finally:
        for engine in engines:
            await engine.dispose()

    total = WRITERS * APPENDS_PER_WRITER
    assert sorted(seq for seqs in written for seq in seqs) == list(range(1, total + 1))
    assert [row["seq"] for row in rows] == list(range(1, total + 1))
    assert rows[0]["prev_hash"] == GENESIS_HASH
    for earlier, later in itertools.pairwise(rows):
        assert later["prev_hash"] == earlier["hash"]
    assert len({row["hash"] for row in rows}) == total
    assert {row["entity_id"] for row in rows} == {f"writer-{n}" for n in range(WRITERS)}
    assert head == (total, rows[-1]["hash"])
    assert report.ok, report.reason
    assert (report.entries, report.last_seq) == (total, total)


# --- the database refuses changes ------------------------------------------------------------


async def _refused(engine: AsyncEngine, statement: str) -> str:
    async with engine.begin() as conn:
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(text(statement))
    return str(caught.value)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET reason = 'rewritten' WHERE seq = 2",
        "UPDATE audit_event SET seq = seq + 100",
        "DELETE FROM audit_event WHERE seq = 2",
        "DELETE FROM audit_event",
    ],
)
async def test_the_database_refuses_updates_and_deletes(
    fresh_url: str, fresh_engine: AsyncEngine, statement: str
) -> None:
    await append_committed(fresh_url, 3)
    async with session_factory(fresh_engine)() as session:
        rows_before = await _rows(session)

    assert "audit_event is append-only" in await _refused(fresh_engine, statement)

    async with session_factory(fresh_engine)() as session:
        assert await _rows(session) == rows_before
        assert (await audit_service.verify(session)).ok


async def test_postgresql_refuses_truncate(fresh_url: str, fresh_engine: AsyncEngine) -> None:
    if is_sqlite(fresh_url):
        pytest.skip("SQLite has no TRUNCATE")
    await append_committed(fresh_url, 2)

    assert "audit_event is append-only" in await _refused(fresh_engine, "TRUNCATE audit_event")

    async with session_factory(fresh_engine)() as session:
        assert await _count(session) == 2


# --- verification finds tampering ------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            "UPDATE audit_event SET reason = 'tidied up' WHERE seq = 4",
            "seq 4: hash does not match its contents",
        ),
        (
            "UPDATE audit_event SET after_json = '{}' WHERE seq = 2",
            "seq 2: hash does not match its contents",
        ),
        (
            "UPDATE audit_event SET occurred_at = occurred_at WHERE seq = 1",
            None,  # rewriting a row with its own values is no tampering
        ),
        ("DELETE FROM audit_event WHERE seq = 3", "seq 3: entry missing"),
        (
            "DELETE FROM audit_event WHERE seq >= 5",
            "seq 5: entry missing (the chain head is at seq 6)",
        ),
        (
            f"UPDATE audit_chain_head SET last_hash = '{'e' * 64}'",
            "seq 6: hash does not match the chain head",
        ),
        (
            "UPDATE audit_chain_head SET last_seq = 5",
            "seq 5: hash does not match the chain head",
        ),
    ],
)
async def test_verify_names_the_first_tampered_entry(
    fresh_url: str, fresh_engine: AsyncEngine, statement: str, reason: str | None
) -> None:
    await append_committed(fresh_url, 6)
    await drop_append_only_triggers(fresh_engine)
    async with fresh_engine.begin() as conn:
        await conn.execute(text(statement))

    async with session_factory(fresh_engine)() as session:
        report = await audit_service.verify(session, batch_size=2)

    assert report.reason == reason
    assert report.ok is (reason is None)
    if reason is not None:
        assert report.first_bad_seq == int(reason.split()[1].rstrip(":"))


async def test_verify_finds_a_row_slipped_in_behind_the_head(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await append_committed(fresh_url, 3)
    async with session_factory(fresh_engine)() as session:
        rows = await _rows(session)
    forged = {**rows[-1], "seq": 4, "prev_hash": rows[-1]["hash"], "reason": "forged"}
    forged["hash"] = entry_hash(forged)
    async with fresh_engine.begin() as conn:
        await conn.execute(AuditEvent.__table__.insert().values(**forged))

    async with session_factory(fresh_engine)() as session:
        report = await audit_service.verify(session)

    assert not report.ok
    assert report.first_bad_seq == 4
    assert report.reason == "seq 4: not covered by the chain head (at seq 3)"


async def test_verify_without_a_chain_head(fresh_url: str, fresh_engine: AsyncEngine) -> None:
    async with fresh_engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_chain_head"))

    async with session_factory(fresh_engine)() as session:
        report = await audit_service.verify(session)
        with pytest.raises(audit_service.AuditChainHeadMissing):
            await audit_service.append(session, at=T0, actor=NURSE, action="x")

    assert not report.ok
    assert report.first_bad_seq is None
    assert report.reason == "the chain head row is missing"
