"""The tamper-evident audit log: an append-only, hash-chained record of who did what, when.

Other domains write through ``from app.audit import service as audit_service`` and
``audit_service.append(...)``, inside the transaction of the change being recorded.
"""

from app.audit.chain import ChainReport
from app.audit.model import Actor, AuditChainHead, AuditEvent, RequestInfo

__all__ = ["Actor", "AuditChainHead", "AuditEvent", "ChainReport", "RequestInfo"]
