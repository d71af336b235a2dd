"""Value objects of the protocol engine.

A protocol is described twice: as a *spec* (what the clinician chose: bags, rates, durations, doses)
and as a computed *protocol* (every bag's concentration and amount, every step's volume, dose and
cumulative dose). Edits change the spec; the protocol is always recomputed from it, so derived
numbers can never drift from their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

UNITS: tuple[str, ...] = ("mg", "g", "mcg", "units")

Kind = Literal["infusion", "doses"]
Origin = Literal["template", "inserted", "edited"]


class ProtocolError(ValueError):
    """A protocol that cannot be built as asked. The message is one line, written for a clinician.

    `field` names the input at fault where there is one, so forms can show the reason beside it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class SolutionSpec:
    number: int
    label: str  # "1/100", "1/10", "final" ...
    volume_ml: Decimal
    # Fraction of full strength (target / bag volume). None for the final bag, whose strength is
    # adjusted so that emptying it completes the target.
    strength: Decimal | None
    # Institution override of the drug amount in the bag; None means "computed".
    amount: Decimal | None = None


@dataclass(frozen=True)
class StepSpec:
    solution: int | None = None  # bag number; None for a dose (oral / bolus) step
    rate_ml_h: Decimal | None = None
    # Infusion: how long the step runs; None on the last step = "run the rest of the final bag".
    # Dose step: the interval before the next dose.
    minutes: Decimal | None = None
    # Dose steps only; None on the last step = "the remainder of the target".
    dose: Decimal | None = None
    origin: Origin = "template"


@dataclass(frozen=True)
class ProtocolSpec:
    template: str
    kind: Kind
    target_dose: Decimal
    unit: str
    solutions: tuple[SolutionSpec, ...]
    steps: tuple[StepSpec, ...]
    full_strength_volume_ml: Decimal | None = None  # the V in "full strength = target / V"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Solution:
    number: int
    label: str
    volume_ml: Decimal
    concentration: Decimal  # unit per mL
    amount: Decimal
    overridden: bool = False


@dataclass(frozen=True)
class Step:
    number: int
    solution: int | None
    rate_ml_h: Decimal | None
    minutes: Decimal
    volume_ml: Decimal | None
    dose: Decimal
    cumulative_dose: Decimal
    percent_of_target: Decimal
    starts_at_minute: Decimal
    origin: Origin = "template"


@dataclass(frozen=True)
class Protocol:
    template: str
    kind: Kind
    target_dose: Decimal
    unit: str
    solutions: tuple[Solution, ...]
    steps: tuple[Step, ...]
    total_minutes: Decimal
    spec: ProtocolSpec = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()
