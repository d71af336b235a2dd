"""Session tables. The session row holds the machine's state (JSON, versioned); the plan,
segments, reactions, vitals, events and timers are rows of their own, written from the same
state in the same transaction, for queries, the timeline and the report."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.db import Base, UTCDateTime


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text: SQLite's NUMERIC would round it through a float."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"DecimalText expects a finite Decimal, got {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class DesensitizationSession(Base):
    __tablename__ = "desensitization_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    drug: Mapped[str] = mapped_column(String(120), nullable=False)
    route: Mapped[str] = mapped_column(String(20), nullable=False)
    target_dose: Mapped[Decimal] = mapped_column(DecimalText(), nullable=False)
    unit: Mapped[str] = mapped_column(String(10), nullable=False)
    template: Mapped[str] = mapped_column(String(20), nullable=False)
    parameters_json: Mapped[str] = mapped_column(Text, nullable=False)
    # Edits of the draft plan, in order: the plan is the template's, rebuilt, then edited.
    plan_edits_json: Mapped[str] = mapped_column(Text, nullable=False, server_default="[]")
    index_reaction_json: Mapped[str] = mapped_column(Text, nullable=False)
    screening_json: Mapped[str] = mapped_column(Text, nullable=False)
    risk_tier: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    current_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state_json: Mapped[str] = mapped_column(Text, nullable=False)
    # The physician's threshold overrides for this session (app.vitals.thresholds.Thresholds).
    thresholds_json: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    # The session's alarm board (app.alarms.logic), changed under the same row lock.
    alarms_json: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        server_default='{"alarms":[],"audio_pause":null,"last_at":null,"next_id":1}',
    )
    # Gap-free per-session event numbering: incremented under the row lock.
    last_event_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Where the patient sits (chair, bay) and who nurses them: on the board, across the room.
    location: Mapped[str | None] = mapped_column(String(60), nullable=True)
    assigned_nurse_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    diluent: Mapped[str] = mapped_column(
        String(120), nullable=False, server_default="0.9 % sodium chloride"
    )
    # The row changed without an event since its last snapshot, so that snapshot is no base for
    # a delta: the next one is kept whole (app.session.snapshots).
    # (No Python default: a row written by an older version of this code holds it too.)
    snapshot_stale: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class SessionPlanStep(Base):
    """The plan as it stands: the approved steps, then any steps added by resumes."""

    __tablename__ = "session_plan_step"
    __table_args__ = (UniqueConstraint("session_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    solution: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_ml_h: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    minutes: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    dose: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    origin: Mapped[str] = mapped_column(String(20), nullable=False)
    of_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StepSegment(Base):
    """A stretch of infusion at one rate from one bag (or one dose given), as it happened."""

    __tablename__ = "step_segment"
    __table_args__ = (UniqueConstraint("session_id", "ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    ordinal: Mapped[int] = mapped_column(Integer, nullable=False)
    step_position: Mapped[int] = mapped_column(Integer, nullable=False)
    solution: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_ml_h: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    volume_ml: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    dose: Mapped[Decimal] = mapped_column(DecimalText(), nullable=False)


class SessionReaction(Base):
    __tablename__ = "session_reaction"
    __table_args__ = (UniqueConstraint("session_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    onset_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    symptoms_json: Mapped[str] = mapped_column(Text, nullable=False)
    at_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    brown_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ctcae_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    treatments_json: Mapped[str] = mapped_column(Text, nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    findings_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    closed_by_abort: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class VitalsSet(Base):
    """One reading. An amendment is a new row (version + 1) that names the row it corrects;
    nothing is overwritten."""

    __tablename__ = "vitals_set"
    __table_args__ = (
        Index("ix_vitals_set_session_id_recorded_at", "session_id", "recorded_at"),
        # The views' window (the newest sets by id) and the newest set's id, whatever the history.
        Index("ix_vitals_set_session_id_id", "session_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    # The first version's id; empty on a first version (it is its own reading).
    reading_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("vitals_set.id"), nullable=True)
    amendment_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    recorded_by: Mapped[int] = mapped_column(Integer, nullable=False)
    session_status: Mapped[str] = mapped_column(String(20), nullable=False)
    step_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baseline: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    values_json: Mapped[str] = mapped_column(Text, nullable=False)
    within_limits: Mapped[bool] = mapped_column(Boolean, nullable=False)


class SessionEvent(Base):
    __tablename__ = "session_event"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    data_json: Mapped[str] = mapped_column(Text, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_role: Mapped[str] = mapped_column(String(20), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


# The kinds of stored deadline: a step's clock, an unacknowledged alarm's escalation, and the
# next look at a session's technical alarms.
TimerKind = Literal["step", "escalation", "alarm_check"]
TIMER_KINDS: tuple[TimerKind, ...] = ("step", "escalation", "alarm_check")


class Timer(Base):
    """A stored deadline of a session. Fired by compare-and-set (pending -> fired) in the
    transaction of the change it causes; replaced timers are cancelled, never deleted. A step
    timer carries its generation, an escalation its alarm's number."""

    __tablename__ = "timer"
    __table_args__ = (
        UniqueConstraint("session_id", "generation", name="uq_timer_session_id_generation"),
        UniqueConstraint("session_id", "alarm_number", name="uq_timer_session_id_alarm_number"),
        CheckConstraint(
            "kind = 'step' AND generation IS NOT NULL AND alarm_number IS NULL"
            " OR kind = 'escalation' AND alarm_number IS NOT NULL AND generation IS NULL"
            " OR kind = 'alarm_check' AND generation IS NULL AND alarm_number IS NULL",
            name="kind_keys",
        ),
        Index("ix_timer_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alarm_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)  # pending|fired|cancelled
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    late_seconds: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)


class IdempotentAnswer(Base):
    """The first answer to a command sent with an Idempotency-Key, replayed for resends."""

    __tablename__ = "idempotent_answer"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    body_json: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


SNAPSHOT_KINDS = "kind = 'full' AND base_seq IS NULL OR kind = 'delta' AND base_seq IS NOT NULL"


class SessionSnapshot(Base):
    """What the session was after each change, keyed by its last event: the timeline rebuilds
    the bedside view as it was at any event from these (and the vitals up to then). Written in
    the transaction of the change; never updated. A full one keeps the three texts whole; a
    delta keeps how the snapshot at `base_seq` (the one before it) became this one
    (app.session.snapshot_delta)."""

    __tablename__ = "session_snapshot"
    __table_args__ = (CheckConstraint(SNAPSHOT_KINDS, name="kind_base"),)

    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # last event seq after it
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    state_json: Mapped[str] = mapped_column(Text, nullable=False)
    alarms_json: Mapped[str] = mapped_column(Text, nullable=False)
    thresholds_json: Mapped[str] = mapped_column(Text, nullable=False)
    vitals_upto: Mapped[int] = mapped_column(Integer, nullable=False)  # highest vitals id then
    kind: Mapped[str] = mapped_column(String(10), nullable=False, server_default="full")
    base_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BedsidePresence(Base):
    """One process's bedside screens of one session, and when it last said they were open (at
    connect, every few seconds while open, and when the last one closes). A session nobody has
    shown for minutes while its vitals are overdue has lost contact."""

    __tablename__ = "bedside_presence"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("desensitization_session.id"), primary_key=True
    )
    process: Mapped[str] = mapped_column(String(80), primary_key=True)
    screens: Mapped[int] = mapped_column(Integer, nullable=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)  # session clock
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)  # wall clock
