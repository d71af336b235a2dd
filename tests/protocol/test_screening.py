from __future__ import annotations

from decimal import Decimal

import pytest

from app.protocol.model import ProtocolError
from app.protocol.screening import HARD_STOP_REACTIONS, IndexReaction, screen


@pytest.mark.parametrize("reaction", sorted(HARD_STOP_REACTIONS))
def test_severe_non_ige_reactions_are_hard_stops(reaction: str) -> None:
    result = screen(IndexReaction(frozenset({reaction, "urticaria"})))
    assert result.outcome == "hard_stop"
    assert not result.may_desensitize
    assert result.suggested_template is None
    assert any(HARD_STOP_REACTIONS[reaction] in reason for reason in result.reasons)


def test_every_listed_hard_stop_of_the_spec_is_covered() -> None:
    for needed in (
        "sjs",
        "ten",
        "dress",
        "agep",
        "blistering_rash",
        "hepatitis",
        "nephritis",
        "serum_sickness",
        "haemolytic_anaemia",
    ):
        assert needed in HARD_STOP_REACTIONS


def test_vancomycin_type_reaction_means_slow_the_infusion() -> None:
    result = screen(IndexReaction(frozenset({"vancomycin_infusion_reaction"})))
    assert result.outcome == "slow_infusion"
    assert "Slow the infusion, do not desensitize" in result.reasons[0]


def test_infusion_reaction_with_ige_features_is_still_eligible() -> None:
    result = screen(IndexReaction(frozenset({"vancomycin_infusion_reaction", "angioedema"})))
    assert result.outcome == "eligible"


@pytest.mark.parametrize(
    ("answers", "named"),
    [
        ({"hypotension": True}, "hypotension"),
        ({"desaturation": True}, "desaturation"),
        ({"beta_blocker": True}, "beta-blocker"),
        ({"cardiac_disease": True}, "cardiac disease"),
        ({"fev1_percent_predicted": Decimal(79)}, "FEV1 79 %"),
    ],
)
def test_high_risk_features_suggest_16_steps_in_an_icu_setting(answers: dict, named: str) -> None:
    result = screen(IndexReaction(frozenset({"anaphylaxis"}), **answers))
    assert result.outcome == "eligible" and result.high_risk and result.icu_setting
    assert result.suggested_template == "brigham-16"
    assert named in result.reasons[0]


def test_standard_risk_gets_the_12_step_protocol() -> None:
    result = screen(IndexReaction(frozenset({"urticaria"}), fev1_percent_predicted=Decimal(80)))
    assert (result.outcome, result.high_risk, result.suggested_template) == (
        "eligible",
        False,
        "brigham-12",
    )


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (IndexReaction(frozenset()), "at least one"),
        (IndexReaction(frozenset({"sneezing_fit"})), "unknown index reaction"),
        (IndexReaction(frozenset({"urticaria"}), fev1_percent_predicted=Decimal(-3)), "FEV1"),
    ],
)
def test_bad_answers_are_refused(index: IndexReaction, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        screen(index)
