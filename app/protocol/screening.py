"""Screening of the index reaction before any protocol is offered (clinical reference §e).

A pure function: answers in, a verdict with every reason out. It never decides alone; it tells the
physician what the published guidance says about this patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from app.protocol.model import ProtocolError

# Reactions after which desensitization must never be attempted (GlobalRPh; BC guidance).
HARD_STOP_REACTIONS: dict[str, str] = {
    "sjs": "Stevens-Johnson syndrome",
    "ten": "toxic epidermal necrolysis",
    "erythema_multiforme": "erythema multiforme",
    "blistering_rash": "a blistering or desquamating rash",
    "exfoliative_dermatitis": "exfoliative dermatitis",
    "dress": "DRESS",
    "agep": "AGEP",
    "hepatitis": "drug-induced hepatitis",
    "nephritis": "nephritis (including interstitial nephritis)",
    "serum_sickness": "serum sickness",
    "haemolytic_anaemia": "haemolytic anaemia",
}

# Immediate reaction patterns that desensitization addresses.
IMMEDIATE_REACTIONS: dict[str, str] = {
    "urticaria": "urticaria or flushing",
    "angioedema": "angioedema",
    "bronchospasm": "bronchospasm or wheeze",
    "gi_symptoms": "nausea, vomiting or abdominal pain",
    "anaphylaxis": "anaphylaxis",
    "cytokine_release": "fever, chills or rigors (cytokine-release type)",
}

# Rate-dependent direct histamine release (MRGPRX2), not IgE: slow the infusion instead.
SLOW_INFUSION_REACTIONS: dict[str, str] = {
    "vancomycin_infusion_reaction": "a vancomycin-type (red man) infusion reaction",
}

REACTION_LABELS: dict[str, str] = {
    **IMMEDIATE_REACTIONS,
    **SLOW_INFUSION_REACTIONS,
    **HARD_STOP_REACTIONS,
}

FEV1_HIGH_RISK_BELOW = Decimal(80)

Outcome = Literal["eligible", "hard_stop", "slow_infusion"]


@dataclass(frozen=True)
class IndexReaction:
    reactions: frozenset[str]
    hypotension: bool = False
    desaturation: bool = False
    beta_blocker: bool = False
    cardiac_disease: bool = False
    fev1_percent_predicted: Decimal | None = None


@dataclass(frozen=True)
class ScreeningResult:
    outcome: Outcome
    reasons: tuple[str, ...]
    high_risk: bool
    suggested_template: str | None
    icu_setting: bool

    @property
    def may_desensitize(self) -> bool:
        return self.outcome == "eligible"


def screen(index: IndexReaction) -> ScreeningResult:
    unknown = sorted(index.reactions - REACTION_LABELS.keys())
    if unknown:
        raise ProtocolError(f"unknown index reaction {unknown[0]!r}", field="reactions")
    if not index.reactions:
        raise ProtocolError(
            "describe the index reaction: choose at least one feature", field="reactions"
        )
    if index.fev1_percent_predicted is not None and not (0 < index.fev1_percent_predicted <= 200):
        raise ProtocolError(
            "FEV1 must be a percentage of predicted between 0 and 200",
            field="fev1_percent_predicted",
        )

    hard_stops = [
        HARD_STOP_REACTIONS[r] for r in sorted(index.reactions & HARD_STOP_REACTIONS.keys())
    ]
    if hard_stops:
        return ScreeningResult(
            outcome="hard_stop",
            reasons=tuple(
                f"Do not desensitize: the index reaction included {label} "
                "(severe non-IgE reaction; re-exposure can be fatal)."
                for label in hard_stops
            ),
            high_risk=False,
            suggested_template=None,
            icu_setting=False,
        )

    if index.reactions & SLOW_INFUSION_REACTIONS.keys():
        only_infusion_type = index.reactions <= SLOW_INFUSION_REACTIONS.keys()
        if only_infusion_type:
            return ScreeningResult(
                outcome="slow_infusion",
                reasons=(
                    "Slow the infusion, do not desensitize: a vancomycin-type infusion reaction is "
                    "rate-dependent histamine release, managed by a slower rate and antihistamine "
                    "premedication.",
                ),
                high_risk=False,
                suggested_template=None,
                icu_setting=False,
            )

    risk_reasons = []
    if index.hypotension:
        risk_reasons.append("hypotension at the index reaction")
    if index.desaturation:
        risk_reasons.append("desaturation at the index reaction")
    if index.beta_blocker:
        risk_reasons.append("beta-blocker use (hold the dose before the protocol)")
    if index.cardiac_disease:
        risk_reasons.append("cardiac disease")
    if (
        index.fev1_percent_predicted is not None
        and index.fev1_percent_predicted < FEV1_HIGH_RISK_BELOW
    ):
        risk_reasons.append(
            f"FEV1 {index.fev1_percent_predicted.normalize():f} % of predicted (< 80 %)"
        )

    if risk_reasons:
        return ScreeningResult(
            outcome="eligible",
            reasons=(
                "High risk: " + "; ".join(risk_reasons) + ". Suggest the 16-step protocol "
                "(brigham-16) in an ICU-level setting.",
            ),
            high_risk=True,
            suggested_template="brigham-16",
            icu_setting=True,
        )
    return ScreeningResult(
        outcome="eligible",
        reasons=(
            "No hard stop and no high-risk feature: standard protocol in the infusion centre "
            "with one-to-one nursing.",
        ),
        high_risk=False,
        suggested_template="brigham-12",
        icu_setting=False,
    )
