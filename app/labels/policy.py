"""The site's rules for labels and checks: which drugs are high-alert (a second clinician
co-signs their pump rates), how long a prepared bag keeps, what a wristband holds. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from app.labels.checks import DEFAULT_WRISTBAND_PATTERN
from app.tolerance import drug_key

# The antineoplastics and monoclonal antibodies desensitized in clinical-reference.md.
DEFAULT_HIGH_ALERT = (
    "carboplatin, cisplatin, oxaliplatin, paclitaxel, docetaxel, doxorubicin, "
    "rituximab, trastuzumab, cetuximab, infliximab"
)
DEFAULT_STABILITY_HOURS = Decimal(24)
MAX_STABILITY_HOURS = Decimal(24 * 14)


@dataclass(frozen=True)
class LabelPolicy:
    high_alert: tuple[str, ...] = tuple(n.strip() for n in DEFAULT_HIGH_ALERT.split(","))
    stability_hours: Decimal = DEFAULT_STABILITY_HOURS
    stability_by_drug: dict[str, Decimal] = field(default_factory=dict)
    wristband_pattern: str = DEFAULT_WRISTBAND_PATTERN

    def is_high_alert(self, drug: str) -> bool:
        """A listed name as a word of the drug's name: "Carboplatin AUC 5" is carboplatin."""
        key = drug_key(drug)
        return any(re.search(rf"\b{re.escape(drug_key(n))}\b", key) for n in self.high_alert)

    def stability_for(self, drug: str) -> Decimal:
        """How long a prepared bag of this drug keeps, in hours."""
        return self.stability_by_drug.get(drug_key(drug), self.stability_hours)


NO_HIGH_ALERT = LabelPolicy(high_alert=())


def drug_names(text: str) -> tuple[str, ...]:
    return tuple(n for n in (part.strip() for part in text.split(",")) if n)


def parse_stability(text: str) -> dict[str, Decimal]:
    """'paclitaxel=27, docetaxel=4' -> {drug: hours}; a clear ValueError otherwise."""
    hours: dict[str, Decimal] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        drug, sep, value = part.partition("=")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not sep or not drug.strip() or not number.is_finite():
            raise ValueError(f"{part!r}: write drug=hours, e.g. paclitaxel=27")
        if not 0 < number <= MAX_STABILITY_HOURS:
            raise ValueError(f"{part!r}: the hours must be above 0 and at most 336")
        hours[drug_key(drug)] = number
    return hours


def wristband_pattern(text: str) -> str:
    """A site's wristband pattern, checked: it compiles, and names the MRN if it has groups."""
    try:
        compiled = re.compile(text)
    except re.error as error:
        raise ValueError(f"the wristband pattern does not compile: {error}") from None
    if compiled.groups and "mrn" not in compiled.groupindex:
        raise ValueError("a wristband pattern with groups names the MRN's: (?P<mrn>...)")
    return text
