"""The session view, built directly: typed values from the machine's state and the facts read
with it (no database), and the JSON answer that keeps the API's strings."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.alarms.logic import AlarmBoard
from app.session import machine as M
from app.session.plan import Bag, Plan, PlanStep
from app.session.view import (
    Person,
    SessionFacts,
    SessionView,
    VitalsSet,
    build,
    stored_vitals,
    window_after,
)
from app.session.view_json import as_json
from tests.vitals.readings import reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DOCTOR = 12
PLAN = Plan(
    kind="infusion",
    target_dose=Decimal(100),
    unit="mg",
    bags=(Bag(1, "1/1", Decimal(250), Decimal(1)),),
    steps=(
        PlanStep(solution=1, rate_ml_h=Decimal(4), minutes=Decimal(15)),
        PlanStep(solution=1, rate_ml_h=Decimal(40), minutes=None),
    ),
)


def stored(
    id: int,
    minutes: int,
    *,
    baseline: bool = False,
    supersedes: int | None = None,
    **values: object,
) -> VitalsSet:
    return stored_vitals(
        id=id,
        reading_id=supersedes or id,
        version=2 if supersedes else 1,
        supersedes=supersedes,
        amendment_reason="typo" if supersedes else None,
        recorded_at=T0 + timedelta(minutes=minutes),
        recorded_by=11,
        step=None if baseline else 0,
        baseline=baseline,
        within_limits=True,
        values_json=json.dumps(reading(**values).as_dict(), default=str, sort_keys=True),
    )


def facts(*vitals: VitalsSet, age: Decimal | None = Decimal(58)) -> SessionFacts:
    return SessionFacts(
        id=7,
        patient_id=3,
        drug="ceftazidime",
        route="IV",
        template="brigham-12",
        risk_tier="standard",
        location="Chair 4",
        assigned_nurse_id=None,
        diluent=None,
        last_event_seq=9,
        screening={"outcome": "eligible"},
        threshold_overrides={"spo2_low_percent": "92"},
        alarms=AlarmBoard(),
        vitals=vitals,
        age_years=age,
        people={DOCTOR: Person("dr-b", "Dr B. Allergist")},
    )


def running_with_a_reaction() -> M.SessionState:
    state = replace(
        M.new_session(PLAN, pharmacist_signoff=False),
        status="paused",
        approved_by=DOCTOR,
        approved_at=T0 - timedelta(minutes=30),
    )
    reaction = M.Reaction(number=1, onset_at=T0 + timedelta(minutes=10), symptoms=(), at_step=0)
    return replace(state, reactions=(reaction,))


def test_the_view_holds_decimals_datetimes_and_typed_parts() -> None:
    view = build(M.new_session(PLAN), facts(stored(1, -5, baseline=True)), T0)
    assert isinstance(view, SessionView)
    assert view.target_dose == Decimal(100) and isinstance(view.delivered_percent, Decimal)
    assert view.plan.steps[0].rate_ml_h == Decimal(4)
    assert view.diluent == "0.9 % sodium chloride"
    (baseline,) = view.vitals
    assert baseline.recorded_at == T0 - timedelta(minutes=5)
    assert baseline.measures["systolic_bp"].value == Decimal(120)
    assert baseline.reading is not None and baseline.reading.heart_rate == Decimal(80)
    assert baseline.news2 is not None and baseline.news2.total == 0
    assert view.thresholds.thresholds.spo2_low_percent == Decimal(92)


def test_an_amended_set_is_no_longer_current_and_a_child_gets_no_news2() -> None:
    first, amended = stored(1, 5), stored(2, 6, supersedes=1, systolic_bp=118)
    view = build(M.new_session(PLAN), facts(first, amended, age=Decimal(9)), T0)
    assert [v.current for v in view.vitals] == [False, True]
    assert view.current_vitals == (view.vitals[1],)
    assert all(v.news2 is None for v in view.vitals)


def test_a_reaction_carries_the_grade_its_window_suggests() -> None:
    low = stored(2, 12, systolic_bp=70)
    view = build(running_with_a_reaction(), facts(stored(1, -5, baseline=True), low), T0)
    (reaction,) = view.reactions
    assert reaction.suggested_grade is not None and reaction.suggested_grade.brown_grade == 3
    assert view.open_reaction == reaction
    approved = view.signoffs.approved
    assert approved is not None and approved.by == Person("dr-b", "Dr B. Allergist")


def test_the_json_answer_keeps_the_strings_the_api_has_always_given() -> None:
    view = build(running_with_a_reaction(), facts(stored(1, -5, baseline=True)), T0)
    answer = as_json(view)
    assert answer["target_dose"] == "100" and answer["delivered_dose"] == str(view.delivered_dose)
    assert answer["signoffs"]["approved"] == {
        "by": {"username": "dr-b", "name": "Dr B. Allergist"},
        "at": (T0 - timedelta(minutes=30)).isoformat(),
    }
    assert answer["reactions"][0]["onset_at"] == (T0 + timedelta(minutes=10)).isoformat()
    assert list(answer["reactions"][0])[-1] == "suggested_grade"
    assert answer["vitals"][0]["values"]["systolic_bp"] == {"status": "measured", "value": "120"}
    assert answer["thresholds"]["overrides"] == {"spo2_low_percent": "92"}
    json.dumps(answer)  # plain JSON throughout


def _window_by_definition(sets: list[VitalsSet], recent: int) -> list[VitalsSet]:
    """What window_of reads: the newest `recent` sets and the newest baseline, oldest first."""
    kept = {v.id: v for v in sets[-recent:]}
    baselines = [v for v in sets if v.baseline]
    if baselines:
        kept[baselines[-1].id] = baselines[-1]
    return sorted(kept.values(), key=lambda v: v.id)


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(1, 6))
def test_the_window_worked_out_after_a_new_set_is_the_window_read_again(
    baselines: list[bool], recent: int
) -> None:
    sets = [stored(n + 1, n, baseline=flag) for n, flag in enumerate(baselines)]
    window: list[VitalsSet] = []
    for count, new in enumerate(sets):
        window, total = window_after(window, count, new, recent)
        assert total == count + 1
        assert [v.id for v in window] == [
            v.id for v in _window_by_definition(sets[: count + 1], recent)
        ]
