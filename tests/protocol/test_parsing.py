from __future__ import annotations

from decimal import Decimal

import pytest

from app.protocol.model import ProtocolError
from app.protocol.parsing import (
    ProtocolRequest,
    build_from_request,
    parse_bag_override,
    parse_fraction,
)


def test_hindawi_style_bag_recipes_are_accepted() -> None:
    # Rituximab 675 mg with 50-mL bags at 0.03 and 0.3 mg/mL (clinical reference §a.4).
    protocol = build_from_request(
        ProtocolRequest(
            template="brigham-12",
            dose="675",
            unit="mg",
            bags=["1:volume=50,amount=1.5", "2:volume=50,amount=15"],
        )
    )
    assert protocol.solutions[0].concentration == Decimal("0.03")
    assert protocol.solutions[1].concentration == Decimal("0.3")
    assert protocol.solutions[0].overridden and not protocol.solutions[2].overridden
    assert protocol.steps[0].dose == Decimal("0.015")  # as printed in the Hindawi table
    assert round(protocol.steps[7].cumulative_dose, 2) == Decimal("5.90")  # as printed after step 8
    assert protocol.steps[-1].cumulative_dose == 675


def test_a_final_bag_with_more_drug_than_needed_is_not_emptied() -> None:
    protocol = build_from_request(
        ProtocolRequest(template="brigham-12", dose="2000", unit="mg", bags=["3:amount=2000"])
    )
    assert protocol.steps[-1].cumulative_dose == 2000
    assert protocol.steps[-1].volume_ml < Decimal("232.5")


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (ProtocolRequest("brigham-12", dose="-5", unit="mg"), "dose", "greater than 0"),
        (ProtocolRequest("brigham-12", dose="0", unit="mg"), "dose", "greater than 0"),
        (ProtocolRequest("brigham-12", dose="abc", unit="mg"), "dose", "must be a number"),
        (ProtocolRequest("brigham-12", dose="NaN", unit="mg"), "dose", "must be a number"),
        (
            ProtocolRequest("brigham-12", dose="100", unit="mg", bag_volume="0"),
            "bag_volume",
            "greater than 0",
        ),
        (ProtocolRequest("brigham-12", dose="100", unit="ml"), "unit", "unknown unit"),
        (ProtocolRequest("brigham-99", dose="100", unit="mg"), "template", "unknown template"),
        (ProtocolRequest(None, dose="100", unit="mg"), "template", "unknown template"),
        (
            ProtocolRequest("brigham-12", dose="100", unit="mg", bags=["4:volume=50"]),
            "bags",
            "bag 4 does not exist",
        ),
        (
            ProtocolRequest("brigham-12", dose="100", unit="mg", bags=["2:colour=red"]),
            "bags",
            "volume=ML",
        ),
        (ProtocolRequest("brigham-12", dose="100", unit="mg", bags=["x"]), "bags", "N:volume=ML"),
        (
            ProtocolRequest("brigham-12", dose="100", unit="mg", bags=["1:volume=1"]),
            "bag_volume",
            "bag 1 holds 1.000 mL",
        ),
        (
            ProtocolRequest("brigham-12", dose="100", unit="mg", doses="1,2"),
            "doses",
            "does not apply",
        ),
        (ProtocolRequest("doses", unit="mg", doses="1,two,3"), "doses", "dose 2 must be a number"),
        (ProtocolRequest("doses", unit="mg", doses="1,2,3", dose="7"), "dose", "add up to 6"),
        (ProtocolRequest("doses", unit="mg", doses="4,2,8"), "steps", "never steps down"),
        (ProtocolRequest("doubling", dose="100", unit="mg", steps="2.5"), "steps", "whole number"),
        (
            ProtocolRequest("doubling", dose="100", unit="mg", steps="16"),
            "steps",
            "use at most 13 steps",
        ),
        (
            ProtocolRequest("doubling", dose="100", unit="mg", start_fraction="1/1"),
            "start_fraction",
            "between 0 and 1",
        ),
        (
            ProtocolRequest("doubling", dose="100", unit="mg", factor="1"),
            "factor",
            "greater than 1",
        ),
    ],
)
def test_bad_input_is_refused_with_a_one_line_reason(
    request_: ProtocolRequest, field: str, message: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        build_from_request(request_)
    assert message in caught.value.message
    assert caught.value.field == field
    assert "\n" not in caught.value.message


def test_fractions_can_be_written_three_ways() -> None:
    for text in ("1/10000", "1:10000", "0.0001", "1/10,000"):
        assert parse_fraction(text, "start fraction", "start_fraction") == Decimal("0.0001")


def test_bag_override_parsing() -> None:
    number, override = parse_bag_override("2: volume=50 , amount=15")
    assert number == 2 and override.volume_ml == 50 and override.amount == 15
    with pytest.raises(ProtocolError, match="twice"):
        parse_bag_override("2:volume=50,volume=60")
