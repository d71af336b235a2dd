"""Re-planning on resume after a reaction (product-spec §3): the steps after the interrupted one,
finished, repeated or stepped back, slower (stretched from the approved times, with intermediate
doses, a rate cap), checked against the target and the bags. Pure."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, localcontext

from app.decision import Refused
from app.session import ledger as L
from app.session.commands import MAX_INTERMEDIATE, MAX_STRETCH, PUMP_RATE_STEP, Resume
from app.session.plan import Plan, PlanStep, StepOrigin
from app.session.record import SessionState

VOLUME_TOLERANCE_ML = Decimal("1e-9")


def replan(state: SessionState, command: Resume) -> tuple[Plan, int] | Refused:
    """New steps after the interrupted one; returns the plan and the index to start from."""
    plan = state.plan
    base = state.approved or plan
    assert state.current is not None
    k = state.current
    if not (Decimal(1) <= command.stretch <= MAX_STRETCH):
        return Refused(f"stretch must be between 1 and {MAX_STRETCH}", "invalid")
    if not 0 <= command.insert_intermediate <= MAX_INTERMEDIATE:
        return Refused(f"insert between 0 and {MAX_INTERMEDIATE} intermediate steps", "invalid")
    if command.cap_rate_ml_h is not None and (
        plan.kind != "infusion" or command.cap_rate_ml_h < PUMP_RATE_STEP
    ):
        return Refused(
            f"a rate cap applies to infusions and is at least {PUMP_RATE_STEP} mL/h", "invalid"
        )
    back = {"finish": 0, "repeat": 0, "back1": 1, "back2": 2}[command.resume_from]
    reacted = original_step(plan, k)
    if reacted - back < 0:
        return Refused(f"there are not {back} earlier steps to step back to", "invalid")
    ledger = L.ledger(plan, state.segments, state.paused_at or state.segments[-1].started_at)
    with localcontext() as ctx:
        ctx.prec = L.PRECISION
        new_steps: list[PlanStep] = []
        origin: StepOrigin = "step_back" if back else "repeat"
        for original in range(reacted - back, reacted):
            new_steps.append(replace(base.steps[original], origin=origin, of_step=original))
        if command.insert_intermediate:
            made = intermediate_steps(base, reacted, command.insert_intermediate, plan.steps[k])
            if isinstance(made, Refused):
                return made
            new_steps.extend(made)
        reacted_step = plan.steps[k]  # as it stands now (it may already be a stretched copy)
        if command.resume_from == "finish":
            rest = _rest_of_step(plan, k, ledger, _approved_minutes(base, plan, k, command))
            if rest is None and not plan.is_last(k) and state.pause_had_reaction:
                # The step had run its time: "finish" would go straight to a higher rate.
                return Refused(
                    f"step {k + 1} was complete when the reaction began; after a "
                    "reaction choose repeat or step back",
                    "invalid",
                )
            if rest is not None:
                new_steps.append(
                    replace(reacted_step, minutes=rest, origin="finish", of_step=reacted)
                )
            elif plan.is_last(k):
                new_steps.append(replace(reacted_step, origin="finish", of_step=reacted))
        else:
            new_steps.append(
                replace(reacted_step, origin="repeat" if not back else "step_back", of_step=reacted)
            )
        followers = [
            replace(step, of_step=original_step(plan, index))
            for index, step in enumerate(plan.steps[k + 1 :], start=k + 1)
        ]
        tail = [*new_steps, *followers]
        # A step that runs "until the target" can only be the last: a resume re-planned before
        # the previous one was started would otherwise leave a copy of it in the middle.
        tail = [s for i, s in enumerate(tail) if i == len(tail) - 1 or not _runs_to_target(s)]
        if not tail or not _is_final(plan, tail[-1]):
            # The final "until the target" step must stay last.
            return Refused("nothing left to resume", "invalid")
        last = len(tail) - 1
        tail = [_adjust(s, base, command, is_last=i == last) for i, s in enumerate(tail)]
    steps = (*plan.steps[: k + 1], *tail)
    new_plan = plan.with_steps(steps)
    first = k + 1
    checked = _check_new_plan(new_plan, first, ledger)
    if isinstance(checked, Refused):
        return checked
    return new_plan, first


def original_step(plan: Plan, index: int) -> int:
    """The plan index a step stands for (copies point at their original)."""
    step = plan.steps[index]
    return step.of_step if step.of_step is not None else index


def _runs_to_target(step: PlanStep) -> bool:
    return (step.is_infusion and step.minutes is None) or (
        not step.is_infusion and step.dose is None
    )


def _is_final(plan: Plan, step: PlanStep) -> bool:
    last = plan.steps[-1]
    return step.solution == last.solution and (
        (step.is_infusion and step.minutes is None) or (not step.is_infusion and step.dose is None)
    )


def _approved_minutes(base: Plan, plan: Plan, index: int, command: Resume) -> Decimal | None:
    """The time of the approved step this plan step stands for, stretched once by this resume:
    a second resume never stretches a stretched time again."""
    step = plan.steps[index]
    original = original_step(plan, index)
    approved = base.steps[original].minutes if original < len(base.steps) else None
    minutes = approved if approved is not None else step.minutes
    return None if minutes is None else minutes * command.stretch


def _rest_of_step(
    plan: Plan, index: int, ledger: L.Ledger, minutes: Decimal | None
) -> Decimal | None:
    """What is left of the interrupted step when it is to last `minutes` in all."""
    step = plan.steps[index]
    if plan.is_last(index) or not step.is_infusion or minutes is None:
        return None
    assert step.rate_ml_h is not None
    given_minutes = ledger.volume_of_step(index) / step.rate_ml_h * 60
    rest = minutes - given_minutes
    return rest if rest > Decimal("0.01") else None


def intermediate_steps(
    plan: Plan, reacted: int, count: int, repeated: PlanStep
) -> list[PlanStep] | Refused:
    """`count` steps between approved steps reacted-1 and reacted, evenly spaced in dose on a
    log scale, each slower than the step that will be repeated after them."""
    if reacted == 0:
        return Refused(
            "there is no earlier step to interpolate from; repeat the step instead", "invalid"
        )
    low = plan.planned_dose(reacted - 1)
    high = plan.planned_dose(reacted)
    if high is None:  # the final step: use what it would give in one ordinary step time
        step = plan.steps[reacted]
        previous = plan.steps[reacted - 1]
        minutes = previous.minutes or Decimal(15)
        if step.is_infusion:
            high = step.rate * minutes / 60 * plan.bag(step.bag_number).concentration
        else:
            return Refused(
                "intermediate doses go before an ordinary dose, not the remainder", "invalid"
            )
    assert low is not None
    target_step = plan.steps[reacted]
    out = []
    for i in range(1, count + 1):
        fraction = Decimal(i) / Decimal(count + 1)
        dose = low * (high / low) ** fraction
        if target_step.is_infusion:
            minutes = target_step.minutes or plan.steps[reacted - 1].minutes or Decimal(15)
            conc = plan.bag(target_step.bag_number).concentration
            # a rate a pump can be set to: 0.1 mL/h steps
            rate = (dose / (conc * minutes / 60)).quantize(PUMP_RATE_STEP, ROUND_HALF_UP)
            if repeated.rate_ml_h is not None:
                rate = min(rate, repeated.rate_ml_h)
            rate = max(rate, PUMP_RATE_STEP)
            out.append(
                PlanStep(
                    solution=target_step.solution,
                    rate_ml_h=rate,
                    minutes=minutes,
                    origin="intermediate",
                    of_step=reacted,
                )
            )
        else:
            if repeated.dose is not None:
                dose = min(dose, repeated.dose)
            out.append(
                PlanStep(
                    dose=dose, minutes=target_step.minutes, origin="intermediate", of_step=reacted
                )
            )
    return out


def _adjust(step: PlanStep, base: Plan, command: Resume, *, is_last: bool) -> PlanStep:
    if step.minutes is not None and not is_last and step.origin != "finish":
        # Stretched from the approved time: never compounded over several resumes.
        original = step.of_step
        approved = base.steps[original].minutes if original is not None else None
        step = replace(step, minutes=(approved or step.minutes) * command.stretch)
    if is_last and step.minutes is not None and step.is_infusion:
        step = replace(step, minutes=None)  # the final step always runs to the target
    if command.cap_rate_ml_h is not None and step.rate_ml_h is not None:
        step = replace(step, rate_ml_h=min(step.rate_ml_h, command.cap_rate_ml_h))
    return step


def _check_new_plan(plan: Plan, first: int, ledger: L.Ledger) -> Refused | None:
    cumulative = L.projected_total(plan, first, ledger.delivered)
    if cumulative and cumulative[-1] >= plan.target_dose:
        return Refused(
            "these steps would give the whole target before the last step; "
            "stretch less or step back fewer steps",
            "invalid",
        )
    used = dict(ledger.volume_used)
    for step in plan.steps[first:-1]:
        if step.is_infusion:
            assert step.minutes is not None  # only the last infusion step runs to the target
            used[step.bag_number] = used.get(step.bag_number, Decimal(0)) + (
                step.rate * step.minutes / 60
            )
    final = plan.steps[-1]
    if final.is_infusion:
        # The last step gives whatever the target still needs, from the final bag.
        before_last = cumulative[-1] if cumulative else ledger.delivered
        final_bag = plan.bag(final.bag_number)
        used[final.bag_number] = used.get(final.bag_number, Decimal(0)) + (
            (plan.target_dose - before_last) / final_bag.concentration
        )
    for bag in plan.bags:
        # a hair of tolerance: the final bag is sized exactly, quotients are rounded at 60 digits
        if used.get(bag.number, Decimal(0)) > bag.volume_ml + VOLUME_TOLERANCE_ML:
            return Refused(
                f"bag {bag.number} does not hold enough for these steps "
                f"({bag.volume_ml} mL); a new bag would be needed",
                "invalid",
            )
    return None
