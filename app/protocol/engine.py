"""Ladder arithmetic: turn a ProtocolSpec into a fully computed Protocol.

Everything is exact decimal arithmetic at high precision; rounding happens only for display
(`app.protocol.display`). The last step is never computed from a rate or a dose the user typed: it
is "the rest of the final bag" (infusions) or "the remainder of the target" (dose ladders), so the
cumulative dose of the last step equals the target exactly.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from itertools import pairwise

from app.protocol.display import format_quantity
from app.protocol.model import (
    UNITS,
    Protocol,
    ProtocolError,
    ProtocolSpec,
    Solution,
    SolutionSpec,
    Step,
    StepSpec,
)

PRECISION = 60
ZERO = Decimal(0)
SIXTY = Decimal(60)
HUNDRED = Decimal(100)


def compute(spec: ProtocolSpec) -> Protocol:
    with localcontext() as ctx:
        ctx.prec = PRECISION
        _check_common(spec)
        if spec.kind == "infusion":
            return _compute_infusion(spec)
        return _compute_doses(spec)


# Plausible clinical bounds: wide enough for every real protocol (IVIG is given in tens of
# grams, some antibiotics in millions of units), narrow enough that an absurd number (1e30 mg, a
# 60-nanosecond step) is refused before anyone approves it. Each limit is (lowest, highest).
TARGET_DOSE_LIMITS = {
    "mg": (Decimal("0.001"), Decimal(200_000)),
    "g": (Decimal("0.000001"), Decimal(200)),
    "mcg": (Decimal(1), Decimal(200_000_000)),
    "units": (Decimal("0.01"), Decimal(100_000_000)),
}
BAG_VOLUME_LIMITS_ML = (Decimal(1), Decimal(3000))
RATE_LIMITS_ML_H = (Decimal("0.01"), Decimal(1000))
STEP_MINUTES_LIMITS = (Decimal(1), Decimal(24 * 60))
MAX_STEPS = 60


def _check_common(spec: ProtocolSpec) -> None:
    if spec.unit not in UNITS:
        raise ProtocolError(
            f"unknown unit {spec.unit!r}: use one of {', '.join(UNITS)}", field="unit"
        )
    if not spec.target_dose.is_finite() or spec.target_dose <= 0:
        raise ProtocolError(
            f"target dose must be greater than 0, got {spec.target_dose}", field="dose"
        )
    _check_within(spec.target_dose, TARGET_DOSE_LIMITS[spec.unit], "target dose", "dose", spec.unit)
    if len(spec.steps) < 2:
        raise ProtocolError("a desensitization needs at least 2 steps", field="steps")
    if len(spec.steps) > MAX_STEPS:
        raise ProtocolError(f"a desensitization has at most {MAX_STEPS} steps", field="steps")
    for solution in spec.solutions:
        what = f"bag {solution.number} volume"
        _check_within(solution.volume_ml, BAG_VOLUME_LIMITS_ML, what, "bag_volume", "mL")
    for number, step in enumerate(spec.steps, start=1):
        if step.rate_ml_h is not None:
            what = f"step {number} rate"
            _check_within(step.rate_ml_h, RATE_LIMITS_ML_H, what, "rate", "mL/h")
        if step.minutes is not None:
            field = "step_minutes" if spec.kind == "infusion" else "interval"
            _check_within(step.minutes, STEP_MINUTES_LIMITS, f"step {number} minutes", field, "min")


def _check_within(
    value: Decimal | None, limits: tuple[Decimal, Decimal], what: str, field: str, unit: str
) -> None:
    """Refuse a number outside its plausible range, in words (the number as typed, not 1E+30)."""
    if value is None or not value.is_finite() or value <= 0:
        return  # not a number, or not positive: the checks that follow say so
    low, high = limits
    if not low <= value <= high:
        shown = f"{value:.6g}" if not -9 <= value.adjusted() <= 12 else _as_typed(value)
        raise ProtocolError(
            f"{what} must be between {_as_typed(low)} and {_as_typed(high)} {unit}, got {shown}",
            field=field,
        )


def _as_typed(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _compute_infusion(spec: ProtocolSpec) -> Protocol:
    if not spec.solutions:
        raise ProtocolError("an infusion protocol needs at least one bag", field="bags")
    final = spec.solutions[-1]
    bag_numbers = [s.number for s in spec.solutions]
    for solution in spec.solutions:
        _check_positive(solution.volume_ml, f"bag {solution.number} volume", "bag_volume")
        if solution.amount is not None:
            _check_positive(solution.amount, f"bag {solution.number} amount", "bags")
    _check_step_order(spec, bag_numbers)

    concentrations = {
        s.number: _fixed_concentration(spec, s) for s in spec.solutions if s is not final
    }
    infused: dict[int, Decimal] = {n: ZERO for n in bag_numbers}

    # Dose from every bag before the final one fixes how strong the final bag must be.
    plain: list[tuple[StepSpec, int, Decimal, Decimal]] = []  # (step, bag, volume, minutes)
    for index, step in enumerate(spec.steps):
        is_last = index == len(spec.steps) - 1
        number = index + 1
        assert step.solution is not None  # checked in _check_step_order
        rate = _check_positive(step.rate_ml_h, f"step {number} rate", "rate")
        if is_last:
            if step.minutes is not None:
                raise ProtocolError(
                    "the last step runs the rest of the final bag; it has no set duration"
                )
            continue
        if step.minutes is None:
            raise ProtocolError(f"step {number} needs a duration", field="step_minutes")
        minutes = _check_positive(step.minutes, f"step {number} duration", "step_minutes")
        volume = rate * minutes / SIXTY
        plain.append((step, step.solution, volume, minutes))
        infused[step.solution] += volume

    delivered_before_final = sum(
        (
            volume * concentrations[bag]
            for _step_spec, bag, volume, _minutes in plain
            if bag != final.number
        ),
        ZERO,
    )
    remaining_for_final_bag = spec.target_dose - delivered_before_final
    if remaining_for_final_bag <= 0:
        raise ProtocolError(
            "the bags before the final one already deliver the whole target dose; "
            "check the bag amounts",
            field="bags",
        )
    if final.amount is None:
        final_concentration = remaining_for_final_bag / final.volume_ml
    else:
        final_concentration = final.amount / final.volume_ml
    concentrations[final.number] = final_concentration

    steps: list[Step] = []
    cumulative = ZERO
    elapsed = ZERO
    for index, (step, bag, volume, minutes) in enumerate(plain):
        dose = volume * concentrations[bag]
        cumulative += dose
        steps.append(_step(spec, index + 1, step, minutes, volume, dose, cumulative, elapsed))
        elapsed += minutes

    last = spec.steps[-1]
    rest_of_bag = final.volume_ml - infused[final.number]
    last_dose = spec.target_dose - cumulative
    if last_dose <= 0 or rest_of_bag <= 0:
        raise ProtocolError(
            f"the steps before the last one already use all of bag {final.number} "
            f"({_plain(infused[final.number])} mL of {_plain(final.volume_ml)} mL); "
            "use a larger bag or slower or shorter steps",
            field="bag_volume",
        )
    # Unless the bag's amount was set by hand, its strength was chosen so that the rest of the bag
    # is exactly the rest of the target: take the volume as is, not through a rounded quotient.
    last_volume = rest_of_bag if final.amount is None else last_dose / final_concentration
    if last_volume > rest_of_bag:
        raise ProtocolError(
            f"bag {final.number} holds too little drug: the last step needs {_plain(last_dose)} "
            f"{spec.unit} but only {_plain(rest_of_bag * final_concentration)} {spec.unit} "
            "are left in it",
            field="bags",
        )
    infused[final.number] += last_volume
    assert last.rate_ml_h is not None  # every step's rate was checked positive above
    last_minutes = last_volume / last.rate_ml_h * SIXTY
    steps.append(
        _step(
            spec,
            len(spec.steps),
            last,
            last_minutes,
            last_volume,
            last_dose,
            spec.target_dose,
            elapsed,
        )
    )
    elapsed += last_minutes

    for solution in spec.solutions:
        if infused[solution.number] > solution.volume_ml:
            raise ProtocolError(
                f"bag {solution.number} holds {_plain(solution.volume_ml)} mL but its steps need "
                f"{_plain(infused[solution.number])} mL",
                field="bag_volume",
            )
    _check_non_decreasing(steps, spec.unit)

    solutions = tuple(
        Solution(
            number=s.number,
            label=s.label,
            volume_ml=s.volume_ml,
            concentration=concentrations[s.number],
            amount=concentrations[s.number] * s.volume_ml,
            overridden=s.amount is not None,
        )
        for s in spec.solutions
    )
    return _protocol(spec, solutions, steps, elapsed)


def _compute_doses(spec: ProtocolSpec) -> Protocol:
    if spec.solutions:
        raise ProtocolError("a dose ladder has no bags")
    steps: list[Step] = []
    cumulative = ZERO
    elapsed = ZERO
    for index, step in enumerate(spec.steps):
        number = index + 1
        is_last = index == len(spec.steps) - 1
        if step.solution is not None or step.rate_ml_h is not None:
            raise ProtocolError(f"step {number} of a dose ladder cannot have a bag or a rate")
        if step.minutes is None:
            raise ProtocolError(f"step {number} needs an interval", field="interval")
        _check_positive(step.minutes, f"step {number} interval", "interval")
        if is_last:
            if step.dose is not None:
                raise ProtocolError(
                    "the last dose is the remainder of the target; it is not set by hand"
                )
            dose = spec.target_dose - cumulative
            if dose <= 0:
                raise ProtocolError(
                    f"the doses before the last one already reach {_plain(cumulative)} "
                    f"{spec.unit}, not less than the target {_plain(spec.target_dose)} {spec.unit}",
                    field="doses",
                )
        else:
            if step.dose is None:
                raise ProtocolError(f"step {number} needs a dose", field="doses")
            _check_positive(step.dose, f"dose {number}", "doses")
            dose = step.dose
        cumulative += dose
        steps.append(_step(spec, number, step, step.minutes, None, dose, cumulative, elapsed))
        elapsed += step.minutes
    _check_non_decreasing(steps, spec.unit)
    return _protocol(spec, (), steps, elapsed)


def _fixed_concentration(spec: ProtocolSpec, solution: SolutionSpec) -> Decimal:
    if solution.amount is not None:
        return solution.amount / solution.volume_ml
    if solution.strength is None or spec.full_strength_volume_ml is None:
        raise ProtocolError(f"bag {solution.number} needs an amount", field="bags")
    return spec.target_dose / spec.full_strength_volume_ml * solution.strength


def _check_step_order(spec: ProtocolSpec, bag_numbers: list[int]) -> None:
    previous_position = 0
    used: set[int] = set()
    for index, step in enumerate(spec.steps):
        if step.solution not in bag_numbers:
            raise ProtocolError(f"step {index + 1} uses bag {step.solution}, which does not exist")
        if step.dose is not None:
            raise ProtocolError(
                f"step {index + 1} is an infusion step; its dose follows from bag and rate"
            )
        position = bag_numbers.index(step.solution)
        if position < previous_position:
            raise ProtocolError(f"step {index + 1} goes back to an earlier bag ({step.solution})")
        previous_position = position
        used.add(step.solution)
    if spec.steps[-1].solution != bag_numbers[-1]:
        raise ProtocolError("the last step must run from the final bag")
    unused = [n for n in bag_numbers if n not in used]
    if unused:
        raise ProtocolError(f"bag {unused[0]} has no steps", field="bags")


def _check_positive(value: Decimal | None, what: str, field: str) -> Decimal:
    if value is None or not value.is_finite() or value <= 0:
        raise ProtocolError(f"{what} must be greater than 0, got {value}", field=field)
    return value


def _check_non_decreasing(steps: list[Step], unit: str) -> None:
    for before, after in pairwise(steps):
        if after.dose < before.dose:
            raise ProtocolError(
                f"step {after.number} would give less drug ({_plain(after.dose)} {unit}) than step "
                f"{before.number} ({_plain(before.dose)} {unit}); "
                "a desensitization ladder never steps down",
                field="steps",
            )


def _step(
    spec: ProtocolSpec,
    number: int,
    step: StepSpec,
    minutes: Decimal,
    volume: Decimal | None,
    dose: Decimal,
    cumulative: Decimal,
    starts_at: Decimal,
) -> Step:
    return Step(
        number=number,
        solution=step.solution,
        rate_ml_h=step.rate_ml_h,
        minutes=minutes,
        volume_ml=volume,
        dose=dose,
        cumulative_dose=cumulative,
        percent_of_target=cumulative / spec.target_dose * HUNDRED,
        starts_at_minute=starts_at,
        origin=step.origin,
    )


def _protocol(
    spec: ProtocolSpec, solutions: tuple[Solution, ...], steps: list[Step], total: Decimal
) -> Protocol:
    return Protocol(
        template=spec.template,
        kind=spec.kind,
        target_dose=spec.target_dose,
        unit=spec.unit,
        solutions=solutions,
        steps=tuple(steps),
        total_minutes=total,
        spec=spec,
        notes=spec.notes,
    )


def _plain(value: Decimal) -> str:
    return format_quantity(value)
