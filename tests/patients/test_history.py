"""History per drug, next-plan suggestions and the tolerance window (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.config import parse_windows
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


W = H.ToleranceWindow()  # 24 h, then uncertain to 48 h


@pytest.mark.parametrize(
    ("gap", "band", "needs"),
    [
        (timedelta(hours=23, minutes=59), "may_persist", False),
        (timedelta(hours=24), "uncertain", True),  # "under 24 h" may persist
        (timedelta(hours=36), "uncertain", True),
        (timedelta(hours=48), "uncertain", True),  # "24–48 h": 48 h itself is uncertain
        (timedelta(hours=48, seconds=1), "lost", True),
        (timedelta(hours=72), "lost", True),
    ],
)
def test_the_three_tolerance_bands_at_and_around_their_edges(
    gap: timedelta, band: str, needs: bool
) -> None:
    verdict = H.tolerance(T0, T0 + gap, W)
    assert verdict.band == band
    assert verdict.needs_full_desensitization is needs
    words = {
        "may_persist": "may persist if dosing was not interrupted — allergist to confirm",
        "uncertain": "tolerance is uncertain — a full desensitization is recommended",
        "lost": "tolerance is lost — a full desensitization is needed",
    }
    assert words[band] in verdict.message


def test_no_full_dose_needs_a_full_desensitization() -> None:
    verdict = H.tolerance(None, T0, W)
    assert verdict.band == "none"
    assert verdict.needs_full_desensitization and verdict.hours_since_last_dose is None


def test_a_planned_time_before_the_last_dose_is_called_out() -> None:
    verdict = H.tolerance(T0, T0 - timedelta(hours=2), W)
    assert verdict.needs_full_desensitization
    assert "before the last full dose" in verdict.message


def test_only_a_session_that_reached_its_target_counts_for_tolerance() -> None:
    aborted = session(1, "carboplatin", last=T0 + timedelta(hours=2))
    full = dataclasses.replace(session(2, "carboplatin", last=T0), full_dose_at=T0)
    (alone,) = H.histories([aborted], T0 + timedelta(hours=3))
    assert alone.tolerance.band == "none"  # micrograms given, then aborted: no tolerance
    assert alone.last_dose_at == T0 + timedelta(hours=2)
    (both,) = H.histories([aborted, full], T0 + timedelta(hours=3))
    assert both.last_full_dose_at == T0
    assert (both.tolerance.band, both.tolerance.hours_since_last_dose) == (
        "may_persist",
        Decimal("3.0"),
    )


def test_histories_group_by_drug_regardless_of_case_and_use_the_drug_window() -> None:
    def full(*args, **kwargs):
        made = session(*args, **kwargs)
        return dataclasses.replace(made, full_dose_at=made.last_dose_at)

    sessions = [
        full(1, "Penicillin G", last=T0),
        full(2, "penicillin  g", last=T0 + timedelta(hours=1), created=T0 + timedelta(hours=1)),
        full(3, "carboplatin", last=T0 - timedelta(days=30), created=T0 - timedelta(days=30)),
    ]
    at = T0 + timedelta(hours=31)
    policy = H.TolerancePolicy(W, parse_windows("Penicillin G=48/96"))
    found = H.histories(sessions, at, policy)
    assert [len(h.sessions) for h in found] == [2, 1]
    pen, carbo = found
    assert [s.id for s in pen.sessions] == [2, 1]  # newest first
    assert pen.last_dose_at == T0 + timedelta(hours=1)
    assert pen.tolerance.window == H.ToleranceWindow(Decimal(48), Decimal(96))
    assert pen.tolerance.hours_since_last_dose == Decimal("30.0")
    assert not pen.tolerance.needs_full_desensitization
    assert carbo.tolerance.window_hours == Decimal(24)
    assert carbo.tolerance.band == "lost"


def test_one_number_per_drug_moves_the_first_band_and_keeps_the_second() -> None:
    assert parse_windows("a=12, b=72") == {
        "a": H.ToleranceWindow(Decimal(12), Decimal(48)),
        "b": H.ToleranceWindow(Decimal(72), Decimal(72)),  # no uncertain band left
    }


@pytest.mark.parametrize(
    "text",
    [
        "penicillin",
        "=24",
        "penicillin=abc",
        "penicillin=0",
        "penicillin=-3",
        "x=721",
        "x=NaN",
        "x=24/12",  # the uncertain band cannot end before the first
        "x=24/abc",
    ],
)
def test_bad_per_drug_windows_are_refused_with_the_entry_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"penicillin|=24|x="):
        parse_windows(text)
