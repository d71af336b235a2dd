"""A reaction: it is reported (the infusion stops), treated and resolved, and a physician
resumes with a new plan for the rest (app.session.replan)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.decision import Event, Refused
from app.session.commands import Ctx, RecordTreatment, ReportReaction, ResolveReaction, Resume
from app.session.record import Reaction, SessionState, Treatment, session_start, vitals_gate_met
from app.session.replan import replan
from app.session.transitions import (
    Result,
    accept,
    pause_infusion,
    physician_override,
    replace_reaction,
    required_text,
    start_observation,
    user_time,
)


def report_reaction(state: SessionState, command: ReportReaction, ctx: Ctx) -> Result:
    if not command.symptoms and not command.findings:
        return Refused("name at least one symptom", "invalid")
    if state.open_reaction is not None:
        return Refused("a reaction is already open: add treatments to it or resolve it")
    if state.status == "paused":
        paused = state
    else:
        stopped = pause_infusion(state, ctx, command.stopped_at)
        if isinstance(stopped, Refused):
            return stopped
        paused = stopped
    onset = user_time(command.onset_at, ctx, session_start(state), "the onset time")
    if isinstance(onset, Refused):
        return onset
    reaction = Reaction(
        number=len(state.reactions) + 1,
        onset_at=onset,
        symptoms=tuple(command.symptoms),
        at_step=state.current,
        note=command.note.strip()[:2000],
        findings=tuple(command.findings),
    )
    new = replace(
        paused,
        reactions=(*paused.reactions, reaction),
        pause_had_reaction=True,
        pause_reason=paused.pause_reason or "reaction",
    )
    return accept(
        new,
        Event(
            "reaction_reported",
            {
                "reaction": reaction.number,
                "symptoms": list(reaction.symptoms),
                "findings": list(reaction.findings),
                "at_step": reaction.at_step,
                "onset_at": onset.isoformat(),
                "message": "Stop the infusion now.",
            },
        ),
        timer=state.status != "paused",
    )


def record_treatment(state: SessionState, command: RecordTreatment, ctx: Ctx) -> Result:
    reaction = state.open_reaction
    if reaction is None:
        return Refused("treatments are recorded against an open reaction; there is none")
    fields = {}
    for value, what, limit in (
        (command.drug, "drug", 120),
        (command.dose, "dose", 60),
        (command.route, "route", 40),
    ):
        cleaned = required_text(value, f"the treatment {what}", limit)
        if isinstance(cleaned, Refused):
            return cleaned
        fields[what] = cleaned
    given_at = user_time(command.given_at, ctx, reaction.onset_at, "the time it was given")
    if isinstance(given_at, Refused):
        return given_at
    treatment = Treatment(fields["drug"], fields["dose"], fields["route"], given_at)
    updated = replace(reaction, treatments=(*reaction.treatments, treatment))
    return accept(
        replace_reaction(state, updated),
        Event(
            "treatment_recorded",
            {"reaction": reaction.number, **fields, "given_at": given_at.isoformat()},
        ),
    )


def resolve_reaction(state: SessionState, command: ResolveReaction, ctx: Ctx) -> Result:
    reaction = state.open_reaction
    if reaction is None:
        return Refused("there is no open reaction to resolve")
    if command.brown_grade not in (1, 2, 3):
        return Refused("the Brown grade must be 1, 2 or 3", "invalid")
    if command.ctcae_grade is not None and command.ctcae_grade not in (1, 2, 3, 4):
        return Refused("the CTCAE grade must be 1 to 4", "invalid")
    resolved_at = user_time(command.resolved_at, ctx, reaction.onset_at, "the resolution time")
    if isinstance(resolved_at, Refused):
        return resolved_at
    updated = replace(
        reaction,
        resolved_at=resolved_at,
        brown_grade=command.brown_grade,
        ctcae_grade=command.ctcae_grade,
        note=(reaction.note + "\n" + command.note.strip()).strip()[:4000],
        outcome="resolved",
    )
    new = replace(replace_reaction(state, updated), vitals_gate=state.vitals_count)
    return accept(
        new,
        Event(
            "reaction_resolved",
            {
                "reaction": reaction.number,
                "brown_grade": command.brown_grade,
                "ctcae_grade": command.ctcae_grade,
                "resolved_at": resolved_at.isoformat(),
            },
        ),
    )


def _resume_gates(state: SessionState, command: Resume) -> list[str]:
    """What stands in the way of this resume unless a physician overrides it."""
    gates = []
    if not state.last_vitals_within_limits:
        found = "; ".join(state.last_vitals_findings)
        gates.append(
            "the fresh vitals breach a MEDIUM or HIGH limit" + (f" ({found})" if found else "")
        )
    last = state.reactions[-1] if state.reactions and state.pause_had_reaction else None
    if (
        state.paused_from != "observing"
        and last is not None
        and last.brown_grade == 3
        and command.resume_from in ("finish", "repeat")
    ):
        gates.append(
            f"after a Brown grade 3 reaction, {command.resume_from} goes back to the dose "
            "that reacted (step back instead)"
        )
    return gates


def resume(state: SessionState, command: Resume, ctx: Ctx) -> Result:
    if state.status != "paused":
        return Refused(f"only a paused session can be resumed; it is {state.status}")
    if state.open_reaction is not None:
        return Refused("the reaction must be marked resolved before resuming")
    if not vitals_gate_met(state):
        return Refused("record fresh vitals before resuming")
    override = physician_override(
        ctx, "resume", _resume_gates(state, command), command.override_reason
    )
    if isinstance(override, Refused):
        return override
    overridden = (override,) if override is not None else ()
    if state.paused_from == "observing":
        if (
            command.resume_from,
            command.stretch,
            command.insert_intermediate,
            command.cap_rate_ml_h,
        ) != ("repeat", Decimal(1), 0, None):
            return Refused(
                "the infusion is over; resuming continues the observation only", "invalid"
            )
        if state.observation_done:
            new = replace(
                state, status="observing", paused_from=None, deadline=None, pause_had_reaction=False
            )
            return accept(new, *overridden, Event("resumed", {"to": "observing"}))
        new = start_observation(state, ctx.now, state.observation_left or Decimal(0))
        new = replace(new, paused_from=None, pause_had_reaction=False)
        return accept(new, *overridden, Event("resumed", {"to": "observing"}), timer=True)
    plan = replan(state, command)
    if isinstance(plan, Refused):
        return plan
    new_plan, first = plan
    new = replace(
        state,
        plan=new_plan,
        status="step_due",
        next_step=first,
        due_since=ctx.now,
        double_check_due=state.double_check_required,
        paused_from=None,
        vitals_gate=None,
        pause_had_reaction=False,
    )
    return accept(
        new,
        *overridden,
        Event(
            "resumed",
            {
                "resume_from": command.resume_from,
                "stretch": str(command.stretch),
                "insert_intermediate": command.insert_intermediate,
                "cap_rate_ml_h": str(command.cap_rate_ml_h) if command.cap_rate_ml_h else None,
                "next_step": first,
                "steps": len(new_plan.steps),
                "reason": (command.override_reason or "").strip()[:2000] or None,
            },
        ),
    )
