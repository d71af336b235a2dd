"""The dose ledger: what the patient actually received, from actual times and rates. Pure.

A segment is a stretch of time at one rate from one bag (or one dose given by mouth). Pump
changes, pauses and resumes start and stop segments. During `step_due` the pump still runs at the
old rate until the nurse confirms the change, and that counts. The last infusion step is
volume-limited (the pump is programmed with the volume still to give), so the target is never
overshot by the last step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from app.session.plan import Plan

PRECISION = 60
ZERO = Decimal(0)


@dataclass(frozen=True)
class Segment:
    step: int  # index into plan.steps
    solution: int | None
    rate_ml_h: Decimal | None
    started_at: datetime
    stopped_at: datetime | None = None
    # Dose steps: the dose given at started_at. Infusion: None.
    dose_given: Decimal | None = None
    # Last infusion step: the pump stops by itself after this volume.
    volume_limit_ml: Decimal | None = None


@dataclass(frozen=True)
class SegmentDelivery:
    segment: Segment
    volume_ml: Decimal | None
    dose: Decimal


def hours_between(start: datetime, end: datetime) -> Decimal:
    seconds = Decimal((end - start).total_seconds())
    return max(seconds, ZERO) / Decimal(3600)


def deliver(
    plan: Plan, segment: Segment, until: datetime, left_in_bag_ml: Decimal | None = None
) -> SegmentDelivery:
    """What one segment gave. A pump stops when its volume limit is reached or its bag is
    empty, whichever comes first."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if segment.solution is None:
            return SegmentDelivery(segment, None, segment.dose_given or ZERO)
        assert segment.rate_ml_h is not None
        end = segment.stopped_at or until
        volume = segment.rate_ml_h * hours_between(segment.started_at, end)
        if segment.volume_limit_ml is not None:
            volume = min(volume, segment.volume_limit_ml)
        if left_in_bag_ml is not None:
            volume = max(min(volume, left_in_bag_ml), ZERO)
        return SegmentDelivery(segment, volume, volume * plan.bag(segment.solution).concentration)


@dataclass(frozen=True)
class Ledger:
    deliveries: tuple[SegmentDelivery, ...]
    delivered: Decimal
    volume_used: dict[int, Decimal]

    def volume_of_step(self, step: int) -> Decimal:
        return sum((d.volume_ml or ZERO for d in self.deliveries if d.segment.step == step), ZERO)


def ledger(plan: Plan, segments: tuple[Segment, ...], until: datetime) -> Ledger:
    with localcontext() as ctx:
        ctx.prec = PRECISION
        used: dict[int, Decimal] = defaultdict(Decimal)
        deliveries = []
        for segment in segments:
            left = None
            if segment.solution is not None:
                left = plan.bag(segment.solution).volume_ml - used[segment.solution]
            delivery = deliver(plan, segment, until, left)
            if segment.solution is not None and delivery.volume_ml is not None:
                used[segment.solution] += delivery.volume_ml
            deliveries.append(delivery)
        return Ledger(tuple(deliveries), sum((d.dose for d in deliveries), ZERO), dict(used))


def remaining_dose(plan: Plan, delivered: Decimal) -> Decimal:
    return plan.target_dose - delivered


def final_step_volume(plan: Plan, index: int, delivered: Decimal) -> Decimal:
    """Volume the last infusion step must give so that the total is exactly the target."""
    step = plan.steps[index]
    assert step.solution is not None
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return remaining_dose(plan, delivered) / plan.bag(step.solution).concentration


def planned_minutes(plan: Plan, index: int, delivered_before: Decimal) -> Decimal:
    """How long step `index` runs when it starts with `delivered_before` already given."""
    step = plan.steps[index]
    if not plan.is_last(index) or not step.is_infusion:
        assert step.minutes is not None
        return step.minutes
    assert step.rate_ml_h is not None
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return final_step_volume(plan, index, delivered_before) / step.rate_ml_h * 60


def projected_total(plan: Plan, start_index: int, delivered: Decimal) -> list[Decimal]:
    """Cumulative dose after each remaining non-final step if run as planned from
    `start_index` — to refuse a plan whose steps would pass the target before the last one."""
    cumulative = delivered
    out = []
    for index in range(start_index, len(plan.steps) - 1):
        dose = plan.planned_dose(index)
        assert dose is not None
        cumulative += dose
        out.append(cumulative)
    return out


@dataclass(frozen=True)
class ProjectedStep:
    index: int  # plan position (0-based)
    dose: Decimal
    cumulative: Decimal
    minutes: Decimal
    starts_after: Decimal  # minutes from now, if every step runs as planned


def projection(plan: Plan, start_index: int, delivered: Decimal) -> list[ProjectedStep]:
    """The rest of the plan from `start_index` as it would run: each step's dose, the total
    after it and its minutes; the last step gives exactly what the target still needs."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        out = []
        cumulative, elapsed = delivered, ZERO
        for index in range(start_index, len(plan.steps)):
            dose = plan.planned_dose(index)
            if dose is None:
                dose = remaining_dose(plan, cumulative)
            minutes = planned_minutes(plan, index, cumulative)
            cumulative += dose
            out.append(ProjectedStep(index, dose, cumulative, minutes, elapsed))
            elapsed += minutes
        return out
