"""Every ORM model, imported in one place so Base.metadata is complete for Alembic's env and for
the test that compares the models with the migrations."""

from app.alarms.models import SessionAlarm
from app.audit.model import AuditChainHead, AuditEvent
from app.auth.models import LoginFailure, LoginSession, User
from app.db import Installation
from app.labels.models import BagLabel
from app.patients.models import Patient
from app.session.models import (
    DesensitizationSession,
    IdempotentAnswer,
    SessionEvent,
    SessionPlanStep,
    SessionReaction,
    SessionSnapshot,
    StepSegment,
    Timer,
    VitalsSet,
)

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "BagLabel",
    "DesensitizationSession",
    "IdempotentAnswer",
    "Installation",
    "LoginFailure",
    "LoginSession",
    "Patient",
    "SessionAlarm",
    "SessionEvent",
    "SessionPlanStep",
    "SessionReaction",
    "SessionSnapshot",
    "StepSegment",
    "Timer",
    "User",
    "VitalsSet",
]
