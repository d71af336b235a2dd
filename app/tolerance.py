"""The tolerance window after the last full dose, per drug: the value types and their rules.

Part of the kernel, next to the settings that build it: configuration reads the windows from
``STEPWISE_TOLERANCE_*`` (app.config.parse_windows) and the patient history
(app/patients/history.py) places a planned dose in them. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

DEFAULT_PERSIST_HOURS = Decimal(24)
DEFAULT_UNCERTAIN_HOURS = Decimal(48)
MAX_WINDOW_HOURS = Decimal(24 * 30)


def hours_text(value: Decimal) -> str:
    """12.50 -> '12.5', 24 -> '24': hours as a clinician writes them."""
    return f"{value.normalize():f}"


def drug_key(name: str) -> str:
    """Drug names compare without case or extra spaces: 'Carboplatin ' is 'carboplatin'."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ToleranceWindow:
    """Hours after the last full dose: tolerance may persist before ``persist_hours``, is
    uncertain up to ``uncertain_hours`` and lost after."""

    persist_hours: Decimal = DEFAULT_PERSIST_HOURS
    uncertain_hours: Decimal = DEFAULT_UNCERTAIN_HOURS

    def __post_init__(self) -> None:
        for hours in (self.persist_hours, self.uncertain_hours):
            if not hours.is_finite() or not 0 < hours <= MAX_WINDOW_HOURS:
                raise ValueError(f"tolerance hours must be above 0 and at most {MAX_WINDOW_HOURS}")
        if self.uncertain_hours < self.persist_hours:
            raise ValueError(
                f"the uncertain band ({hours_text(self.uncertain_hours)} h) cannot end before "
                f"tolerance stops persisting ({hours_text(self.persist_hours)} h)"
            )


@dataclass(frozen=True)
class TolerancePolicy:
    default: ToleranceWindow = field(default_factory=ToleranceWindow)
    by_drug: Mapping[str, ToleranceWindow] = field(default_factory=dict)

    def window_for(self, drug: str) -> ToleranceWindow:
        return self.by_drug.get(drug_key(drug), self.default)
