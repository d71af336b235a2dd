"""The frozen plan a session runs: bags with fixed strengths, and an ordered list of steps.

Frozen at approval from the protocol engine's output. Resumes after a reaction add steps (copies
of earlier steps, intermediate steps) but never change a bag: a bag's strength was fixed when it
was made (clinical reference §c.3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from app.protocol.model import Protocol

StepOrigin = Literal["plan", "inserted", "edited", "finish", "repeat", "step_back", "intermediate"]


@dataclass(frozen=True)
class Bag:
    number: int
    label: str
    volume_ml: Decimal
    concentration: Decimal  # unit per mL

    @property
    def amount(self) -> Decimal:
        return self.concentration * self.volume_ml


@dataclass(frozen=True)
class PlanStep:
    # Infusion steps: bag, rate and minutes; the last has minutes None ("until the target").
    # Dose steps (oral, bolus): dose and the interval before the next; the last dose is None
    # ("the remainder of the target").
    solution: int | None = None
    rate_ml_h: Decimal | None = None
    minutes: Decimal | None = None
    dose: Decimal | None = None
    origin: StepOrigin = "plan"
    of_step: int | None = None  # for copies: the plan index (0-based) it repeats

    @property
    def is_infusion(self) -> bool:
        return self.solution is not None

    # Typed accessors for what an infusion step always has: asking a dose step for them is a
    # programming error, not a clinical state.
    @property
    def bag_number(self) -> int:
        if self.solution is None:
            raise ValueError("a dose step has no bag")
        return self.solution

    @property
    def rate(self) -> Decimal:
        if self.rate_ml_h is None:
            raise ValueError("a dose step has no pump rate")
        return self.rate_ml_h


@dataclass(frozen=True)
class Plan:
    kind: Literal["infusion", "doses"]
    target_dose: Decimal
    unit: str
    bags: tuple[Bag, ...]
    steps: tuple[PlanStep, ...]

    def bag(self, number: int) -> Bag:
        for bag in self.bags:
            if bag.number == number:
                return bag
        raise KeyError(number)

    def is_last(self, index: int) -> bool:
        return index == len(self.steps) - 1

    def planned_dose(self, index: int) -> Decimal | None:
        """The dose a non-final step gives as planned; None for the final step."""
        step = self.steps[index]
        if self.is_last(index) or (step.is_infusion and step.minutes is None):
            return None  # a final step runs to the target (or did, before a resume)
        if step.is_infusion:
            assert step.minutes is not None
            return step.rate * step.minutes / 60 * self.bag(step.bag_number).concentration
        return step.dose

    def with_steps(self, steps: tuple[PlanStep, ...]) -> Plan:
        return replace(self, steps=steps)


def plan_from_protocol(protocol: Protocol) -> Plan:
    bags = tuple(Bag(s.number, s.label, s.volume_ml, s.concentration) for s in protocol.solutions)
    steps = []
    for spec_step, step in zip(protocol.spec.steps, protocol.steps, strict=True):
        origin: StepOrigin = "plan" if step.origin == "template" else step.origin
        steps.append(
            PlanStep(
                solution=step.solution,
                rate_ml_h=step.rate_ml_h,
                minutes=spec_step.minutes,  # None for the final "rest" step / interval for doses
                dose=spec_step.dose,
                origin=origin,
            )
        )
    return Plan(protocol.kind, protocol.target_dose, protocol.unit, bags, tuple(steps))
