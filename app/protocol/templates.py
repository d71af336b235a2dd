"""Protocol templates: each turns a few parameters into a ProtocolSpec.

Sources and confirmation status are in the clinical reference (§a–b). Rates that were not read at a
primary source are kept here as data and announced in the protocol's notes, so every screen that
shows them can say they are editable defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from app.protocol.engine import PRECISION, compute
from app.protocol.model import Protocol, ProtocolError, ProtocolSpec, SolutionSpec, StepSpec

D = Decimal

# Rate ladders as fractions of the final rate R, one row per bag (UpToDate/BWH ceftazidime table:
# 2-5-10-20 | 5-10-20-40 | 10-20-40-80 mL/h at R = 80). The last entry of the final bag is R itself
# but that step runs until the bag is empty.
LADDER_1_40 = (D("0.025"), D("0.0625"), D("0.125"), D("0.25"))
LADDER_1_16 = (D("0.0625"), D("0.125"), D("0.25"), D("0.5"))
LADDER_1_8 = (D("0.125"), D("0.25"), D("0.5"), D(1))


@dataclass(frozen=True)
class BagDesign:
    label: str
    strength: Decimal | None  # fraction of full strength; None = final bag, adjusted
    ladder: tuple[Decimal, ...]


@dataclass(frozen=True)
class BrighamDesign:
    name: str
    bags: tuple[BagDesign, ...]
    confirmed: bool
    note: str


UNCONFIRMED_NOTE = (
    "Per-step rates of this template were not confirmed at a primary source: "
    "they are editable defaults, check them against your institution's order set."
)

BRIGHAM_DESIGNS: dict[str, BrighamDesign] = {
    "brigham-12": BrighamDesign(
        name="brigham-12",
        bags=(
            BagDesign("1/100", D("0.01"), LADDER_1_40),
            BagDesign("1/10", D("0.1"), LADDER_1_16),
            BagDesign("final", None, LADDER_1_8),
        ),
        confirmed=True,
        note="Brigham and Women's 3-bag, 12-step protocol (UpToDate ceftazidime table).",
    ),
    # 16 steps: a 1/1000 bag in front, the 12-step ladder reused for the 1/1000, 1/100 and 1/10
    # bags (one of the two readings in the clinical reference, §a.2).
    "brigham-16": BrighamDesign(
        name="brigham-16",
        bags=(
            BagDesign("1/1000", D("0.001"), LADDER_1_40),
            BagDesign("1/100", D("0.01"), LADDER_1_16),
            BagDesign("1/10", D("0.1"), LADDER_1_8),
            BagDesign("final", None, LADDER_1_8),
        ),
        confirmed=False,
        note="4-bag, 16-step protocol for higher-risk patients. " + UNCONFIRMED_NOTE,
    ),
    # 8 steps: the 1/10 and final bags of the 12-step protocol (inferred, §a.3).
    "brigham-8": BrighamDesign(
        name="brigham-8",
        bags=(
            BagDesign("1/10", D("0.1"), LADDER_1_16),
            BagDesign("final", None, LADDER_1_8),
        ),
        confirmed=False,
        note="2-bag, 8-step protocol. " + UNCONFIRMED_NOTE,
    ),
}

TEMPLATES: tuple[str, ...] = (*BRIGHAM_DESIGNS, "doubling", "doses")

TEMPLATE_TITLES: dict[str, str] = {
    "brigham-12": "Brigham 12 steps, 3 bags",
    "brigham-16": "Brigham 16 steps, 4 bags (higher risk)",
    "brigham-8": "Brigham 8 steps, 2 bags",
    "doubling": "Doubling doses (oral or bolus)",
    "doses": "Explicit list of doses",
}


DEFAULT_FINAL_RATE_ML_H = D(80)
DEFAULT_BAG_VOLUME_ML = D(250)
DEFAULT_STEP_MINUTES = D(15)
DEFAULT_START_FRACTION = D("0.0001")
DEFAULT_FACTOR = D(2)
DEFAULT_DOUBLING_STEPS = 12
DEFAULT_INTERVAL_MINUTES = D(15)


@dataclass(frozen=True)
class BagOverride:
    volume_ml: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class BrighamParameters:
    target_dose: Decimal
    unit: str
    final_rate_ml_h: Decimal = DEFAULT_FINAL_RATE_ML_H
    bag_volume_ml: Decimal = DEFAULT_BAG_VOLUME_ML
    step_minutes: Decimal = DEFAULT_STEP_MINUTES
    bag_overrides: dict[int, BagOverride] = field(default_factory=dict)


@dataclass(frozen=True)
class DoublingParameters:
    target_dose: Decimal
    unit: str
    start_fraction: Decimal = DEFAULT_START_FRACTION
    factor: Decimal = DEFAULT_FACTOR
    steps: int = DEFAULT_DOUBLING_STEPS
    interval_minutes: Decimal = DEFAULT_INTERVAL_MINUTES


@dataclass(frozen=True)
class DosesParameters:
    doses: tuple[Decimal, ...]
    unit: str
    interval_minutes: Decimal = DEFAULT_INTERVAL_MINUTES
    target_dose: Decimal | None = None  # when given, must equal the sum of the doses


def brigham_spec(template: str, p: BrighamParameters) -> ProtocolSpec:
    design = BRIGHAM_DESIGNS.get(template)
    if design is None:
        raise ProtocolError(f"unknown Brigham template {template!r}", field="template")
    _positive(p.final_rate_ml_h, "final rate", "final_rate")
    _positive(p.bag_volume_ml, "bag volume", "bag_volume")
    _positive(p.step_minutes, "step minutes", "step_minutes")
    for number in sorted(p.bag_overrides):
        if not 1 <= number <= len(design.bags):
            raise ProtocolError(
                f"bag {number} does not exist: {template} has bags 1 to {len(design.bags)}",
                field="bags",
            )
        override = p.bag_overrides[number]
        if override.volume_ml is not None:
            _positive(override.volume_ml, f"bag {number} volume", "bags")
        if override.amount is not None:
            _positive(override.amount, f"bag {number} amount", "bags")

    solutions = []
    steps = []
    for number, bag in enumerate(design.bags, start=1):
        override = p.bag_overrides.get(number, BagOverride())
        solutions.append(
            SolutionSpec(
                number=number,
                label=bag.label,
                volume_ml=override.volume_ml if override.volume_ml is not None else p.bag_volume_ml,
                strength=bag.strength,
                amount=override.amount,
            )
        )
        is_final_bag = number == len(design.bags)
        for index, fraction in enumerate(bag.ladder):
            runs_rest = is_final_bag and index == len(bag.ladder) - 1
            steps.append(
                StepSpec(
                    solution=number,
                    rate_ml_h=p.final_rate_ml_h * fraction,
                    minutes=None if runs_rest else p.step_minutes,
                )
            )
    return ProtocolSpec(
        template=template,
        kind="infusion",
        target_dose=p.target_dose,
        unit=p.unit,
        solutions=tuple(solutions),
        steps=tuple(steps),
        full_strength_volume_ml=p.bag_volume_ml,
        notes=(design.note,),
    )


def doubling_spec(p: DoublingParameters) -> ProtocolSpec:
    if not (0 < p.start_fraction < 1):
        raise ProtocolError(
            f"start fraction must be between 0 and 1 (e.g. 1/10000), got {p.start_fraction}",
            field="start_fraction",
        )
    if not p.factor > 1:
        raise ProtocolError(f"factor must be greater than 1, got {p.factor}", field="factor")
    if p.steps < 2:
        raise ProtocolError(f"steps must be at least 2, got {p.steps}", field="steps")
    _positive(p.interval_minutes, "interval", "interval")
    _positive(p.target_dose, "target dose", "dose")

    with localcontext() as ctx:
        ctx.prec = PRECISION
        doses = [p.target_dose * p.start_fraction * p.factor**k for k in range(p.steps - 1)]
        remainder = p.target_dose - sum(doses, D(0))
    if remainder < doses[-1]:
        feasible = _largest_doubling_steps(p)
        if feasible < 2:
            raise ProtocolError(
                f"a start fraction of {_short(p.start_fraction)} leaves no room to escalate; "
                "use a smaller start fraction",
                field="start_fraction",
            )
        raise ProtocolError(
            f"with {p.steps} steps the ladder passes the target before the last step "
            f"(the last step would be smaller than the one before); use at most {feasible} steps "
            "or a smaller start fraction",
            field="steps",
        )
    steps = [StepSpec(dose=dose, minutes=p.interval_minutes) for dose in doses]
    steps.append(StepSpec(dose=None, minutes=p.interval_minutes))
    note = (
        f"Doses rise ×{_short(p.factor)} every {_short(p.interval_minutes)} min from "
        f"{_short(p.start_fraction)} of the target; the last step gives the remainder so the total "
        "reaches the target."
    )
    return ProtocolSpec(
        template="doubling",
        kind="doses",
        target_dose=p.target_dose,
        unit=p.unit,
        solutions=(),
        steps=tuple(steps),
        notes=(note,),
    )


def doses_spec(p: DosesParameters) -> ProtocolSpec:
    if len(p.doses) < 2:
        raise ProtocolError("give at least two doses", field="doses")
    for index, dose in enumerate(p.doses, start=1):
        _positive(dose, f"dose {index}", "doses")
    _positive(p.interval_minutes, "interval", "interval")
    total = sum(p.doses, D(0))
    if p.target_dose is not None and p.target_dose != total:
        raise ProtocolError(
            f"the doses add up to {_short(total)}, not the target {_short(p.target_dose)}; "
            "leave the target out or correct the list",
            field="dose",
        )
    steps = [StepSpec(dose=dose, minutes=p.interval_minutes) for dose in p.doses[:-1]]
    steps.append(StepSpec(dose=None, minutes=p.interval_minutes))
    return ProtocolSpec(
        template="doses",
        kind="doses",
        target_dose=total,
        unit=p.unit,
        solutions=(),
        steps=tuple(steps),
        notes=(f"{len(p.doses)} doses every {_short(p.interval_minutes)} min.",),
    )


def build(
    template: str, parameters: BrighamParameters | DoublingParameters | DosesParameters
) -> Protocol:
    if template in BRIGHAM_DESIGNS:
        if not isinstance(parameters, BrighamParameters):
            raise ProtocolError(f"{template} takes Brigham parameters", field="template")
        return compute(brigham_spec(template, parameters))
    if template == "doubling":
        if not isinstance(parameters, DoublingParameters):
            raise ProtocolError("doubling takes doubling parameters", field="template")
        return compute(doubling_spec(parameters))
    if template == "doses":
        if not isinstance(parameters, DosesParameters):
            raise ProtocolError("doses takes a list of doses", field="template")
        return compute(doses_spec(parameters))
    raise ProtocolError(
        f"unknown template {template!r}: use one of {', '.join(TEMPLATES)}", field="template"
    )


def _largest_doubling_steps(p: DoublingParameters) -> int:
    best = 1
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for steps in range(2, p.steps):
            doses = [p.start_fraction * p.factor**k for k in range(steps - 1)]
            if 1 - sum(doses, D(0)) >= doses[-1]:
                best = steps
    return best


def _positive(value: Decimal, what: str, field: str) -> None:
    if not value.is_finite() or value <= 0:
        raise ProtocolError(f"{what} must be greater than 0, got {_short(value)}", field=field)


def _short(value: Decimal) -> str:
    return f"{value.normalize():f}" if value.is_finite() else str(value)
