"""Bag labels as printed: one row per label, reprints included. A reprint voids the label it
replaces, so a bag has one label that scans at any time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class BagLabel(Base):
    __tablename__ = "bag_label"
    __table_args__ = (
        UniqueConstraint("code"),
        UniqueConstraint("session_id", "bag", "copy"),
        Index("ix_bag_label_session_id_bag", "session_id", "bag"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    bag: Mapped[int] = mapped_column(Integer, nullable=False)  # the plan's bag number
    code: Mapped[str] = mapped_column(String(32), nullable=False)  # app.labels.code, with check
    copy: Mapped[int] = mapped_column(Integer, nullable=False)  # 1: the first print; 2..: reprints
    printed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    printed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    prepared_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    prepared_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
