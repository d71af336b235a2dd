"""The audit migration creates the tables, the chain head and the triggers, and takes them away."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text

from app.audit.chain import GENESIS_HASH
from app.db import create_engine
from app.schema import downgrade, upgrade
from tests.audit.support import is_sqlite

AUDIT_REVISION = "3c8e1f2a9b70"
BEFORE_AUDIT = "01d0bdc4c95f"


async def _audit_objects(url: str) -> tuple[set[str], set[str], list[tuple[int, int, str]]]:
    """Audit tables, append-only triggers (and function), and the chain head rows."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            if is_sqlite(url):
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            else:
                query = (
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                    "UNION SELECT proname FROM pg_proc WHERE proname LIKE 'audit%'"
                )
            triggers = {row[0] for row in await conn.execute(text(query))}
            head = []
            if "audit_chain_head" in tables:
                result = await conn.execute(
                    text("SELECT id, last_seq, last_hash FROM audit_chain_head")
                )
                head = [tuple(row) for row in result]
            await conn.rollback()
    finally:
        await engine.dispose()
    return {t for t in tables if t.startswith("audit")}, triggers, head


async def test_the_audit_migration_is_reversible(empty_database_url: str) -> None:
    url = empty_database_url
    if is_sqlite(url):
        expected_triggers = {"audit_event_no_update", "audit_event_no_delete"}
    else:
        expected_triggers = {
            "audit_event_no_update_delete",
            "audit_event_no_truncate",
            "audit_event_append_only",
        }

    assert await asyncio.to_thread(upgrade, url, AUDIT_REVISION) == AUDIT_REVISION
    tables, triggers, head = await _audit_objects(url)
    assert tables == {"audit_event", "audit_chain_head"}
    assert triggers == expected_triggers
    assert head == [(1, 0, GENESIS_HASH)]

    assert await asyncio.to_thread(downgrade, url, BEFORE_AUDIT) == BEFORE_AUDIT
    assert await _audit_objects(url) == (set(), set(), [])

    assert await asyncio.to_thread(upgrade, url) is not None
    tables, triggers, head = await _audit_objects(url)
    assert tables == {"audit_event", "audit_chain_head"}
    assert expected_triggers <= triggers
    assert head == [(1, 0, GENESIS_HASH)]
