from __future__ import annotations

from decimal import Decimal

import pytest

from app.protocol import editing
from app.protocol.model import ProtocolError
from app.protocol.templates import BrighamParameters, DosesParameters, build
from tests.protocol.invariants import assert_protocol_invariants


@pytest.fixture
def ceftazidime():
    return build("brigham-12", BrighamParameters(Decimal(2000), "mg"))


def test_inserting_a_step_in_the_final_bag_shortens_the_last_step(ceftazidime) -> None:
    edited = editing.insert_step(ceftazidime, 10, rate_ml_h=Decimal(30))
    assert len(edited.steps) == 13
    inserted = edited.steps[10]
    assert (inserted.origin, inserted.solution, inserted.rate_ml_h, inserted.minutes) == (
        "inserted",
        3,
        Decimal(30),
        Decimal(15),
    )
    assert edited.steps[-1].volume_ml == Decimal("232.5") - Decimal("7.5")
    # The final bag's strength does not depend on final-bag steps.
    assert edited.solutions[2].concentration == ceftazidime.solutions[2].concentration
    assert_protocol_invariants(edited)


def test_inserting_a_step_in_an_early_bag_makes_the_final_bag_weaker(ceftazidime) -> None:
    edited = editing.insert_step(ceftazidime, 6, rate_ml_h=Decimal(15))
    assert edited.steps[6].solution == 2
    assert edited.solutions[2].concentration < ceftazidime.solutions[2].concentration
    assert edited.steps[-1].cumulative_dose == 2000
    assert_protocol_invariants(edited)


def test_only_inserted_steps_can_be_deleted(ceftazidime) -> None:
    with pytest.raises(ProtocolError, match="only inserted steps can be deleted"):
        editing.delete_step(ceftazidime, 3)
    edited = editing.insert_step(ceftazidime, 10, rate_ml_h=Decimal(30))
    restored = editing.delete_step(edited, 11)
    assert [s.dose for s in restored.steps] == [s.dose for s in ceftazidime.steps]


def test_editing_a_rate_marks_the_step_and_recomputes(ceftazidime) -> None:
    edited = editing.edit_step(ceftazidime, 12, rate_ml_h=Decimal(60))
    assert edited.steps[-1].origin == "edited"
    assert edited.steps[-1].minutes == Decimal("232.5") / 60 * 60
    assert edited.total_minutes == 165 + Decimal("232.5")
    assert_protocol_invariants(edited)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"number": 12, "minutes": Decimal(30)}, "runs until the final bag is empty"),
        ({"number": 13, "rate_ml_h": Decimal(5)}, "there is no step 13"),
        ({"number": 3, "dose": Decimal(1)}, "follows from its bag and rate"),
        ({"number": 3}, "nothing to change"),
        ({"number": 4, "rate_ml_h": Decimal(1)}, "never steps down"),
        ({"number": 11, "rate_ml_h": Decimal(1000)}, "already use all of bag 3"),
        ({"number": 2, "rate_ml_h": Decimal(-1)}, "greater than 0"),
    ],
)
def test_refused_edits_say_why(ceftazidime, kwargs, reason) -> None:
    with pytest.raises(ProtocolError, match=reason):
        editing.edit_step(ceftazidime, **kwargs)


def test_insert_position_must_be_between_two_steps(ceftazidime) -> None:
    for after in (0, 12):
        with pytest.raises(ProtocolError, match="between two steps"):
            editing.insert_step(ceftazidime, after, rate_ml_h=Decimal(5))


def test_dose_ladder_insert_takes_from_the_remainder() -> None:
    protocol = build(
        "doses", DosesParameters((Decimal(1), Decimal(2), Decimal(4), Decimal(10)), "mg")
    )
    edited = editing.insert_step(protocol, 2, dose=Decimal(3))
    assert [s.dose for s in edited.steps] == [1, 2, 3, 4, 7]
    assert edited.steps[-1].cumulative_dose == 17
    with pytest.raises(ProtocolError, match="last dose is the remainder"):
        editing.edit_step(protocol, 4, dose=Decimal(5))
    with pytest.raises(ProtocolError, match="never steps down"):
        editing.insert_step(protocol, 3, dose=Decimal(8))
