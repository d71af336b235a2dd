"""The session state machine's commands: for each one, its name (in events, audit actions and
URLs), the permission it needs (app.permissions, the one table of who may do what) and the
decision that answers it. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.permissions import roles_allowed
from app.session import bedside_checks, infusion, preparation, reactions
from app.session.commands import (
    Abort,
    AmendLatestVitals,
    Approve,
    ChecklistItem,
    Command,
    Complete,
    ConfirmStep,
    Ctx,
    EditPlan,
    OverrideScan,
    Pause,
    RecordScan,
    RecordTreatment,
    RecordVitals,
    ReportReaction,
    ResolveReaction,
    Resume,
    Start,
    TimerFired,
    VerifyBags,
)
from app.session.record import SessionState
from app.session.transitions import Result


@dataclass(frozen=True)
class CommandEntry:
    name: str
    permission: str
    # The decision for this command's type: (state, command, ctx) -> Accepted | Refused.
    decide: Callable[[SessionState, Any, Ctx], Result]

    @property
    def roles(self) -> frozenset[str]:
        return roles_allowed(self.permission)


COMMANDS: dict[type, CommandEntry] = {
    Approve: CommandEntry("approve", "session.approve", preparation.approve),
    VerifyBags: CommandEntry("verify-bags", "session.verify_bags", preparation.verify_bags),
    EditPlan: CommandEntry("edit-plan", "session.create", preparation.edit_plan),
    ChecklistItem: CommandEntry("checklist", "session.bedside", preparation.checklist),
    RecordVitals: CommandEntry("vitals", "session.bedside", infusion.record_vitals),
    AmendLatestVitals: CommandEntry(
        "amend-vitals", "session.bedside", infusion.amend_latest_vitals
    ),
    Start: CommandEntry("start", "session.bedside", preparation.start),
    ConfirmStep: CommandEntry("confirm-step", "session.bedside", infusion.confirm_step),
    RecordScan: CommandEntry("scan", "session.bedside", bedside_checks.record_scan),
    OverrideScan: CommandEntry(
        "override-scan", "session.override_scan", bedside_checks.override_scan
    ),
    Pause: CommandEntry("pause", "session.bedside", infusion.pause),
    ReportReaction: CommandEntry("report-reaction", "session.bedside", reactions.report_reaction),
    RecordTreatment: CommandEntry(
        "record-treatment", "session.bedside", reactions.record_treatment
    ),
    ResolveReaction: CommandEntry(
        "resolve-reaction", "session.bedside", reactions.resolve_reaction
    ),
    Resume: CommandEntry("resume", "session.resume", reactions.resume),
    TimerFired: CommandEntry("timer", "session.timer", infusion.timer_fired),
    Complete: CommandEntry("complete", "session.bedside", infusion.complete),
    Abort: CommandEntry("abort", "session.abort", infusion.abort),
}


def entry_of(command: Command) -> CommandEntry:
    return COMMANDS[type(command)]
