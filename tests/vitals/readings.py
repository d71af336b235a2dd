"""Vitals sets for the alarm-rule and grading tests, built through validation so that every one
is a possible reading, and the Hypothesis strategies that draw them."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import strategies as st

from app.vitals.thresholds import ORDERED_THRESHOLDS, THRESHOLD_SPECS, Thresholds
from app.vitals.validation import (
    CORE_FIELDS,
    DECIMAL_PLACES,
    MEASURED_FIELDS,
    NOT_MEASURED,
    POSSIBLE_RANGES,
    SYMPTOMS,
    VitalsReading,
    validate_vitals,
)

# Diastolic low enough that systolic may go down to 30 in the boundary tables.
BASE: dict[str, Any] = {
    "systolic_bp": 120,
    "diastolic_bp": 25,
    "heart_rate": 80,
    "spo2": 97,
    "respiratory_rate": 16,
}
UNABLE: dict[str, str] = {"status": "unable_to_obtain", "reason": "cuff does not fit"}
REFUSED: dict[str, str] = {"status": "refused", "reason": "patient declined"}


def reading(**values: Any) -> VitalsReading:
    """BASE with ``values`` on top; a value of None leaves the field out."""
    raw = {**BASE, **values}
    raw = {name: value for name, value in raw.items() if value is not None}
    result = validate_vitals(raw, spirometry_required=False)
    assert isinstance(result, VitalsReading), result
    return result


# --- Hypothesis ---------------------------------------------------------------------------------


def _value(name: str, low: Decimal | None = None) -> st.SearchStrategy[Decimal]:
    lowest, highest, _unit = POSSIBLE_RANGES[name]
    return st.decimals(
        min_value=max(lowest, low) if low is not None else lowest,
        max_value=highest,
        places=DECIMAL_PLACES[name],
    )


@st.composite
def readings(
    draw: st.DrawFn,
    *,
    measured_only: bool = False,
    sbp_min: Decimal | None = None,
    spo2_above: Decimal | None = None,
    with_symptoms: bool = True,
) -> VitalsReading:
    """Any possible reading. ``measured_only`` measures every field; ``sbp_min`` and
    ``spo2_above`` keep systolic at or above and SpO2 above a limit."""
    raw: dict[str, Any] = {}
    for name in MEASURED_FIELDS:
        choices = ["measured"] if measured_only else ["measured", *NOT_MEASURED]
        if name not in CORE_FIELDS and not measured_only:
            choices.append("absent")
        status = draw(st.sampled_from(choices))
        if status == "absent":
            continue
        if status != "measured":
            raw[name] = {"status": status, "reason": "not possible now"}
            continue
        if name == "systolic_bp":
            low = max((sbp_min or Decimal(0)).to_integral_value(ROUND_CEILING), Decimal(31))
            raw[name] = draw(_value(name, low))
        elif name == "diastolic_bp":
            systolic = raw.get("systolic_bp")
            if isinstance(systolic, Decimal):
                raw[name] = draw(
                    st.decimals(min_value=10, max_value=min(systolic - 1, Decimal(200)), places=0)
                )
            else:
                raw[name] = draw(_value(name))
        elif name == "spo2" and spo2_above is not None:
            raw[name] = draw(_value(name, (spo2_above + 1).to_integral_value(ROUND_FLOOR)))
        else:
            raw[name] = draw(_value(name))
    if with_symptoms:
        raw["symptoms"] = draw(st.lists(st.sampled_from(list(SYMPTOMS)), max_size=6))
    result = validate_vitals(raw, spirometry_required=False)
    assert isinstance(result, VitalsReading), result
    return result


AGES = st.none() | st.integers(min_value=0, max_value=110) | st.decimals(0, 110, places=2)


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    """The defaults, with any valid physician overrides."""
    names = draw(st.lists(st.sampled_from(list(THRESHOLD_SPECS)), unique=True, max_size=5))
    values = {
        name: draw(st.decimals(THRESHOLD_SPECS[name].low, THRESHOLD_SPECS[name].high, places=1))
        for name in names
    }
    for milder, graver in ORDERED_THRESHOLDS:
        default = Thresholds()
        low = values.get(milder, getattr(default, milder))
        high = values.get(graver, getattr(default, graver))
        if low >= high:  # a MEDIUM fall must stay below its HIGH one: keep both defaults
            values.pop(milder, None)
            values.pop(graver, None)
    return Thresholds().with_overrides(values)
