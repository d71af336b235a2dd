"""Suggest how severe a reaction is: Brown 2004 grade and CTCAE v5.0 infusion-related reaction
grade (clinical reference §c.4). Pure: no I/O, no clock, no database.

``suggest_grade(symptoms, readings, baseline, age_years=...)`` only suggests: the physician
grades the reaction when resolving it, and every reason is given in words so the suggestion can
be checked at a glance. Brown grades the *worst* stage of a reaction, so the suggestion reads
every vitals set of the reaction's window (onset to resolution), not the latest one: it never
gets milder as the patient recovers. For each sign the most extreme reading is the reason
given.

Brown 2004, as tabulated in clinical reference §c.4:

* grade 1 (mild): skin and subcutaneous tissue only;
* grade 2 (moderate): respiratory, cardiovascular or gastrointestinal involvement (the symptom
  classes of ``app.vitals.rule_table.SYMPTOM_CLASSES``; and, our choice, a measured FEV1 or
  peak-flow fall that meets the HIGH alarm threshold, i.e. bronchospasm);
* grade 3 (severe): hypoxia (SpO2 ≤ 92 %), hypotension (systolic < 90 mmHg in adults, the
  age-specific limit in children, or more than 30 % below baseline), collapse or loss of
  consciousness.

The vital-sign limits are Brown's published ones (``BROWN_LIMITS``), not the session's alarm
thresholds: a physician who moves an alarm does not change what a grade means.

CTCAE from the findings alone, our mapping (CTCAE needs the course of the reaction, which
findings cannot show, so the physician confirms it):

* G4 (life-threatening) when hypotension and hypoxia are both present;
* G3 (prolonged or recurrent) for Brown grade 3;
* G2 (interruption indicated, responds to symptomatic treatment) for Brown grades 1–2 that
  stopped the infusion: in Stepwise every reaction stops it, so this is the default;
* G1 (mild, transient, no interruption) only when the caller says the infusion was not
  interrupted, for Brown grades 1–2.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from app.vitals.rule_table import SYMPTOM_CLASSES, SymptomClass
from app.vitals.rules import Finding, evaluate
from app.vitals.thresholds import Thresholds
from app.vitals.validation import SYMPTOMS, VitalsReading

__all__ = [
    "BROWN_LIMITS",
    "CTCAE_FROM_BROWN",
    "CTCAE_LIFE_THREATENING",
    "SYMPTOM_CLASSES",
    "SYMPTOM_SIGNS",
    "VITAL_GRADES",
    "GradeSuggestion",
    "SymptomClass",
    "suggest_grade",
]

# Brown's own vital-sign limits (grade 3: SpO2 ≤ 92 %, systolic < 90 mmHg or more than 30 %
# below baseline; children: the age-specific limits of clinical reference §c.4), and the HIGH
# FEV1/peak-flow fall used as the objective sign of bronchospasm.
BROWN_LIMITS: Final = Thresholds(
    sbp_low_mmhg=Decimal("90"),
    sbp_fall_percent=Decimal("30"),
    spo2_low_percent=Decimal("92"),
    fev1_fall_high_percent=Decimal("20"),
    pef_fall_high_percent=Decimal("20"),
    child_sbp_low_infant_mmhg=Decimal("70"),
    child_sbp_low_base_mmhg=Decimal("70"),
    child_sbp_low_per_year_mmhg=Decimal("2"),
    child_sbp_low_adolescent_mmhg=Decimal("90"),
)


@dataclass(frozen=True)
class Sign:
    brown_grade: int
    words: str  # what the finding shows, for the reason
    sign: str | None = None  # "hypotension" or "hypoxia": the two that together make CTCAE G4


HYPOTENSION: Final = "hypotension"
HYPOXIA: Final = "hypoxia"

# Alarm conditions (app.vitals.rule_table.RULES) that grade a reaction; the others (the MEDIUM
# falls) do not grade on their own.
VITAL_GRADES: Final = MappingProxyType(
    {
        "sbp_low_absolute": Sign(3, "hypotension", HYPOTENSION),
        "sbp_fall_percent": Sign(3, "hypotension", HYPOTENSION),
        "spo2_low": Sign(3, "hypoxia", HYPOXIA),
        "fev1_fall_high": Sign(2, "bronchospasm, respiratory involvement"),
        "pef_fall_high": Sign(2, "bronchospasm, respiratory involvement"),
    }
)

# Symptoms that are themselves a grade-3 sign; the others are graded by organ system.
SYMPTOM_SIGNS: Final = MappingProxyType(
    {
        "hypotension_collapse": Sign(3, "hypotension or collapse", HYPOTENSION),
        "loss_of_consciousness": Sign(3, "neurological compromise"),
        "confusion": Sign(3, "neurological compromise"),
        "incontinence": Sign(3, "neurological compromise"),
        "cyanosis": Sign(3, "hypoxia", HYPOXIA),
    }
)

# (Brown grade, infusion interrupted) -> CTCAE grade; hypotension with hypoxia is G4 whatever
# the rest.
CTCAE_FROM_BROWN: Final = MappingProxyType(
    {
        (1, True): 2,
        (2, True): 2,
        (3, True): 3,
        (1, False): 1,
        (2, False): 1,
        (3, False): 3,
    }
)
CTCAE_LIFE_THREATENING: Final = (frozenset({HYPOTENSION, HYPOXIA}), 4)
INTERRUPTED_WORDS: Final = MappingProxyType(
    {True: "the infusion was interrupted", False: "the infusion was not interrupted"}
)


@dataclass(frozen=True)
class GradeSuggestion:
    brown_grade: int | None  # 1–3; None when nothing was found to grade
    ctcae_grade: int | None  # 1–4; None with brown_grade None
    reasons: tuple[str, ...]  # every finding that was graded, highest grade first
    ctcae_reason: str | None  # how the CTCAE grade follows


def _symptom_sign(code: str) -> Sign:
    sign = SYMPTOM_SIGNS.get(code)
    if sign is not None:
        return sign
    kind = SYMPTOM_CLASSES[code]
    words = kind.system if kind.brown_grade == 1 else f"{kind.system} involvement"
    return Sign(kind.brown_grade, words)


def _extremity(finding: Finding) -> Decimal:
    """How far a finding goes: the lower a value below a limit, the larger a fall."""
    assert isinstance(finding.value, Decimal)
    return finding.value if finding.baseline is not None else -finding.value


def suggest_grade(
    symptoms: Set[str],
    readings: Sequence[VitalsReading],
    baseline: VitalsReading | None,
    *,
    age_years: Decimal | int | None = None,
    infusion_interrupted: bool = True,
) -> GradeSuggestion:
    """Suggest the Brown and CTCAE grades of a reaction from its symptoms (those given and those
    of every reading) and the vital signs of ``readings`` (the sets of the reaction's window)
    against Brown's limits and ``baseline``. ``age_years`` None uses the adult limits."""
    unknown = sorted(code for code in symptoms if code not in SYMPTOM_CLASSES)
    if unknown:
        raise ValueError(f"unknown symptom code {unknown[0]!r}")
    codes = frozenset(symptoms).union(*(r.symptoms for r in readings))

    worst: dict[str, Finding] = {}  # per graded condition, the most extreme reading
    for reading in readings:
        evaluation = evaluate(reading, baseline, BROWN_LIMITS, age_years=age_years)
        for finding in evaluation.findings:
            if finding.condition not in VITAL_GRADES:
                continue
            kept = worst.get(finding.condition)
            if kept is None or _extremity(finding) > _extremity(kept):
                worst[finding.condition] = finding
    graded: list[tuple[Sign, str]] = [
        (VITAL_GRADES[condition], worst[condition].summary)
        for condition in VITAL_GRADES
        if condition in worst
    ]
    graded.extend((_symptom_sign(code), SYMPTOMS[code]) for code in SYMPTOMS if code in codes)
    if not graded:
        return GradeSuggestion(None, None, (), None)

    graded.sort(key=lambda item: -item[0].brown_grade)  # stable: vitals, then checklist order
    reasons = tuple(
        f"{what}: {sign.words} → Brown grade {sign.brown_grade}" for sign, what in graded
    )
    brown = graded[0][0].brown_grade
    signs = {sign.sign for sign, _ in graded if sign.sign is not None}
    both, life_threatening = CTCAE_LIFE_THREATENING
    if both <= signs:
        ctcae = life_threatening
        why = f"hypotension and hypoxia together: life-threatening → CTCAE grade {ctcae}"
    else:
        ctcae = CTCAE_FROM_BROWN[(brown, infusion_interrupted)]
        stopped = "" if brown == 3 else f", {INTERRUPTED_WORDS[infusion_interrupted]}"
        why = f"Brown grade {brown}{stopped} → CTCAE grade {ctcae}"
    return GradeSuggestion(brown, ctcae, reasons, f"{why} (suggested; confirm clinically)")
