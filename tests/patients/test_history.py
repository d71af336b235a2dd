"""History per drug, next-plan suggestions and the tolerance window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.patients import history as H

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


def reaction(number: int = 1, step: int | None = 9, grade: int | None = 1, *symptoms: str):
    return H.PastReaction(number, T0, step, grade, None, symptoms or ("urticaria",))


def session(sid: int = 1, drug: str = "carboplatin", *reactions, last=T0, created=T0):
    return H.PastSession(
        id=sid,
        drug=drug,
        status="completed",
        template="brigham-12",
        target_dose=Decimal(500),
        unit="mg",
        created_at=created,
        last_dose_at=last,
        reactions=tuple(reactions),
        intermediate_edits={9: {"action": "insert", "after": 8, "rate_ml_h": "6.3"}},
    )


def codes(sessions) -> list[tuple[str, object]]:
    return [(s.code, s.template or s.premedications or None) for s in H.suggestions(sessions)]


def test_a_mild_skin_reaction_at_step_k_suggests_a_step_before_k_only() -> None:
    (only,) = H.suggestions((session(1, "carboplatin", reaction(1, 9, 1, "urticaria")),))
    assert only.code == "insert_step"
    assert "between steps 8 and 9" in only.text
    assert only.plan_edit == {"action": "insert", "after": 8, "rate_ml_h": "6.3"}


@pytest.mark.parametrize("grade", [2, 3])
def test_a_moderate_or_severe_reaction_suggests_sixteen_steps(grade: int) -> None:
    found = codes((session(1, "carboplatin", reaction(1, 9, grade, "urticaria")),))
    assert ("template", "brigham-16") in found
    assert (("icu_setting", None) in found) is (grade == 3)


def test_flushing_suggests_aspirin_and_montelukast_and_respiratory_montelukast() -> None:
    flushing = codes((session(1, "x", reaction(1, 5, 1, "flushing")),))
    assert ("premedication", ("aspirin 325 mg PO", "montelukast 10 mg PO")) in flushing
    assert not any(p == ("montelukast 10 mg PO",) for _, p in flushing)
    wheeze = codes((session(1, "x", reaction(1, 5, 2, "wheeze")),))
    assert ("premedication", ("montelukast 10 mg PO",)) in wheeze
    assert not any(p and "aspirin 325 mg PO" in p for _, p in wheeze)  # type: ignore[operator]


def test_a_reaction_at_step_one_cannot_insert_before_it() -> None:
    (only,) = H.suggestions((session(1, "x", reaction(1, 1, 1, "pruritus")),))
    assert only.plan_edit is None and only.template == "brigham-16"
    assert "no step can go before it" in only.text


def test_each_suggestion_comes_once_from_the_most_recent_session() -> None:
    old = session(1, "x", reaction(1, 9, 2, "flushing"), created=T0)
    new = session(2, "x", reaction(1, 9, 2, "flushing"), created=T0 + timedelta(days=21))
    found = H.suggestions((old, new))
    assert [s.code for s in found] == ["insert_step", "template", "premedication"]
    assert {s.session_id for s in found} == {2}


def test_no_reaction_no_suggestion() -> None:
    assert H.suggestions((session(1, "x"),)) == ()


@pytest.mark.parametrize(
    ("gap", "needs"),
    [
        (timedelta(hours=23, minutes=59), False),
        (timedelta(hours=24), False),  # "more than 24 h": 24 h itself is within
        (timedelta(hours=24, seconds=1), True),
        (timedelta(hours=72), True),
    ],
)
def test_the_tolerance_window_at_and_around_24_hours(gap: timedelta, needs: bool) -> None:
    verdict = H.tolerance(T0, T0 + gap, Decimal(24))
    assert verdict.needs_full_desensitization is needs
    assert ("full desensitization is needed" in verdict.message) is needs


def test_no_earlier_dose_needs_a_full_desensitization() -> None:
    verdict = H.tolerance(None, T0, Decimal(24))
    assert verdict.needs_full_desensitization and verdict.hours_since_last_dose is None


def test_a_planned_time_before_the_last_dose_is_called_out() -> None:
    verdict = H.tolerance(T0, T0 - timedelta(hours=2), Decimal(24))
    assert verdict.needs_full_desensitization
    assert "before the last recorded dose" in verdict.message


def test_histories_group_by_drug_regardless_of_case_and_use_the_drug_window() -> None:
    sessions = [
        session(1, "Penicillin G", last=T0),
        session(2, "penicillin  g", last=T0 + timedelta(hours=1), created=T0 + timedelta(hours=1)),
        session(3, "carboplatin", last=T0 - timedelta(days=30), created=T0 - timedelta(days=30)),
    ]
    at = T0 + timedelta(hours=31)
    found = H.histories(sessions, at, Decimal(24), H.parse_windows("Penicillin G=48"))
    assert [len(h.sessions) for h in found] == [2, 1]
    pen, carbo = found
    assert [s.id for s in pen.sessions] == [2, 1]  # newest first
    assert pen.last_dose_at == T0 + timedelta(hours=1)
    assert pen.tolerance.window_hours == Decimal(48)
    assert pen.tolerance.hours_since_last_dose == Decimal("30.0")
    assert not pen.tolerance.needs_full_desensitization
    assert carbo.tolerance.window_hours == Decimal(24)
    assert carbo.tolerance.needs_full_desensitization


@pytest.mark.parametrize(
    "text",
    ["penicillin", "=24", "penicillin=abc", "penicillin=0", "penicillin=-3", "x=721", "x=NaN"],
)
def test_bad_per_drug_windows_are_refused_with_the_entry_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"penicillin|=24|x="):
        H.parse_windows(text)
