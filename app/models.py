"""Every ORM model, imported in one place so Base.metadata is complete for Alembic's env and for
the test that compares the models with the migrations."""

from app.audit.model import AuditChainHead, AuditEvent
from app.auth.models import LoginFailure, LoginSession, User
from app.db import Installation
from app.patients.models import Patient

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "Installation",
    "LoginFailure",
    "LoginSession",
    "Patient",
    "User",
]
