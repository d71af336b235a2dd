"""Before the first step: the plan is edited, approved and its bags verified, the checklist is
filled, and the session starts."""

from __future__ import annotations

from dataclasses import replace

from app.decision import Event, Refused
from app.session.bedside_checks import after_pump_start, checks_before_pump
from app.session.commands import Approve, ChecklistItem, Ctx, EditPlan, Start, VerifyBags
from app.session.record import SessionState
from app.session.transitions import (
    Result,
    accept,
    physician_override,
    required_text,
    start_step,
)


def approve(state: SessionState, _: Approve, ctx: Ctx) -> Result:
    if state.status != "planned":
        return Refused(f"only a planned session can be approved; it is {state.status}")
    if state.approved_by is not None:
        return Refused("the plan is already approved")
    new = replace(state, approved_by=ctx.user_id, approved_at=ctx.now)
    if not state.pharmacist_signoff:
        new = replace(new, status="ready")
    return accept(new, Event("approved", {"status": new.status}))


def edit_plan(state: SessionState, command: EditPlan, ctx: Ctx) -> Result:
    if state.status != "planned" or state.approved_by is not None:
        return Refused("the plan is frozen once approved; only a draft can be edited")
    new = replace(state, plan=command.plan, approved=command.plan)
    return accept(
        new, Event("plan_edited", {"edit": command.summary, "steps": len(command.plan.steps)})
    )


def verify_bags(state: SessionState, _: VerifyBags, ctx: Ctx) -> Result:
    if state.status != "planned":
        return Refused(f"bags are verified while the session is planned; it is {state.status}")
    if state.approved_by is None:
        return Refused("the plan must be approved by a physician before the bags are verified")
    if not state.pharmacist_signoff:
        return Refused("this session needs no pharmacist sign-off")
    new = replace(state, bags_verified_by=ctx.user_id, bags_verified_at=ctx.now, status="ready")
    return accept(new, Event("bags_verified", {"status": "ready"}))


def checklist(state: SessionState, command: ChecklistItem, ctx: Ctx) -> Result:
    if state.status != "ready":
        return Refused(f"the checklist is filled while the session is ready; it is {state.status}")
    checklist = state.checklist
    if command.item == "consent":
        checklist = replace(checklist, consent=command.done)
    elif command.item == "rescue_kit":
        checklist = replace(checklist, rescue_kit=command.done)
    elif command.item == "premedications":
        if command.premedications:
            for premed in command.premedications:
                if premed.given_at.tzinfo is None:
                    return Refused("a premedication time needs a time zone", "invalid")
                if premed.given_at > ctx.now:
                    return Refused("a premedication cannot be given in the future", "invalid")
                for value, what in (
                    (premed.drug, "drug"),
                    (premed.dose, "dose"),
                    (premed.route, "route"),
                ):
                    if isinstance(required_text(value, f"premedication {what}", 120), Refused):
                        return Refused(f"each premedication needs a {what}", "invalid")
            checklist = replace(
                checklist, premedications=command.premedications, premedication_done=True
            )
        elif command.done:
            reason = required_text(command.none_reason, "the reason no premedication is needed")
            if isinstance(reason, Refused):
                return reason
            checklist = replace(checklist, premedications=(), premedication_done=True)
        else:
            checklist = replace(checklist, premedications=(), premedication_done=False)
    else:  # pragma: no cover - the type forbids it
        return Refused(f"unknown checklist item {command.item!r}", "invalid")
    return accept(
        replace(state, checklist=checklist),
        Event(
            "checklist",
            {"item": command.item, "done": command.done, "missing": checklist.missing()},
        ),
    )


def start(state: SessionState, command: Start, ctx: Ctx) -> Result:
    if state.status != "ready":
        return Refused(f"only a ready session can start; it is {state.status}")
    missing = state.checklist.missing()
    if missing:
        return Refused("before the start: " + ", ".join(missing) + " still missing")
    gates = []
    if state.checklist.baseline_high:
        gates.append(
            "the baseline vitals meet HIGH criteria ("
            + "; ".join(state.checklist.baseline_high)
            + ")"
        )
    override = physician_override(ctx, "start", gates, command.override_reason)
    if isinstance(override, Refused):
        return override
    checks = checks_before_pump(state, 0, ctx, command.cosigner)
    if isinstance(checks, Refused):
        return checks
    new, event = start_step(after_pump_start(state), 0, ctx.now)
    overridden = (override,) if override is not None else ()
    return accept(new, *overridden, *checks, Event("started"), event, timer=True)
