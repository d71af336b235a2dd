"""Clinician edits of a protocol: insert a step, delete an inserted step, change a step.

Each edit returns a freshly computed Protocol (or raises ProtocolError and changes nothing), so the
final step is recomputed and still completes the target.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.protocol.engine import compute
from app.protocol.model import Protocol, ProtocolError, StepSpec


def insert_step(
    protocol: Protocol,
    after: int,
    *,
    rate_ml_h: Decimal | None = None,
    minutes: Decimal | None = None,
    dose: Decimal | None = None,
    solution: int | None = None,
) -> Protocol:
    """Insert a step between step `after` and step `after + 1`."""
    spec = protocol.spec
    count = len(spec.steps)
    if not 1 <= after < count:
        raise ProtocolError(
            f"a step can be inserted after step 1 to {count - 1} (between two steps), "
            f"not after {after}",
            field="after",
        )
    before, following = spec.steps[after - 1], spec.steps[after]
    if spec.kind == "infusion":
        if rate_ml_h is None:
            raise ProtocolError("an inserted infusion step needs a rate", field="rate")
        if dose is not None:
            raise ProtocolError(
                "an infusion step's dose follows from its bag and rate", field="dose"
            )
        new = StepSpec(
            solution=solution if solution is not None else following.solution,
            rate_ml_h=rate_ml_h,
            minutes=minutes if minutes is not None else _typical_minutes(before, following),
            origin="inserted",
        )
    else:
        if dose is None:
            raise ProtocolError("an inserted step of a dose ladder needs a dose", field="dose")
        if rate_ml_h is not None or solution is not None:
            raise ProtocolError("a dose step has no bag or rate", field="rate")
        new = StepSpec(
            dose=dose, minutes=minutes if minutes is not None else before.minutes, origin="inserted"
        )
    steps = (*spec.steps[:after], new, *spec.steps[after:])
    return compute(replace(spec, steps=steps))


def delete_step(protocol: Protocol, number: int) -> Protocol:
    spec = protocol.spec
    _check_number(number, len(spec.steps))
    if spec.steps[number - 1].origin != "inserted":
        raise ProtocolError(
            f"step {number} comes from the template; only inserted steps can be deleted",
            field="step",
        )
    steps = spec.steps[: number - 1] + spec.steps[number:]
    return compute(replace(spec, steps=steps))


def edit_step(
    protocol: Protocol,
    number: int,
    *,
    rate_ml_h: Decimal | None = None,
    minutes: Decimal | None = None,
    dose: Decimal | None = None,
) -> Protocol:
    spec = protocol.spec
    _check_number(number, len(spec.steps))
    if rate_ml_h is None and minutes is None and dose is None:
        raise ProtocolError("nothing to change: give a rate, a duration or a dose", field="step")
    current = spec.steps[number - 1]
    is_last = number == len(spec.steps)
    if spec.kind == "infusion":
        if dose is not None:
            raise ProtocolError(
                "an infusion step's dose follows from its bag and rate; change the rate instead",
                field="dose",
            )
        if is_last and minutes is not None:
            raise ProtocolError(
                "the last step runs until the final bag is empty; change its rate instead",
                field="minutes",
            )
    else:
        if rate_ml_h is not None:
            raise ProtocolError("a dose step has no rate", field="rate")
        if is_last and dose is not None:
            raise ProtocolError(
                "the last dose is the remainder of the target; change an earlier dose instead",
                field="dose",
            )
    changed = replace(
        current,
        rate_ml_h=rate_ml_h if rate_ml_h is not None else current.rate_ml_h,
        minutes=minutes if minutes is not None else current.minutes,
        dose=dose if dose is not None else current.dose,
        origin="inserted" if current.origin == "inserted" else "edited",
    )
    steps = (*spec.steps[: number - 1], changed, *spec.steps[number:])
    return compute(replace(spec, steps=steps))


def _check_number(number: int, count: int) -> None:
    if not 1 <= number <= count:
        raise ProtocolError(
            f"there is no step {number}: the protocol has steps 1 to {count}", field="step"
        )


def _typical_minutes(before: StepSpec, following: StepSpec) -> Decimal | None:
    return before.minutes if before.minutes is not None else following.minutes
