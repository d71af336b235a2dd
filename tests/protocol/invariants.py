"""Invariants every computed protocol must satisfy, shared by the property tests."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, localcontext
from itertools import pairwise

from app.protocol.engine import PRECISION
from app.protocol.model import Protocol


def assert_protocol_invariants(protocol: Protocol) -> None:
    with localcontext() as ctx:
        ctx.prec = PRECISION  # the engine's working precision
        _check(protocol)


def _check(protocol: Protocol) -> None:
    steps = protocol.steps
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    # The final step always completes the target, exactly.
    assert steps[-1].cumulative_dose == protocol.target_dose
    assert sum((s.dose for s in steps), Decimal(0)) == protocol.target_dose
    # Doses never decrease along the escalation; everything is positive.
    for before, after in pairwise(steps):
        assert after.dose >= before.dose, (before, after)
        assert after.cumulative_dose > before.cumulative_dose
        assert after.starts_at_minute == before.starts_at_minute + before.minutes
    for step in steps:
        assert step.dose > 0
        assert step.minutes > 0
        if protocol.kind == "infusion":
            assert step.rate_ml_h is not None and step.rate_ml_h > 0
            assert step.volume_ml is not None and step.volume_ml > 0
    assert protocol.total_minutes == sum((s.minutes for s in steps), Decimal(0))
    # A bag never delivers more than it holds, in volume or in drug.
    volume_used: dict[int, Decimal] = defaultdict(Decimal)
    dose_given: dict[int, Decimal] = defaultdict(Decimal)
    for step in steps:
        if step.solution is not None:
            assert step.volume_ml is not None
            volume_used[step.solution] += step.volume_ml
            dose_given[step.solution] += step.dose
    tolerance = Decimal("1e-40")  # 60-digit arithmetic; only quotient rounding can remain
    for solution in protocol.solutions:
        assert solution.volume_ml > 0 and solution.concentration > 0 and solution.amount > 0
        assert volume_used[solution.number] <= solution.volume_ml
        assert dose_given[solution.number] <= solution.amount + tolerance
