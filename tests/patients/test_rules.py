"""Pure checks of a patient record, and ages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.patients import rules
from app.patients.rules import PatientError, age_in_years

TODAY = date(2031, 3, 4)


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2020, 5, 17), date(2020, 5, 17), 0),
        (date(2020, 5, 17), date(2021, 5, 16), 0),
        (date(2020, 5, 17), date(2021, 5, 17), 1),
        (date(1950, 12, 31), date(2031, 1, 1), 80),
        (date(2008, 2, 29), date(2009, 2, 28), 0),  # no 29 February in 2009: 1 March counts
        (date(2008, 2, 29), date(2009, 3, 1), 1),
        (date(2008, 2, 29), date(2012, 2, 29), 4),
        (date(2015, 3, 4), TODAY, 16),
    ],
)
def test_age_in_years(born: date, on: date, age: int) -> None:
    assert age_in_years(born, on) == age


def test_age_before_birth_and_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_in_years(date(2020, 1, 2), date(2020, 1, 1))
    with pytest.raises(TypeError):
        age_in_years(datetime(2020, 1, 1), date(2021, 1, 1))


def _birthday(born: date, year: int) -> date:
    """The day someone born on ``born`` has their birthday in ``year``."""
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 3, 1)


@given(
    st.dates(min_value=date(1890, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=50_000),
)
def test_age_counts_the_birthdays_reached(born: date, days: int) -> None:
    on = born + timedelta(days=days)
    reached = sum(1 for year in range(born.year + 1, on.year + 1) if _birthday(born, year) <= on)
    assert age_in_years(born, on) == reached


@pytest.mark.parametrize(
    ("raw", "mrn"),
    [("AB-123", "AB-123"), (" ab 123 ", "ab123"), ("12\t34", "1234"), ("X" * 32, "X" * 32)],
)
def test_mrns_lose_their_spaces(raw: str, mrn: str) -> None:
    assert rules.check_mrn(raw) == mrn


@pytest.mark.parametrize("raw", ["", "  ", "-1", "AB_1", "AB/1", "É1", "X" * 33, None, 42])
def test_bad_mrns_are_refused(raw: object) -> None:
    with pytest.raises(PatientError) as refused:
        rules.check_mrn(raw)
    assert refused.value.field == "mrn"
    assert refused.value.message.startswith("mrn ")


@pytest.mark.parametrize(
    ("raw", "weight"),
    [
        (Decimal("0.3"), Decimal("0.30")),
        (400, Decimal("400.00")),
        ("61.5", Decimal("61.50")),
        (70.1, Decimal("70.10")),
        ("3.250", Decimal("3.25")),
    ],
)
def test_weights(raw: object, weight: Decimal) -> None:
    assert rules.check_weight(raw) == weight
    assert str(rules.check_weight(raw)) == str(weight)


@pytest.mark.parametrize(
    "raw", [Decimal("0.29"), "400.01", -1, "1e3", "NaN", "Infinity", "", True, "7" * 40, "3.251"]
)
def test_bad_weights_are_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(PatientError) as refused:
        rules.check_weight(raw)
    assert refused.value.field == "weight_kg"
    assert refused.value.message.startswith("weight_kg ")


def test_birth_dates() -> None:
    assert rules.check_birth_date("2031-03-04", today=TODAY) == TODAY
    assert rules.check_birth_date(date(1900, 3, 5), today=TODAY) == date(1900, 3, 5)
    for bad in (
        "2031-03-05",
        date(1900, 3, 4),
        "4/3/2031",
        "",
        None,
        20310304,
        datetime(2000, 1, 1),
    ):
        with pytest.raises(PatientError) as refused:
            rules.check_birth_date(bad, today=TODAY)
        assert refused.value.field == "birth_date"


def test_sex_is_optional_and_from_a_closed_list() -> None:
    assert rules.check_sex(None) is None
    assert rules.check_sex("") is None
    assert rules.check_sex(" Male") == "male"
    with pytest.raises(PatientError, match="sex 'M' is not one of: female, male, other, unknown"):
        rules.check_sex("M")


def test_names_and_history() -> None:
    assert rules.check_name("family_name", "  O'Brien-Ó Dálaigh ") == "O'Brien-Ó Dálaigh"
    with pytest.raises(PatientError, match="given_name must be one line"):
        rules.check_name("given_name", "Ann\x07")
    assert rules.check_allergy_history("  line 1\nline 2  ") == "line 1\nline 2"
    assert rules.check_allergy_history("   ") is None
    for unstorable in ("a\x00b", "a\ud800b"):
        with pytest.raises(PatientError, match="allergy_history must be plain text"):
            rules.check_allergy_history(unstorable)
    with pytest.raises(PatientError, match="family_name must be one line"):
        rules.check_name("family_name", "Lo\udc00ve")


@given(st.dictionaries(st.sampled_from(rules.FIELDS), st.from_type(object) | st.text(), max_size=8))
def test_refusals_are_one_line_and_name_their_field(fields: dict[str, object]) -> None:
    try:
        rules.clean_fields(fields, today=TODAY)
    except PatientError as refused:
        assert refused.message.splitlines() == [refused.message]
        assert refused.field is not None and refused.field in refused.message
