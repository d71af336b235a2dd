"""Appending to the audit log and verifying its hash chain.

``append`` writes inside the caller's transaction and only flushes: the entry commits or rolls
back together with the change it records; ``append_and_commit`` is for an entry that is the
whole transaction. Appends are serialized on the chain head row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every write transaction already holds the
database write lock from ``BEGIN IMMEDIATE``, see app.db). A session opened with
``DEFERRED_BEGIN`` must not append: its read-then-write would have to upgrade its lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import CursorResult, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from app.audit.chain import (
    ChainReport,
    ChainWalker,
    broken_report,
    canonical_json,
    entry_hash,
    secret_keys,
)
from app.audit.model import HEAD_ID, Actor, AuditChainHead, AuditEvent, RequestInfo
from app.clock import require_aware
from app.db import DEFERRED_BEGIN, backend_name, create_engine, session_factory

# The browser identification (UA) string is chosen by the client: keep a bounded prefix
# rather than refuse the entry.
UA_MAX_CHARS = 512
VERIFY_BATCH_SIZE = 500

_event = cast(Table, AuditEvent.__table__)
_head = cast(Table, AuditChainHead.__table__)


class AuditChainHeadMissing(RuntimeError):
    """The ``audit_chain_head`` row is gone: the database is not migrated, or was tampered with."""


def _text(name: str, value: object, max_chars: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"audit {name} is required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"audit {name} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"audit {name} must not be blank")
    if len(value) > max_chars:
        raise ValueError(f"audit {name} is longer than {max_chars} characters")
    if "\x00" in value:
        raise ValueError(f"audit {name} contains a NUL character")
    return str.__str__(value)


def _state_json(name: str, state: Mapping[str, Any] | None) -> str | None:
    if state is None:
        return None
    if not isinstance(state, Mapping):
        raise ValueError(f"audit {name} must be a mapping, got {type(state).__name__}")
    leaks = secret_keys(state, name)
    if leaks:
        # Passwords, tokens and secrets never reach the log, not even hashed.
        raise ValueError(f"audit {name} has key(s) that look secret: {', '.join(leaks)}")
    return canonical_json(state)


def _entry_fields(
    *,
    at: datetime,
    actor: Actor,
    action: str,
    entity: str | None,
    entity_id: str | int | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None,
    request: RequestInfo | None,
) -> dict[str, Any]:
    """The validated columns of a new entry, all but ``seq``, ``prev_hash`` and ``hash``."""
    if not isinstance(at, datetime):
        raise ValueError(f"audit time must be a datetime, got {type(at).__name__}")
    if not isinstance(actor, Actor):
        raise ValueError(f"audit actor must be an Actor, got {type(actor).__name__}")
    if actor.user_id is not None and (
        not isinstance(actor.user_id, int) or isinstance(actor.user_id, bool)
    ):
        raise ValueError("audit actor user_id must be an integer or None")
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        entity_id = str(entity_id)
    request = request or RequestInfo()
    user_agent = request.user_agent
    if isinstance(user_agent, str):
        user_agent = user_agent[:UA_MAX_CHARS]
    return {
        "occurred_at": require_aware(at, "audit time"),
        "actor_id": None if actor.user_id is None else int(actor.user_id),
        "actor_username": _text("actor username", actor.username, 150, required=True),
        "actor_role": _text("actor role", actor.role, 32, required=True),
        "client_addr": _text("client address", request.client_addr, 64),
        "user_agent": _text("user_agent", user_agent, UA_MAX_CHARS),
        "action": _text("action", action, 64, required=True),
        "entity": _text("entity", entity, 64),
        "entity_id": _text("entity id", entity_id, 255),
        "before_json": _state_json("before", before),
        "after_json": _state_json("after", after),
        "reason": _text("reason", reason, 10_000),
        "request_id": _text("request id", request.request_id, 128),
    }


async def _read_head(session: AsyncSession, *, lock: bool = False) -> tuple[int, str] | None:
    query = select(_head.c.last_seq, _head.c.last_hash).where(_head.c.id == HEAD_ID)
    if lock:
        query = query.with_for_update()  # rendered on PostgreSQL, ignored by SQLite
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row.last_seq, row.last_hash)


async def append(
    session: AsyncSession,
    *,
    at: datetime,
    actor: Actor,
    action: str,
    entity: str | None = None,
    entity_id: str | int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    request: RequestInfo | None = None,
) -> AuditEvent:
    """Append one entry inside the caller's transaction (flushed, never committed).

    ``at`` must be timezone-aware (it is stored in UTC). ``before``/``after`` are stored as
    canonical JSON; a key containing "password", "secret" or "token" at any depth is refused.
    Invalid input raises ``ValueError`` before anything is written.
    """
    fields = _entry_fields(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
        request=request,
    )
    # The head as this process last moved it, moved on only if it is still exactly that
    # (seq and hash): one statement instead of a locked read and a write. Anything else (another
    # process appended, or a transaction that moved it rolled back) reads it under the lock.
    cached = _last_heads.get(_engine_of(session))
    if cached is None or not await _move_head(session, cached, fields):
        head = await _read_head(session, lock=True)
        if head is None:
            raise AuditChainHeadMissing(
                "the audit chain head row is missing; run `stepwise db upgrade` on a new database"
            )
        if not await _move_head(session, head, fields):
            raise RuntimeError(
                "the audit chain head moved during an append; appends are not locked"
            )
    event = AuditEvent(**fields)
    session.add(event)
    return event


# Engine -> the (seq, hash) this process last wrote to the chain head. A hint only: the head is
# moved from it only when the stored head still equals it.
_last_heads: WeakKeyDictionary[Any, tuple[int, str]] = WeakKeyDictionary()


def _engine_of(session: AsyncSession) -> Any:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)


async def _move_head(session: AsyncSession, head: tuple[int, str], fields: dict[str, Any]) -> bool:
    """Chain the entry on `head` and move the stored head to it, if the stored head is `head`."""
    last_seq, last_hash = head
    fields["seq"], fields["prev_hash"] = last_seq + 1, last_hash
    fields["hash"] = entry_hash(fields)
    moved = await session.execute(
        update(_head)
        .where(_head.c.id == HEAD_ID, _head.c.last_seq == last_seq, _head.c.last_hash == last_hash)
        .values(last_seq=fields["seq"], last_hash=fields["hash"])
    )
    if cast(CursorResult[Any], moved).rowcount != 1:
        return False
    _last_heads[_engine_of(session)] = (fields["seq"], fields["hash"])
    return True


async def append_and_commit(
    session: AsyncSession,
    *,
    at: datetime,
    actor: Actor,
    action: str,
    entity: str | None = None,
    entity_id: str | int | None = None,
    after: Mapping[str, Any] | None = None,
    request: RequestInfo | None = None,
) -> None:
    """Append one entry that records no change of its own (a verification of the chain, an
    export) and commit it in the caller's otherwise empty transaction, so that it is in the
    chain before the answer it records is sent."""
    await append(
        session,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        after=after,
        request=request,
    )
    await session.commit()


async def verify(session: AsyncSession, *, batch_size: int = VERIFY_BATCH_SIZE) -> ChainReport:
    """Walk the whole chain in ``seq`` order, in batches, and report the first broken entry.

    Only entries up to the chain head read at the start are walked, so appends committed
    meanwhile neither disturb nor fail the walk; rows beyond the head at the end are a break.
    """
    head = await _read_head(session)
    if head is None:
        return broken_report(None, "the chain head row is missing", entries=0, last_seq=0)
    head_seq, head_hash = head

    walker = ChainWalker()
    query = select(_event).where(_event.c.seq <= head_seq).order_by(_event.c.seq).limit(batch_size)
    after: int | None = None
    while True:
        batch_query = query if after is None else query.where(_event.c.seq > after)
        rows = (await session.execute(batch_query)).mappings().all()
        if not rows or not walker.feed_all(rows):
            break
        after = rows[-1]["seq"]
    report = walker.finish(head_seq, head_hash)
    if not report.ok:
        return report

    # Entries beyond the head are either appends committed since it was read, which moved the
    # head too, or rows slipped in behind the chain's back. Reading the newest seq before the
    # head again tells the two apart on every isolation level.
    newest = (await session.execute(select(func.max(_event.c.seq)))).scalar_one()
    if newest is not None and newest > head_seq:
        current = await _read_head(session)
        current_seq = head_seq if current is None else current[0]
        if current is None or newest > current_seq:
            stray = (
                await session.execute(
                    select(func.min(_event.c.seq)).where(_event.c.seq > current_seq)
                )
            ).scalar_one()
            return broken_report(
                stray,
                f"not covered by the chain head (at seq {current_seq})",
                entries=report.entries,
                last_seq=report.last_seq,
            )
    return report


async def verify_database(url: str) -> ChainReport:
    """Walk the whole chain of the database at `url`, on a connection of its own (the command
    line's `audit verify`, and a restore's check)."""
    engine = create_engine(url, poolclass=NullPool)
    # A read-only walk: on SQLite a deferred BEGIN leaves writers alone while the WAL snapshot
    # keeps the walk consistent; on PostgreSQL REPEATABLE READ gives the same snapshot.
    if backend_name(url) == "sqlite":
        reader = engine.execution_options(**DEFERRED_BEGIN)
    else:
        reader = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        async with session_factory(reader)() as session:
            report = await verify(session)
            await session.rollback()
            return report
    finally:
        await engine.dispose()
