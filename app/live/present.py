"""What the bedside view and the board show, worked out from the session view. Pure: no I/O;
the templates only lay it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.alarms.logic import RANK
from app.protocol.display import quantized
from app.session.view import PlanView, SessionView, Step, VitalsSet
from app.vitals.catalogue import VITAL_SIGNS
from app.vitals.news2 import News2

STATUS_TITLES = {
    "planned": "Planned",
    "ready": "Ready to start",
    "running": "Running",
    "step_due": "Step due",
    "paused": "Paused",
    "observing": "Observation",
    "completed": "Completed",
    "aborted": "Aborted",
}
# Column heading and unit of each vital sign.
VITAL_LABELS = {name: (sign.short_label, sign.unit) for name, sign in VITAL_SIGNS.items()}
ACTIVE = ("planned", "ready", "running", "step_due", "paused", "observing")


def _trim(value: str | Decimal | None) -> str:
    if value is None:
        return "—"
    number = Decimal(str(value))
    text = f"{number.normalize():f}"
    return text if "." not in text else text.rstrip("0").rstrip(".")


def trimmed(value: Decimal) -> str:
    """A setting as typed: 38.0 -> "38", 2.50 -> "2.5"."""
    return _trim(value)


def amount(value: str | Decimal | None, places: int = 1) -> str:
    if value is None:
        return "—"
    return _trim(quantized(Decimal(str(value)), places))


@dataclass(frozen=True)
class StepInfo:
    number: int | None  # 1-based step running (or last run)
    total: int
    bag: str  # "Bag 2 (0.8 mg/mL)" or "" for dose steps
    rate: str  # "25 mL/h", "10 mg", or "—"
    prompt: str  # what the nurse does now, "" when nothing
    target: str = ""  # at a step change: the new rate (or dose), the biggest number on screen
    target_bag: str = ""  # at a step change: the bag of the new step
    next_number: int | None = None  # at a step change: the step it starts
    repeats: int | None = None  # the running step repeats this approved step (1-based)
    next_repeats: int | None = None  # the step due repeats this approved step
    next_origin: str = ""  # plan | repeat | step_back | intermediate | finish | …
    pump_stopped_at: datetime | None = None  # the infusion is stopped since then
    first_instruction: str = ""  # ready: what to hang and set to start


ORIGIN_WORDS = {
    "repeat": "repeats step {n}",
    "step_back": "steps back: repeats step {n}",
    "intermediate": "intermediate step before step {n}",
    "finish": "finishes step {n}",
}


def origin_words(origin: str, of_step: int | None) -> str:
    """ "steps back: repeats step 8" for a step a resume added; "" for an approved step."""
    if of_step is None or origin not in ORIGIN_WORDS:
        return ""
    return ORIGIN_WORDS[origin].format(n=of_step + 1)


def _bag_text(plan: PlanView, solution: int | None, unit: str) -> str:
    if solution is None:
        return ""
    bags = {b.number: b for b in plan.bags}
    b = bags[solution]
    return f"Bag {b.number} ({amount(b.concentration, 3)} {unit}/mL)"


def _rate_text(step: Step, unit: str) -> str:
    if step.solution is not None:
        return f"{_trim(step.rate_ml_h)} mL/h"
    dose = step.dose
    return f"{amount(dose, 3)} {unit}" if dose else "the rest of the dose"


def _instruction(steps: tuple[Step, ...], index: int, unit: str) -> str:
    step = steps[index]
    n = index + 1
    if step.solution is not None:
        return f"Step {n}: hang bag {step.solution}, set the pump to {_trim(step.rate_ml_h)} mL/h"
    dose = step.dose
    return f"Step {n}: give {amount(dose, 3)} {unit}" if dose else f"Step {n}: give the rest"


def step_info(view: SessionView) -> StepInfo:
    plan = view.plan
    steps = plan.steps
    unit = view.unit
    index = view.current_step
    shown = index if index is not None else (0 if view.status in ("planned", "ready") else None)
    bag, rate = "", "—"
    repeats = None
    if shown is not None and shown < len(steps):
        step = steps[shown]
        bag = _bag_text(plan, step.solution, unit)
        rate = _rate_text(step, unit)
        if index is not None and step.of_step is not None and step.origin != "plan":
            repeats = step.of_step + 1
    prompt = target = target_bag = next_origin = ""
    next_number = next_repeats = None
    if view.status == "step_due" and view.next_step is not None:
        nxt = steps[view.next_step]
        next_number = view.next_step + 1
        prompt = _instruction(steps, view.next_step, unit)
        target = _rate_text(nxt, unit)
        target_bag = _bag_text(plan, nxt.solution, unit)
        next_origin = nxt.origin
        if nxt.of_step is not None and nxt.origin != "plan":
            next_repeats = nxt.of_step + 1
    stopped = None
    segments = view.segments
    if view.status in ("step_due", "paused") and segments and segments[-1].stopped_at:
        last = segments[-1]
        if last.rate_ml_h is not None:  # an infusion that stopped; a dose step has no pump
            stopped = last.stopped_at
    first = ""
    if view.status in ("planned", "ready") and steps:
        first = _instruction(steps, 0, unit)
    number = index + 1 if index is not None else None
    return StepInfo(
        number,
        len(steps),
        bag,
        rate,
        prompt,
        target=target,
        target_bag=target_bag,
        next_number=next_number,
        repeats=repeats,
        next_repeats=next_repeats,
        next_origin=next_origin,
        pump_stopped_at=stopped,
        first_instruction=first,
    )


def countdown_target(view: SessionView) -> tuple[datetime | None, str]:
    """The deadline the screen counts down to, and what happens then."""
    if view.deadline is None:
        return None, ""
    if view.status == "observing":
        return view.deadline, "end of observation"
    return view.deadline, "next step"


@dataclass(frozen=True)
class CheckItem:
    text: str
    done: bool


@dataclass(frozen=True)
class ChecksDue:
    """What stands between the coming pump start and the pump (the bedside's checks panel):
    the scan the field takes now (wristband first, then the bag's label; "" when none), and
    whether a second clinician must co-sign."""

    shown: bool
    scan_kind: str  # "wristband", "bag" or ""
    bag: int | None  # the bag whose label is due
    double_check: bool
    items: tuple[CheckItem, ...]

    @property
    def prompt(self) -> str:
        if self.scan_kind == "wristband":
            return "Scan the patient's wristband"
        if self.scan_kind == "bag":
            return f"Scan the label of bag {self.bag}"
        return ""


def checks_due(view: SessionView) -> ChecksDue:
    checks = view.checks
    coming = view.status in ("ready", "step_due")
    items: list[CheckItem] = []
    bag_pending = False
    if checks.scan_required and coming:
        if view.status == "ready":
            done = not checks.wristband_due
            text = "Patient's wristband checked" if done else "Scan the patient's wristband"
            items.append(CheckItem(text, done))
        if checks.bag_due is not None:
            bag_pending = checks.bag_checked != checks.bag_due
            items.append(
                CheckItem(
                    f"Scan the label of bag {checks.bag_due}"
                    if bag_pending
                    else f"Label of bag {checks.bag_due} checked",
                    not bag_pending,
                )
            )
    double = coming and checks.double_check_due
    if double:
        items.append(CheckItem("A second clinician checks the pump rate and signs below", False))
    kind = "wristband" if coming and checks.wristband_due else ("bag" if bag_pending else "")
    return ChecksDue(
        shown=bool(kind) or double,
        scan_kind=kind,
        bag=checks.bag_due if bag_pending else None,
        double_check=double,
        items=tuple(items),
    )


@dataclass(frozen=True)
class VitalsRow:
    at: datetime
    step: int | None
    baseline: bool
    values: dict[str, str]  # label -> shown value ("124", "unable", "refused")
    raw: dict[str, Decimal | None]  # field -> measured value
    news2: News2 | None = None  # adults only
    id: int | None = None  # the stored version shown (what an amendment names)
    version: int = 1
    stored: Mapping[str, Any] = field(default_factory=dict)  # the set as stored, to amend it
    within_limits: bool = True
    carried: bool = False  # the baseline, kept from before the newest sets (not charted)

    @property
    def news2_short(self) -> str:
        """ "6", or "≥ 3" when a parameter was not recorded (the score is a lower bound)."""
        if self.news2 is None:
            return ""
        if self.news2.partial:
            # a lower bound of 0 says nothing: not scored until the set is complete
            return f"≥ {self.news2.total}" if self.news2.total else "—"
        return str(self.news2.total)


def row_of(v: VitalsSet, carried: bool = False) -> VitalsRow:
    """One stored set as the vitals table and the chart show it."""
    shown: dict[str, str] = {}
    raw: dict[str, Decimal | None] = {}
    for name, (label, _unit) in VITAL_LABELS.items():
        measure = v.measures.get(name)
        if measure is None:
            continue
        raw[name] = measure.value
        if measure.value is not None:
            shown[label] = _trim(measure.value)
        else:
            shown[label] = "unable" if measure.status == "unable_to_obtain" else "refused"
    return VitalsRow(
        v.recorded_at,
        v.step,
        v.baseline,
        shown,
        raw,
        v.news2,
        id=v.id,
        version=v.version,
        stored=v.values,
        within_limits=v.within_limits,
        carried=carried,
    )


def vitals_rows(view: SessionView) -> list[VitalsRow]:
    """The view's current sets as shown: its window (the newest sets and the baseline)."""
    carried = view.carried_baseline
    return [row_of(v, v.id == carried) for v in view.current_vitals]


def baseline_of(rows: list[VitalsRow]) -> VitalsRow | None:
    return next((r for r in reversed(rows) if r.baseline), None)


def latest_of(rows: list[VitalsRow]) -> VitalsRow | None:
    return rows[-1] if rows else None


def trend(rows: list[VitalsRow], name: str) -> str:
    """'↑', '↓' or '→' between the last two readings of one vital, '' without two."""
    values = [r.raw.get(name) for r in rows if r.raw.get(name) is not None]
    if len(values) < 2:
        return ""
    last, before = values[-1], values[-2]
    assert last is not None and before is not None
    return "↑" if last > before else "↓" if last < before else "→"


# --- the trend chart (server-rendered SVG) ------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One vital drawn as one polyline, whatever the number of readings; its newest reading
    marked (a single reading is then still seen) and the whole told in words (`summary`)."""

    name: str
    css: str
    points: str  # SVG polyline points
    last: tuple[float, float, str] | None  # x, y and value of the newest reading
    summary: str = ""


@dataclass(frozen=True)
class Limit:
    label: str
    css: str
    y: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: float
    bottom: float
    low: Decimal
    high: Decimal
    series: tuple[Series, ...] = ()
    limits: tuple[Limit, ...] = ()
    ticks: tuple[tuple[float, str], ...] = field(default_factory=tuple)
    empty: bool = True
    readings: int = 0  # the sets drawn

    @property
    def summary(self) -> str:
        """The chart in words, for a screen reader (the vitals table beside it has each set)."""
        if self.empty:
            return "No vitals yet."
        told = "; ".join(s.summary for s in self.series if s.summary)
        return f"The last {self.readings} vitals sets: {told}."


CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 200, 44, 12, 12, 22


def _told(name: str, values: list[Decimal]) -> str:
    if not values:
        return ""
    label, unit = VITAL_LABELS.get(name, (name, ""))
    span = (
        f"from {_trim(values[0])} to {_trim(values[-1])}" if len(values) > 1 else _trim(values[0])
    )
    return f"{label} {span} {unit} (lowest {_trim(min(values))}, highest {_trim(max(values))})"


def chart(
    rows: list[VitalsRow],
    names: tuple[tuple[str, str], ...],
    limits: list[tuple[str, str, Decimal]],
    low: Decimal,
    high: Decimal,
) -> Chart:
    """A small line chart of some vitals against time, with the alarm limits drawn across:
    the sets the view carries (its window), not a baseline kept from long before them."""
    measured = [
        r for r in rows if not r.carried and any(r.raw.get(n) is not None for n, _ in names)
    ]
    values = [v for r in measured for n, _ in names if (v := r.raw.get(n)) is not None]
    lo = min([low, *values, *(v for _, _, v in limits)])
    hi = max([high, *values, *(v for _, _, v in limits)])
    span_y = (hi - lo) or Decimal(1)
    inner_w, inner_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def y_of(value: Decimal) -> float:
        return round(PAD_T + float((hi - value) / span_y) * inner_h, 1)

    times = [r.at for r in measured]
    start = min(times) if times else None
    span_t = (max(times) - start).total_seconds() if times and start else 0.0

    def x_of(at: datetime) -> float:
        if not span_t or start is None:
            return float(PAD_L + inner_w / 2)
        return round(PAD_L + (at - start).total_seconds() / span_t * inner_w, 1)

    series = []
    for name, css in names:
        pts = [
            (x_of(r.at), y_of(value), value)
            for r in measured
            if (value := r.raw.get(name)) is not None
        ]
        last = (pts[-1][0], pts[-1][1], _trim(pts[-1][2])) if pts else None
        series.append(
            Series(
                name,
                css,
                " ".join(f"{x},{y}" for x, y, _ in pts),
                last,
                _told(name, [v for _, _, v in pts]),
            )
        )
    lines = tuple(Limit(label, css, y_of(value)) for label, css, value in limits)
    ticks = tuple((y_of(v), _trim(v)) for v in (lo, (lo + hi) / 2, hi))
    return Chart(
        CHART_W,
        CHART_H,
        PAD_T,
        CHART_H - PAD_B,
        lo,
        hi,
        tuple(series),
        lines,
        ticks,
        not measured,
        len(measured),
    )


# --- the board ----------------------------------------------------------------------------------


def top_priority(view: SessionView) -> str | None:
    active = [a.priority for a in view.alarms.items if a.active]
    return max(active, key=lambda p: RANK[p]) if active else None


def board_order(tiles: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """By alarm priority (highest first), then by time to the next step (soonest first)."""

    def key(tile: dict[str, Any]) -> tuple[int, float, int]:
        rank = RANK.get(tile["priority"] or "", 0)
        deadline = tile["deadline"]
        left = (deadline - now).total_seconds() if deadline is not None else float("inf")
        if tile["status"] in ("step_due", "unshowable"):
            left = float("-inf")  # due now (or unknown): before any countdown
        return (-rank, left, tile["id"])

    return sorted(tiles, key=key)


# --- the sign-offs: what the physician approves and the pharmacist verifies ---------------------


@dataclass(frozen=True)
class PlanRow:
    number: int
    bag: str  # "1" or "—" for dose steps
    rate: str  # "2 mL/h" or "—"
    minutes: str
    dose: str
    cumulative: str
    note: str  # "inserted", "edited", "runs the rest of bag 3", …


@dataclass(frozen=True)
class PlanTable:
    rows: tuple[PlanRow, ...]
    total_minutes: str
    unit: str


def plan_table(view: SessionView) -> PlanTable:
    """The plan as it will run from step 1: each step's dose and the total after it, the last
    step completing the target exactly (the arithmetic is the protocol engine's; this only
    lays it out)."""
    steps = view.plan.steps
    bags = {b.number: b for b in view.plan.bags}
    unit = view.unit
    target = view.target_dose
    cumulative = Decimal(0)
    total = Decimal(0)
    rows = []
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        dose = step.dose if step.dose is not None and not last else target - cumulative
        if step.minutes is not None:
            minutes = step.minutes
        elif step.solution is not None:
            assert step.rate_ml_h is not None  # an infusion step always has its pump rate
            volume = dose / bags[step.solution].concentration
            minutes = volume / step.rate_ml_h * 60
        else:
            minutes = Decimal(0)
        cumulative += dose
        total += minutes
        note = {"inserted": "inserted", "edited": "edited"}.get(step.origin, "")
        if last and step.solution is not None:
            note = f"runs the rest of bag {step.solution}"
        elif last:
            note = "the rest of the target"
        rows.append(
            PlanRow(
                i + 1,
                str(step.solution) if step.solution is not None else "—",
                f"{_trim(step.rate_ml_h)} mL/h" if step.rate_ml_h is not None else "—",
                amount(minutes, 1),
                amount(dose, 4),
                amount(cumulative, 4),
                note,
            )
        )
    return PlanTable(tuple(rows), amount(total, 1), unit)


@dataclass(frozen=True)
class BagRecipe:
    number: int
    label: str  # 1/100, 1/10, final
    amount: str  # drug in the bag, with its unit
    volume: str  # mL
    concentration: str  # per mL, with its unit
    arithmetic: str  # how the concentration follows


def bag_recipes(view: SessionView) -> list[BagRecipe]:
    unit = view.unit
    target = view.target_dose
    steps = view.plan.steps
    final = steps[-1].solution if steps else None
    out = []
    for bag in view.plan.bags:
        volume = bag.volume_ml
        concentration = bag.concentration
        drug = concentration * volume
        if bag.number == final:
            before = sum(
                (s.dose for s in steps[:-1] if s.solution != final and s.dose),
                Decimal(0),
            )
            arithmetic = (
                f"({amount(target, 3)} {unit} target − {amount(before, 4)} {unit} given by the "
                f"earlier bags) ÷ {_trim(volume)} mL = {amount(concentration, 4)} {unit}/mL: "
                "all of this bag brings the total to the target"
            )
        else:
            full = target / volume
            arithmetic = (
                f"{bag.label} of full strength: {amount(target, 3)} {unit} ÷ "
                f"{_trim(volume)} mL = {amount(full, 4)} {unit}/mL, × {bag.label} = "
                f"{amount(concentration, 4)} {unit}/mL"
                if "/" in bag.label
                else f"{amount(drug, 4)} {unit} ÷ {_trim(volume)} mL"
            )
        out.append(
            BagRecipe(
                bag.number,
                bag.label,
                f"{amount(drug, 4)} {unit}",
                f"{_trim(volume)} mL",
                f"{amount(concentration, 4)} {unit}/mL",
                f"{arithmetic}; {amount(concentration, 4)} {unit}/mL × {_trim(volume)} mL = "
                f"{amount(drug, 4)} {unit} in the bag",
            )
        )
    return out
