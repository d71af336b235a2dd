"""The patient record: who is in the chair."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime
from app.patients.rules import MRN_MAX, NAME_MAX


class Patient(Base):
    """One patient. The service checks every field; the constraints below are the database's
    own last line of defence against a write that bypassed it."""

    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint("weight_kg >= 0.3 AND weight_kg <= 400", name="weight_kg_range"),
        CheckConstraint(
            "sex IS NULL OR sex IN ('female', 'male', 'other', 'unknown')", name="sex_known"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Medical record number, stored normalised (see app.patients.rules.normalise_mrn).
    mrn: Mapped[str] = mapped_column(String(MRN_MAX), unique=True, nullable=False)
    family_name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    given_name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)
    sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    # Asthma makes spirometry (FEV1 or peak flow) part of every vitals set.
    asthma: Mapped[bool] = mapped_column(Boolean, nullable=False)
    allergy_history: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
