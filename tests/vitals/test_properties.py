"""Vitals validation as properties (Hypothesis): the possible ranges hold exactly at their edges,
every accepted value comes back unchanged, and every refusal is one line naming its field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from app.vitals.validation import (
    DECIMAL_PLACES,
    MEASURED_FIELDS,
    POSSIBLE_RANGES,
    SYMPTOMS,
    VitalsReading,
    VitalsRefusal,
    validate_vitals,
)

# Lowest possible diastolic and highest possible systolic, so the field under test can take any
# possible value without meeting the "diastolic below systolic" rule.
BASE: dict[str, Any] = {
    "systolic_bp": 300,
    "diastolic_bp": 10,
    "heart_rate": 84,
    "spo2": 97,
    "respiratory_rate": 16,
}
FIELDS = st.sampled_from(MEASURED_FIELDS)


@st.composite
def possible(draw: st.DrawFn) -> tuple[str, Decimal]:
    name = draw(FIELDS)
    low, high, _unit = POSSIBLE_RANGES[name]
    value = draw(st.decimals(min_value=low, max_value=high, places=DECIMAL_PLACES[name]))
    return name, value


@st.composite
def impossible(draw: st.DrawFn) -> tuple[str, Decimal]:
    name = draw(FIELDS)
    low, high, _unit = POSSIBLE_RANGES[name]
    places = draw(st.integers(min_value=0, max_value=4))
    step = Decimal(1).scaleb(-places)
    # Up to 1e20 either way: typed text stays within the length a number may have.
    far = Decimal("1e20")
    below = st.decimals(min_value=-far, max_value=low - step, places=places)
    above = st.decimals(min_value=high + step, max_value=far, places=places)
    return name, draw(below | above)


def spelled(value: Decimal) -> st.SearchStrategy[object]:
    """The ways a client may send the same number."""
    forms: list[object] = [value, str(value), {"status": "measured", "value": str(value)}]
    if value == value.to_integral_value():
        forms.append(int(value))
    if Decimal(repr(float(value))) == value:
        forms.append(float(value))
    return st.sampled_from(forms)


@given(possible(), st.data())
def test_any_possible_value_is_accepted_and_comes_back_unchanged(
    case: tuple[str, Decimal], data: st.DataObject
) -> None:
    name, value = case
    sent = data.draw(spelled(value))
    result = validate_vitals({**BASE, name: sent}, spirometry_required=False)
    assert isinstance(result, VitalsReading), result
    assert result.value(name) == value
    assert isinstance(result.value(name), Decimal)
    assert result.status_of(name) == "measured"
    # What as_dict keeps is accepted again as the same reading.
    again = validate_vitals(result.as_dict(), spirometry_required=False)
    assert again == result


@given(impossible(), st.data())
def test_any_impossible_value_is_refused_naming_the_field_and_the_range(
    case: tuple[str, Decimal], data: st.DataObject
) -> None:
    name, value = case
    sent = data.draw(spelled(value))
    result = validate_vitals({**BASE, name: sent}, spirometry_required=False)
    assert isinstance(result, VitalsRefusal), result
    assert result.fields == (name,)
    ((_, message),) = result.problems
    low, high, unit = POSSIBLE_RANGES[name]
    assert message.startswith(f"{name} ")
    assert message.endswith(f"is outside the possible range {low}–{high} {unit}")


@given(FIELDS, st.sampled_from(["unable_to_obtain", "refused"]), st.text(min_size=1, max_size=300))
def test_a_marked_field_keeps_its_reason(name: str, status: str, reason: str) -> None:
    assume(reason.strip() and "\x00" not in reason)
    result = validate_vitals(
        {**BASE, name: {"status": status, "reason": reason}}, spirometry_required=True
    )
    if name not in ("fev1_l", "peak_flow_l_min"):
        assert isinstance(result, VitalsRefusal)
        assert result.fields == ("spirometry",)
        return
    assert isinstance(result, VitalsReading), result
    assert result.value(name) is None
    assert result.status_of(name) == status
    assert result.reasons[name] == reason.strip()


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=60)
    | st.sampled_from(["", " ", "120", "1e999999", "NaN", "-0", "refused", *SYMPTOMS])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["status", "value", "reason", "why"]) | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)
KEYS = st.sampled_from([*MEASURED_FIELDS, "symptoms", "note"]) | st.text(max_size=12)


@given(st.dictionaries(KEYS, JSON_VALUES, max_size=12), st.booleans())
def test_every_refusal_message_is_one_line_and_nothing_raises(
    raw: dict[str, Any], spirometry_required: bool
) -> None:
    result = validate_vitals(raw, spirometry_required=spirometry_required)
    if isinstance(result, VitalsReading):
        return
    assert result.problems
    for field, message in result.problems:
        assert message.splitlines() == [message], message
        assert field.splitlines() == [field] and field
        assert field in message or field == "vitals"
    assert result.message.splitlines() == [result.message]
