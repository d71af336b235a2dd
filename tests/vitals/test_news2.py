"""NEWS2 (Royal College of Physicians, 2017): every band edge of the chart, worked example sets
scored by hand from the chart, the clinical response, and the alarms the score raises."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.vitals import news2
from app.vitals.rules import evaluate
from app.vitals.thresholds import Thresholds
from tests.vitals.readings import reading

D = Decimal

# (respiration, SpO2, oxygen, systolic, pulse, ACVPU, temperature) -> total, response. Each total
# was added up by hand from the chart in clinical-reference §d, parameter by parameter (shown).
CHART_EXAMPLES = [
    ((16, 97, False, 120, 80, "A", "37.0"), 0, "low"),  # 0+0+0+0+0+0+0
    ((8, 97, False, 120, 80, "A", "37.0"), 3, "low-medium"),  # RR ≤ 8: 3
    ((9, 96, False, 111, 51, "A", "36.1"), 1, "low"),  # RR 9–11: 1
    ((11, 95, False, 110, 50, "A", "36.0"), 5, "medium"),  # 1+1+0+1+1+0+1
    ((12, 94, False, 101, 41, "A", "35.1"), 4, "low"),  # 0+1+0+1+1+0+1
    ((20, 93, False, 100, 90, "A", "38.0"), 4, "low"),  # 0+2+0+2+0+0+0
    ((21, 92, False, 91, 91, "A", "38.1"), 8, "high"),  # 2+2+0+2+1+0+1
    ((24, 91, True, 90, 110, "A", "39.0"), 12, "high"),  # 2+3+2+3+1+0+1
    ((25, 96, False, 219, 111, "A", "39.1"), 7, "high"),  # 3+0+0+0+2+0+2
    ((30, 98, False, 220, 130, "A", "37"), 8, "high"),  # 3+0+0+3+2+0+0
    ((18, 97, False, 130, 131, "A", "37"), 3, "low-medium"),  # pulse ≥ 131: 3
    ((18, 97, False, 130, 40, "A", "37"), 3, "low-medium"),  # pulse ≤ 40: 3
    ((18, 97, False, 130, 80, "C", "37"), 3, "low-medium"),  # new confusion: 3
    ((18, 97, False, 130, 80, "V", "37"), 3, "low-medium"),
    ((18, 97, False, 130, 80, "P", "37"), 3, "low-medium"),
    ((18, 97, False, 130, 80, "U", "37"), 3, "low-medium"),
    ((18, 97, True, 130, 80, "A", "37"), 2, "low"),  # oxygen: 2
    ((18, 97, False, 130, 80, "A", "35.0"), 3, "low-medium"),  # ≤ 35.0: 3
    ((18, 97, False, 130, 80, "A", "35.05"), 1, "low"),  # above 35.0, up to 36.0: 1
    ((18, 97, False, 130, 80, "A", "36.05"), 0, "low"),
    ((18, 97, False, 130, 80, "A", "38.05"), 1, "low"),
    ((22, 94, True, 105, 115, "A", "38.5"), 9, "high"),  # 2+1+2+1+2+0+1
    ((10, 95, False, 95, 45, "A", "35.5"), 6, "medium"),  # 1+1+0+2+1+0+1
    ((14, 100, False, 160, 100, "A", "37.5"), 1, "low"),  # 0+0+0+0+1+0+0
    ((23, 94, False, 105, 105, "A", "37.8"), 5, "medium"),  # 2+1+0+1+1+0+0
    ((28, 89, True, 85, 125, "V", "39.5"), 18, "high"),  # 3+3+2+3+2+3+2
]


def values(rr: int, spo2: int, oxygen: bool, sbp: int, hr: int, acvpu: str, temp: str) -> dict:
    return {
        "respiratory_rate": D(rr),
        "spo2": D(spo2),
        "supplemental_oxygen": oxygen,
        "systolic_bp": D(sbp),
        "heart_rate": D(hr),
        "consciousness": acvpu,
        "temperature_c": D(temp),
    }


@pytest.mark.parametrize(("given_values", "total", "response"), CHART_EXAMPLES)
def test_worked_examples_from_the_chart(given_values: tuple, total: int, response: str) -> None:
    score = news2.score(values(*given_values))
    assert score.total == total
    assert score.response == response
    assert not score.partial
    assert len(score.scores) == 7


@pytest.mark.parametrize(
    ("parameter", "edges"),
    [
        # (value, points) at both sides of every band edge of the chart
        (
            "respiratory_rate",
            [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)],
        ),
        ("spo2", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]),
        (
            "systolic_bp",
            [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
        ),
        (
            "heart_rate",
            [
                (40, 3),
                (41, 1),
                (50, 1),
                (51, 0),
                (90, 0),
                (91, 1),
                (110, 1),
                (111, 2),
                (130, 2),
                (131, 3),
            ],
        ),
        (
            "temperature_c",
            [
                ("35.0", 3),
                ("35.1", 1),
                ("36.0", 1),
                ("36.1", 0),
                ("38.0", 0),
                ("38.1", 1),
                ("39.0", 1),
                ("39.1", 2),
            ],
        ),
    ],
)
def test_every_band_edge(parameter: str, edges: list[tuple[Any, int]]) -> None:
    for value, points in edges:
        assert news2.band_points(parameter, D(str(value))) == points, (parameter, value)


def test_a_set_without_every_parameter_is_a_lower_bound_and_says_so() -> None:
    score = news2.score({"respiratory_rate": D(26), "spo2": D(97), "heart_rate": D(80)})
    assert score.total == 3
    assert score.partial
    assert score.missing == ("supplemental_oxygen", "systolic_bp", "consciousness", "temperature_c")
    assert score.text() == (
        "NEWS2 at least 3: urgent ward-based review (a single parameter scores 3) "
        "(not recorded: air or oxygen, systolic BP, consciousness, temperature)"
    )
    full = news2.score(values(23, 94, False, 105, 105, "A", "37.8"))
    assert full.text() == "NEWS2 5: urgent response"


def test_adults_only() -> None:
    assert news2.applies_to(None)
    assert news2.applies_to(16) and news2.applies_to(D("16.0"))
    assert not news2.applies_to(D("15.99"))
    assert not news2.applies_to(4)


def test_a_stored_set_is_scored_from_its_measured_values() -> None:
    stored = {
        "systolic_bp": {"status": "measured", "value": "85"},
        "heart_rate": {"status": "unable_to_obtain", "reason": "moving"},
        "respiratory_rate": {"status": "measured", "value": "22"},
        "spo2": {"status": "measured", "value": "95"},
        "consciousness": "A",
        "supplemental_oxygen": True,
        "symptoms": [],
        "note": "",
    }
    score = news2.score(news2.values_of_stored(stored))
    assert score.total == 3 + 2 + 1 + 2  # SBP, RR, SpO2, oxygen
    assert score.missing == ("heart_rate", "temperature_c")


# --- the alarms NEWS2 raises, through the rules ------------------------------------------------


def test_five_is_urgent_review_seven_an_emergency_and_a_single_three_urgent_review() -> None:
    limits = Thresholds()
    # 23/94/air/105/105/A/37.8 = 5: MEDIUM
    five = reading(
        respiratory_rate=23,
        spo2=94,
        systolic_bp=105,
        heart_rate=105,
        temperature_c="37.8",
        consciousness="A",
        supplemental_oxygen=False,
    )
    result = evaluate(five, None, limits, age_years=50)
    assert result.news2 is not None and result.news2.total == 5
    (scored,) = [f for f in result.findings if f.field == "news2"]
    assert (scored.priority, scored.condition) == ("MEDIUM", "news2_urgent_review")
    assert scored.message == "NEWS2 5 (at or above 5: urgent review)"
    # 7: HIGH, which opens a reaction
    seven = reading(
        respiratory_rate=25,
        spo2=96,
        systolic_bp=150,
        heart_rate=111,
        temperature_c="39.1",
        consciousness="A",
        supplemental_oxygen=False,
    )
    result = evaluate(seven, None, limits, age_years=50)
    (scored,) = [f for f in result.findings if f.field == "news2"]
    assert (scored.priority, scored.condition, scored.value) == ("HIGH", "news2_emergency", 7)
    assert result.meets_reaction_criteria
    # a single 3 (new confusion) alone: MEDIUM
    confused = reading(consciousness="C", supplemental_oxygen=False, temperature_c="37")
    result = evaluate(confused, None, limits, age_years=50)
    (scored,) = result.findings
    assert scored.message == "NEWS2 3 (consciousness scores 3: urgent review)"
    assert scored.priority == "MEDIUM"


def test_four_without_a_three_raises_nothing_and_the_physician_may_move_the_threshold() -> None:
    four = reading(spo2=93, systolic_bp=100, consciousness="A", supplemental_oxygen=False)
    assert evaluate(four, None, Thresholds(), age_years=50).findings == ()
    lower = Thresholds().with_overrides({"news2_medium_score": 4})
    (scored,) = evaluate(four, None, lower, age_years=50).findings
    assert scored.condition == "news2_urgent_review"


def test_children_get_no_news2() -> None:
    seven = reading(respiratory_rate=25, spo2=96, heart_rate=111, temperature_c="39.1")
    result = evaluate(seven, None, Thresholds(), age_years=10)
    assert result.news2 is None
    assert not any(f.field == "news2" for f in result.findings)


@given(
    st.integers(2, 80),
    st.integers(40, 100),
    st.booleans(),
    st.integers(30, 300),
    st.integers(20, 300),
    st.sampled_from(list(news2.ACVPU)),
    st.decimals(25, 45, places=1),
)
def test_the_total_is_the_sum_of_seven_scores_of_0_to_3(
    rr: int, spo2: int, oxygen: bool, sbp: int, hr: int, acvpu: str, temp: Decimal
) -> None:
    score = news2.score(values(rr, spo2, oxygen, sbp, hr, acvpu, str(temp)))
    assert 0 <= score.total <= 20
    assert all(0 <= s.points <= 3 for s in score.scores)
    assert score.total == sum(s.points for s in score.scores)
    assert (score.response == "high") == (score.total >= 7)
