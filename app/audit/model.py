"""Who did something, from where, and the two tables that record it.

``audit_event`` is append-only: the database itself refuses UPDATE, DELETE (and on PostgreSQL
TRUNCATE) through triggers created by the migration. ``actor_id`` deliberately has no foreign
key, so the log outlives the accounts it mentions. ``audit_chain_head`` is one row (id 1) naming
the last entry; appends lock it, which serializes them, so the chain never forks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

HEAD_ID = 1


@dataclass(frozen=True)
class Actor:
    """The person (or the system) an audit entry is attributed to."""

    user_id: int | None  # None for the system and the command line
    username: str  # e.g. "nurse1", "system", "cli:root"
    role: str  # nurse | physician | pharmacist | auditor | admin | system | anonymous


@dataclass(frozen=True)
class RequestInfo:
    """Where an action came from, when it came through HTTP."""

    client_addr: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


class AuditEvent(Base):
    """One entry of the hash-chained audit log."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity_entity_id", "entity", "entity_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_username: Mapped[str] = mapped_column(String(150), nullable=False)
    actor_role: Mapped[str] = mapped_column(String(32), nullable=False)
    client_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    entity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entity_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The canonical JSON text exactly as it was hashed; NULL when there was nothing to record.
    before_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    after_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class AuditChainHead(Base):
    """The single row naming the last entry of the chain (``last_seq`` 0: empty chain)."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint(f"id = {HEAD_ID}", name="singleton"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
