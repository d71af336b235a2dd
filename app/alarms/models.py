"""Alarm rows: a projection of the session's alarm board, for queries and the report. Their
escalation deadlines are timers (app.session.models.Timer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class SessionAlarm(Base):
    __tablename__ = "session_alarm"
    __table_args__ = (
        UniqueConstraint("session_id", "number"),
        # The lost-contact sweep looks up open alarms by condition every few seconds.
        Index("ix_session_alarm_condition_cleared_at", "condition", "cleared_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)  # the board's alarm id
    priority: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    condition: Mapped[str] = mapped_column(String(60), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    value: Mapped[str] = mapped_column(String(200), nullable=False)
    limit_in_force: Mapped[str] = mapped_column(String(200), nullable=False)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    acknowledged_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    audio_paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
