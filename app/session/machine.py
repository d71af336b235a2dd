"""The desensitization session as a pure state machine (product-spec §3).

`decide(state, command, ctx) -> Accepted | Refused`. No I/O, no clock: the time comes in the
context. An accepted command returns the new state, the events to record and what to do with the
step timer; a refused one returns the reason and the state is untouched.

This module decides what holds for every command (a finished session takes none, each is for
some roles, time never runs back) and hands the rest to the command's own decision, found in
app.session.state. The machine's vocabulary lives in cohesive modules (record: the state;
commands; preparation, infusion, reactions: the decisions; replan: re-planning on resume) and is
named here once for the shell, which imports the machine as one thing.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import localcontext

from app.decision import Accepted, Event, Refused
from app.session import ledger as L
from app.session.commands import (
    MAX_STRETCH,
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
from app.session.record import (
    OUTCOMES,
    TERMINAL,
    Premedication,
    Reaction,
    SessionState,
    Treatment,
    delivered,
    new_session,
    session_start,
    vitals_gate_met,
)
from app.session.replan import intermediate_steps
from app.session.state import entry_of
from app.session.transitions import Result

__all__ = [
    "MAX_STRETCH",
    "OUTCOMES",
    "TERMINAL",
    "Abort",
    "Accepted",
    "AmendLatestVitals",
    "Approve",
    "ChecklistItem",
    "Command",
    "Complete",
    "ConfirmStep",
    "Ctx",
    "EditPlan",
    "Event",
    "OverrideScan",
    "Pause",
    "Premedication",
    "Reaction",
    "RecordScan",
    "RecordTreatment",
    "RecordVitals",
    "Refused",
    "ReportReaction",
    "ResolveReaction",
    "Result",
    "Resume",
    "SessionState",
    "Start",
    "TimerFired",
    "Treatment",
    "VerifyBags",
    "decide",
    "delivered",
    "intermediate_steps",
    "new_session",
    "session_start",
    "vitals_gate_met",
]


def decide(state: SessionState, command: Command, ctx: Ctx) -> Result:
    entry = entry_of(command)
    if state.status in TERMINAL:
        return Refused(f"the session is {state.status}; nothing more can be done", "state")
    if ctx.role not in entry.roles:
        allowed = " or ".join(sorted(entry.roles))
        return Refused(f"{entry.name} is for the {allowed}, not the {ctx.role}", "forbidden")
    if state.last_at is not None and ctx.now < state.last_at:
        return Refused(
            "the time given is earlier than the last entry; time never runs back", "invalid"
        )
    with localcontext() as arithmetic:
        arithmetic.prec = L.PRECISION  # the ledger's exact arithmetic, in every decision
        result = entry.decide(state, command, ctx)
    if isinstance(result, Refused):
        return result
    new_state = replace(result.state, version=state.version + 1, last_at=ctx.now)
    return replace(result, state=new_state)
