"""The permission table: pure data with a few rules that must always hold."""

from __future__ import annotations

from app.permissions import PERMISSIONS, ROLES, WRITE_ACTIONS, is_allowed, refusal_reason

ACCOUNT_ACTIONS = {"account.use", "user.read", "user.manage"}


def test_every_action_names_known_roles_only() -> None:
    for action, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), action
        assert roles, f"{action} allows nobody"


def test_admins_have_no_clinical_powers() -> None:
    clinical = set(PERMISSIONS) - ACCOUNT_ACTIONS
    assert clinical, "the table should hold clinical actions"
    assert not any(is_allowed("admin", action) for action in clinical)


def test_auditors_read_everything_and_change_nothing() -> None:
    for action in PERMISSIONS:
        if action in WRITE_ACTIONS:
            assert not is_allowed("auditor", action), action
        else:
            assert is_allowed("auditor", action), action


def test_unknown_actions_are_refused_for_everyone() -> None:
    assert not any(is_allowed(role, "session.teleport") for role in ROLES)
    assert refusal_reason("nurse", "session.teleport") == "nobody may session.teleport"


def test_refusal_says_who_may() -> None:
    assert refusal_reason("nurse", "user.manage") == (
        "a nurse may not manage user accounts; this is for: administrator"
    )
