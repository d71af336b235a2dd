"""Accounts, server-side login sessions, failed-login records and sign-in throttles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(120), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    # Demo accounts (seeded by `make run` in development) never sign in in production.
    is_demo: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class LoginSession(Base):
    """One signed-in browser. Only a hash of its token is stored: a copy of this table does not
    let anyone sign in."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    client_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class LoginFailure(Base):
    """A failed sign-in, kept for throttling. The user name is stored as a keyed hash: people
    type passwords into the user name field."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_username_key_client_addr_at", "username_key", "client_addr", "at"),
        Index("ix_login_failure_client_addr_at", "client_addr", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username_key: Mapped[str] = mapped_column(String(64), nullable=False)
    client_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class LoginThrottle(Base):
    """The refusals of one open sign-in throttle: of one user name (keyed like LoginFailure)
    from one address, or of one address for any name (`username_key` "*"). The first refusal
    is audited; the others are only counted here, and reported in one audit entry when the
    throttle ends, so a flood of refused attempts does not queue on the audit log."""

    __tablename__ = "login_throttle"
    __table_args__ = (UniqueConstraint("username_key", "client_addr"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username_key: Mapped[str] = mapped_column(String(64), nullable=False)
    client_addr: Mapped[str] = mapped_column(String(64), nullable=False)  # "" when unknown
    # Named in the summary entry, when the user name is an account's.
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    refused: Mapped[int] = mapped_column(Integer, nullable=False)
