"""Who may do what: one table, action -> roles allowed. Pure data, read by `require_permission`
on every route and by services for their object checks.

Admins manage accounts and have no clinical powers; auditors read everything and change nothing.
An action missing from the table is refused for everyone (fail closed).
"""

from __future__ import annotations

from typing import Final

ROLES: Final = ("nurse", "physician", "pharmacist", "auditor", "admin")
ROLE_TITLES: Final = {
    "nurse": "Nurse",
    "physician": "Physician",
    "pharmacist": "Pharmacist",
    "auditor": "Auditor",
    "admin": "Administrator",
}

_EVERYONE = frozenset(ROLES)
_CLINICAL_AND_AUDIT = frozenset({"nurse", "physician", "pharmacist", "auditor"})

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    # Any signed-in person: their home page, their own account, signing out.
    "account.use": _EVERYONE,
    # The protocol calculator is clinical reading; admins have no clinical role.
    "protocol.preview": _CLINICAL_AND_AUDIT,
    # Patient records: the clinical team and auditors read them; nurses and physicians, who
    # admit the patient to the chair, register and correct them.
    "patient.read": _CLINICAL_AND_AUDIT,
    "patient.write": frozenset({"nurse", "physician"}),
    # Desensitization sessions: anyone on the team may draft a plan; a physician approves,
    # resumes after a reaction and aborts; a pharmacist verifies the bags; the nurse (or the
    # physician) runs the bedside.
    "session.read": _CLINICAL_AND_AUDIT,
    "session.create": frozenset({"nurse", "physician", "pharmacist"}),
    "session.approve": frozenset({"physician"}),
    "session.verify_bags": frozenset({"pharmacist"}),
    "session.bedside": frozenset({"nurse", "physician"}),
    "session.resume": frozenset({"physician"}),
    "session.override_scan": frozenset({"physician"}),
    "session.thresholds": frozenset({"physician"}),
    "session.abort": frozenset({"physician"}),
    "user.read": frozenset({"admin", "auditor"}),
    "user.manage": frozenset({"admin"}),
    # Review: a session's timeline, report and exports are clinical reading; the audit log
    # (search, integrity check, CSV) is for auditors and physicians, not the bedside.
    "session.export": _CLINICAL_AND_AUDIT,
    "audit.read": frozenset({"auditor", "physician"}),
    # The list of every session, past and present, is for review, not the bedside.
    "session.search": frozenset({"auditor", "physician"}),
}

# What the app does by itself, as the system actor, never a person: a step timer firing. No
# person's role allows it.
SYSTEM_ROLE: Final = "system"
SYSTEM_ACTIONS: Final = frozenset({"session.timer"})

# Actions that change something. Auditors may do none of them; every unsafe HTTP route must
# require one of these (or account.use, for a person's own sign-out).
WRITE_ACTIONS: Final = frozenset(
    {
        "patient.write",
        "session.create",
        "session.approve",
        "session.verify_bags",
        "session.bedside",
        "session.resume",
        "session.override_scan",
        "session.thresholds",
        "session.abort",
        "user.manage",
    }
)

ACTION_TITLES: Final = {
    "account.use": "use Stepwise",
    "session.read": "see desensitization sessions",
    "session.create": "draft a desensitization plan",
    "session.approve": "approve a plan",
    "session.verify_bags": "verify the bags",
    "session.bedside": "run the bedside steps",
    "session.resume": "resume after a reaction",
    "session.override_scan": "go on without a bag or wristband scan",
    "session.thresholds": "change alarm thresholds",
    "session.abort": "abort a session",
    "protocol.preview": "preview protocols",
    "patient.read": "see patients",
    "patient.write": "register and edit patients",
    "user.read": "see user accounts",
    "user.manage": "manage user accounts",
    "session.export": "export session records",
    "audit.read": "search the audit log",
    "session.search": "search all sessions",
}


def roles_allowed(action: str) -> frozenset[str]:
    if action in SYSTEM_ACTIONS:
        return frozenset({SYSTEM_ROLE})
    return PERMISSIONS.get(action, frozenset())


def is_allowed(role: str, action: str) -> bool:
    return role in roles_allowed(action)


def refusal_reason(role: str, action: str) -> str:
    title = ACTION_TITLES.get(action, action)
    allowed = sorted(roles_allowed(action))
    if not allowed:
        return f"nobody may {title}"
    names = ", ".join(ROLE_TITLES[r].lower() for r in allowed)
    return f"a {ROLE_TITLES.get(role, role).lower()} may not {title}; this is for: {names}"
