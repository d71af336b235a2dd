"""The generator must reproduce published tables to the precision they were printed with."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from app.protocol.templates import BrighamParameters, DosesParameters, build

CASES_FILE = Path(__file__).parent / "cases" / "published-tables.json"
CASES = {case["id"]: case for case in json.loads(CASES_FILE.read_text(), parse_float=Decimal)}

# Decimals printed in the source table (UpToDate ceftazidime graphic): JSON drops trailing zeros,
# so "0.040" arrives as 0.04; these minima restore the printed precision.
PRINTED_DECIMALS = {
    "rate_ml_h": 1,
    "volume_ml": 2,
    "dose": 3,
    "cumulative_dose": 3,
    "concentration_mg_per_ml": 3,
    "total_minutes": 2,
}


def decimals_of(printed: Decimal | int) -> int:
    exponent = Decimal(printed).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def assert_matches_printed(ours: Decimal, printed: Decimal | int, field: str) -> None:
    """|ours - printed| <= half a unit in the last printed place."""
    places = max(decimals_of(printed), PRINTED_DECIMALS.get(field, 0))
    tolerance = Decimal("0.5").scaleb(-places)
    assert abs(ours - Decimal(printed)) <= tolerance, (field, ours, printed, tolerance)


def test_ceftazidime_2000_mg_matches_the_uptodate_table() -> None:
    case = CASES["uptodate-ceftazidime-2000mg-12step"]
    protocol = build(
        "brigham-12",
        BrighamParameters(
            target_dose=Decimal(case["target_dose"]),
            unit=case["unit"],
            final_rate_ml_h=Decimal(case["final_rate_ml_h"]),
            bag_volume_ml=Decimal(case["bag_volume_ml"]),
        ),
    )
    assert len(protocol.solutions) == len(case["solutions"]) == 3
    for ours, printed in zip(protocol.solutions, case["solutions"], strict=True):
        assert ours.volume_ml == printed["volume_ml"]
        assert_matches_printed(
            ours.concentration, printed["concentration_mg_per_ml"], "concentration_mg_per_ml"
        )
    # Bags 1 and 2 hold exactly what was printed; bag 3 is labelled 2000 mg but is made weaker so
    # that emptying it completes the target: (2000 - 15.74) mg in 250 mL.
    assert protocol.solutions[0].amount == case["solutions"][0]["total_mg_in_bag"]
    assert protocol.solutions[1].amount == case["solutions"][1]["total_mg_in_bag"]
    assert protocol.solutions[2].amount == Decimal("1984.26")

    assert len(protocol.steps) == len(case["steps"]) == 12
    for ours, printed in zip(protocol.steps, case["steps"], strict=True):
        assert ours.number == printed["step"]
        assert ours.solution == printed["solution"]
        for field in ("rate_ml_h", "minutes", "volume_ml", "dose", "cumulative_dose"):
            assert_matches_printed(getattr(ours, field), printed[field], field)
    # Printed "339.37 min": the source truncates 339.375.
    assert protocol.total_minutes == Decimal("339.375")
    assert_matches_printed(protocol.total_minutes, case["total_minutes"], "total_minutes")
    assert protocol.steps[-1].cumulative_dose == Decimal(2000)


def test_wendel_oral_penicillin_table_is_reproduced_with_doses() -> None:
    case = CASES["cdc1998-wendel-oral-penicillinV"]
    doses = tuple(Decimal(step["dose"]) for step in case["steps"])
    protocol = build(
        "doses", DosesParameters(doses=doses, unit=case["unit"], interval_minutes=Decimal(15))
    )
    assert protocol.target_dose == case["target_dose"]
    assert len(protocol.steps) == 14
    for ours, printed in zip(protocol.steps, case["steps"], strict=True):
        assert ours.number == printed["step"]
        assert ours.dose == printed["dose"]
        assert ours.cumulative_dose == printed["cumulative_dose"]
        assert ours.rate_ml_h is None and ours.volume_ml is None and ours.solution is None
    # With 15-minute intervals the last dose is given at 195 min (reference note).
    assert protocol.steps[-1].starts_at_minute == 195


@pytest.mark.parametrize(
    ("final_rate", "last_volume", "last_minutes", "total"),
    [
        # BWH platinum example at 75 mL/h (clinical reference §a.1, DERIVED figures).
        (Decimal(75), Decimal("233.59375"), Decimal("186.875"), Decimal("351.875")),
        (Decimal(80), Decimal("232.5"), Decimal("174.375"), Decimal("339.375")),
    ],
)
def test_final_rate_scales_the_whole_ladder(
    final_rate: Decimal, last_volume: Decimal, last_minutes: Decimal, total: Decimal
) -> None:
    protocol = build(
        "brigham-12", BrighamParameters(Decimal(400), "mg", final_rate_ml_h=final_rate)
    )
    assert protocol.steps[-1].volume_ml == last_volume
    assert protocol.steps[-1].minutes == last_minutes
    assert protocol.total_minutes == total


def test_carboplatin_400_mg_at_75_ml_h_matches_the_bwh_platinum_sheet() -> None:
    protocol = build(
        "brigham-12", BrighamParameters(Decimal(400), "mg", final_rate_ml_h=Decimal(75))
    )
    bag1_volume = sum(s.volume_ml for s in protocol.steps if s.solution == 1)
    bag2_volume = sum(s.volume_ml for s in protocol.steps if s.solution == 2)
    assert round(bag1_volume, 2) == Decimal("8.67")
    assert round(bag2_volume, 2) == Decimal("17.58")
    # "Total mg per bag 397.049" and 1.588 mg/mL, as printed.
    assert round(protocol.solutions[2].amount, 3) == Decimal("397.049")
    assert round(protocol.solutions[2].concentration, 3) == Decimal("1.588")


@pytest.mark.parametrize(
    ("template", "total"), [("brigham-16", "399.375"), ("brigham-8", "279.375")]
)
def test_other_brigham_templates_have_the_reported_total_time(template: str, total: str) -> None:
    protocol = build(template, BrighamParameters(Decimal(500), "mg"))
    assert protocol.total_minutes == Decimal(total)
    assert protocol.steps[-1].cumulative_dose == 500
    assert any("not confirmed" in note for note in protocol.notes)
