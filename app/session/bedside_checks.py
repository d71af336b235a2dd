"""Right bag, right patient, and a second pair of eyes (product-spec: bag labels): the checks
that stand between a due pump start and the pump. Pure.

- A session that scans (`scan_required`) starts only after the patient's wristband and the
  first bag's label were scanned, and switches to a new bag only after that bag's label was.
  A wrong scan is recorded and refused; a physician may stand in for a scan with a reason.
- A session of a high-alert drug (`double_check_required`) needs a second clinician to co-sign
  the pump rate at the start, at each bag change and at the first pump start after a resume.
"""

from __future__ import annotations

from dataclasses import replace

from app.decision import Event, Refused
from app.session.commands import Ctx, OverrideScan, RecordScan
from app.session.record import SessionState
from app.session.transitions import Result, accept, physician_override

SCANNING = frozenset({"ready", "step_due"})


def bag_of(state: SessionState, index: int | None) -> int | None:
    if index is None or index >= len(state.plan.steps):
        return None
    return state.plan.steps[index].solution


def starting_index(state: SessionState) -> int | None:
    """The plan step the next pump start begins: the first at the start, else the one due."""
    if state.status == "ready":
        return 0
    if state.status == "step_due":
        return state.next_step
    return None


def due_bag(state: SessionState) -> int | None:
    """The bag whose label must be scanned before the coming pump start; None: none is due
    (no start is coming, the plan gives doses, or the start stays on the running bag)."""
    index = starting_index(state)
    bag = bag_of(state, index)
    if bag is None:
        return None
    same_bag = state.status == "step_due" and bag_of(state, state.current) == bag
    return None if same_bag else bag


def bag_change(state: SessionState, index: int) -> bool:
    """The pump start of plan step `index` hangs a bag other than the one running."""
    bag = bag_of(state, index)
    if bag is None:
        return False
    return state.status == "ready" or bag_of(state, state.current) != bag


def scans_missing(state: SessionState, index: int) -> list[str]:
    """What must still be scanned before the pump start of plan step `index`."""
    if not state.scan_required:
        return []
    missing = []
    if wristband_due(state):
        missing.append("the patient's wristband")
    bag = bag_of(state, index)
    if bag_change(state, index) and state.bag_checked != bag:
        missing.append(f"the label of bag {bag}")
    return missing


def wristband_due(state: SessionState) -> bool:
    """The start still needs the patient's wristband scanned."""
    return state.scan_required and state.status == "ready" and not state.patient_checked


def double_check_needed(state: SessionState, index: int) -> bool:
    """The pump start of plan step `index` needs a second clinician: a high-alert drug's
    first start, new bag, or first start after a resume."""
    return state.double_check_required and (
        state.status == "ready" or bag_change(state, index) or state.double_check_due
    )


def double_check(
    state: SessionState, index: int, ctx: Ctx, cosigner: int | None
) -> Event | Refused | None:
    """The second clinician's co-signature of the pump rate, when this start needs one."""
    if not double_check_needed(state, index):
        return None
    step = state.plan.steps[index]
    rate = f"{step.rate_ml_h} mL/h" if step.rate_ml_h is not None else "the dose"
    if cosigner is None:
        return Refused(
            f"a high-alert drug: a second clinician must check and co-sign {rate} for step "
            f"{index + 1} before the pump starts"
        )
    if cosigner == ctx.user_id:
        return Refused(
            "the second check must be done by another clinician, not the one confirming",
            "forbidden",
        )
    return Event(
        "double_checked",
        {
            "step": index,
            "solution": step.solution,
            "rate_ml_h": str(step.rate_ml_h) if step.rate_ml_h is not None else None,
            "by": ctx.user_id,
            "cosigner": cosigner,
        },
    )


def checks_before_pump(
    state: SessionState, index: int, ctx: Ctx, cosigner: int | None
) -> tuple[Event, ...] | Refused:
    """Every check of this pump start, or the refusal that names what is missing."""
    missing = scans_missing(state, index)
    if missing:
        return Refused("scan " + " and ".join(missing) + " before the pump starts")
    checked = double_check(state, index, ctx, cosigner)
    if isinstance(checked, Refused):
        return checked
    return (checked,) if checked is not None else ()


def after_pump_start(state: SessionState) -> SessionState:
    """A pump start uses up its scans and its double check."""
    return replace(state, bag_checked=None, double_check_due=False)


def no_scan_now(state: SessionState, kind: str) -> str | None:
    """Why no scan of this kind is taken now, or None."""
    if not state.scan_required:
        return "this session does not check bags by scan"
    if state.status not in SCANNING:
        return f"a scan checks a coming pump start; the session is {state.status}"
    if kind == "bag" and due_bag(state) is None:
        return "no new bag is due: the coming pump start stays on the bag running"
    return None


def record_scan(state: SessionState, command: RecordScan, ctx: Ctx) -> Result:
    refused = no_scan_now(state, command.kind)
    if refused is not None:
        return Refused(refused)
    data = {
        "kind": command.kind,
        "ok": command.ok,
        "method": command.method,
        "scanned": command.scanned,
        "expected": command.expected,
        "bag": command.bag,
        "code": command.code,
    }
    if not command.ok:
        # Recorded, then refused by the shell with the alarm it raises.
        return accept(replace(state, bag_checked=None), Event("scan_refused", data))
    if command.kind == "wristband":
        return accept(replace(state, patient_checked=True), Event("scan_checked", data))
    due = due_bag(state)
    if command.bag != due:
        return Refused(f"bag {due} is due, not bag {command.bag}")
    return accept(replace(state, bag_checked=due), Event("scan_checked", data))


def override_scan(state: SessionState, command: OverrideScan, ctx: Ctx) -> Result:
    if not state.scan_required:
        return Refused("this session does not check bags by scan")
    if state.status not in SCANNING:
        return Refused(f"no scan is due; the session is {state.status}")
    if command.kind == "wristband":
        if state.status != "ready" or state.patient_checked:
            return Refused("no wristband scan is due")
        gate = "the patient's wristband was not scanned"
        new = replace(state, patient_checked=True)
    else:
        due = due_bag(state)
        if due is None or state.bag_checked == due:
            return Refused("no bag scan is due")
        gate = f"the label of bag {due} was not scanned"
        new = replace(state, bag_checked=due)
    override = physician_override(ctx, "go on without the scan", [gate], command.reason)
    if isinstance(override, Refused):
        return override
    assert override is not None
    return accept(
        new,
        override,
        Event("scan_overridden", {"kind": command.kind, "reason": override.data["reason"]}),
    )
