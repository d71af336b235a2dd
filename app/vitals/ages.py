"""A child's limits by age: the low systolic pressure and the upper heart and respiratory rates
of each age band. Pure: no I/O, no clock, no database; ages are exact ``Decimal`` years.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

_D = Decimal

ADULT_YEARS: Final = Decimal(18)  # the adult limits apply from this age


# --- children's low systolic pressure -------------------------------------------------------------


@dataclass(frozen=True)
class ChildBand:
    """Ages from ``from_months`` (inclusive) to ``to_months`` (exclusive): the low systolic limit
    is the threshold ``base``, plus ``per_year`` times the completed years of age when given."""

    from_months: int
    to_months: int
    base: str
    per_year: str | None
    note: str  # said in each finding's message
    describe: str | None  # the line of Thresholds.describe(); None: said by another band


# Clinical reference §c.4 (anaphylaxis criteria): < 70 mmHg at 1 month–1 year, < 70 + 2 × age
# (years) at 1–10 years, < 90 mmHg at 11–17 years. No limit is published under 1 month: the
# 1 month–1 year limit is used, and the finding says so. "1–10 years" counts completed years, so
# the limit rises by 2 mmHg on each birthday and reaches 90 mmHg at 10.
CHILD_SBP_BANDS: Final[tuple[ChildBand, ...]] = (
    ChildBand(
        0,
        1,
        "child_sbp_low_infant_mmhg",
        None,
        "under 1 month: no published limit, the 1 month–1 year limit is used",
        None,
    ),
    ChildBand(
        1,
        12,
        "child_sbp_low_infant_mmhg",
        None,
        "age-specific limit at 1 month–1 year",
        "under 1 year (1 month–1 year; also used under 1 month, where none is published)",
    ),
    ChildBand(
        12,
        132,
        "child_sbp_low_base_mmhg",
        "child_sbp_low_per_year_mmhg",
        "age-specific limit at 1–10 years",
        "at 1–10 years (completed years)",
    ),
    ChildBand(
        132,
        216,  # 18 years: adults
        "child_sbp_low_adolescent_mmhg",
        None,
        "age-specific limit at 11–17 years",
        "at 11–17 years",
    ),
)


def sbp_band_for(age: Decimal | None) -> ChildBand | None:
    """The band of a child's age; None for adults and an unknown age."""
    if age is None:
        return None
    months = completed_months(age)
    return next((b for b in CHILD_SBP_BANDS if b.from_months <= months < b.to_months), None)


def checked_age(age_years: object) -> Decimal | None:
    """A caller's age in years as a Decimal (None: not known); refused when not an age."""
    if age_years is None:
        return None
    if isinstance(age_years, bool) or not isinstance(age_years, int | Decimal):
        raise TypeError(f"age_years must be a Decimal, an int or None, got {age_years!r}")
    age = _D(age_years)
    if not age.is_finite() or age < 0:
        raise ValueError(f"age_years must be a finite number of years, 0 or more, got {age}")
    return age


# --- children's heart and respiratory rates -------------------------------------------------------


@dataclass(frozen=True)
class ChildRateBand:
    """Ages from ``from_months`` (inclusive) to ``to_months`` (exclusive) and the upper limits
    of the normal heart and respiratory rates at that age: a rate above them is a finding."""

    from_months: int
    to_months: int
    heart_rate_max: Decimal
    respiratory_rate_max: Decimal
    words: str


# The Advanced Paediatric Life Support (APLS) normal ranges, as tabulated beside other published
# ranges in Fleming et al., Lancet 2011;377:1011-8, web appendix box 1 (heart rate 110–160 under 1
# year, 100–150 at 1–2, 95–140 at 2–5, 80–120 at 5–12, 60–100 at 12–18; respiratory rate 30–40,
# 25–35, 25–30, 20–25, 15–20). UNCONFIRMED at the primary source: the APLS manual itself was not
# read, and Fleming shows these limits often lie beyond the 99th centile of healthy children.
# They are settings: a physician's threshold for the session replaces them.
CHILD_RATE_BANDS: Final[tuple[ChildRateBand, ...]] = (
    ChildRateBand(0, 12, _D(160), _D(40), "under 1 year"),
    ChildRateBand(12, 24, _D(150), _D(35), "1–2 years"),
    ChildRateBand(24, 60, _D(140), _D(30), "2–5 years"),
    ChildRateBand(60, 144, _D(120), _D(25), "5–12 years"),
    ChildRateBand(144, 216, _D(100), _D(20), "12–17 years"),
)


def completed_months(age: Decimal) -> Decimal:
    """Completed months of an age in years; 7/12 of a year (computed as 0.58333…) is 7 months,
    not 6: a hair is added before cutting, far below a day."""
    return (age * 12 + _MONTH_EPSILON).to_integral_value(rounding=ROUND_FLOOR)


_MONTH_EPSILON: Final = Decimal("1e-9")


def rate_band_for(age: Decimal | None) -> ChildRateBand | None:
    if age is None:
        return None
    months = completed_months(age)
    return next((b for b in CHILD_RATE_BANDS if b.from_months <= months < b.to_months), None)
