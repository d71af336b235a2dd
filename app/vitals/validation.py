"""Is this vitals set possible? Pure: no I/O, no clock, no database.

``validate_vitals`` takes what the nurse entered (a JSON object or form fields made into a
mapping) and returns either a ``VitalsReading`` of cleaned ``Decimal`` values, or a
``VitalsRefusal`` listing every problem as (field, message); each message is one line that names
the field. Alarm thresholds are a different question (is this reading worrying?) and live
elsewhere: here a value is only refused when no living patient could have it, or when it was
mistyped.

Each measured field is given as one of:

* a number (``120``, ``"120"``, ``36.8``): measured;
* ``{"status": "measured", "value": 120}``: the same, spelled out;
* ``{"status": "unable_to_obtain" | "refused", "reason": "…"}``: not measured, and why;
* absent, ``null`` or ``""``: not recorded (refused for the core fields, and for spirometry
  when it is required).

Two more observations feed the NEWS2 score of adults (``app.vitals.news2``), each optional:
``consciousness`` on the ACVPU scale ("A", "C", "V", "P" or "U") and ``supplemental_oxygen``
(true when the patient breathes any added oxygen, false on room air).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final, Literal

from app.vitals.catalogue import VITAL_SIGNS

Status = Literal["measured", "unable_to_obtain", "refused"]
STATUSES: Final[tuple[Status, ...]] = ("measured", "unable_to_obtain", "refused")
NOT_MEASURED: Final[tuple[Status, ...]] = ("unable_to_obtain", "refused")

CORE_FIELDS: Final = ("systolic_bp", "diastolic_bp", "heart_rate", "spo2", "respiratory_rate")
SPIROMETRY_FIELDS: Final = ("fev1_l", "peak_flow_l_min")
OPTIONAL_FIELDS: Final = ("temperature_c", *SPIROMETRY_FIELDS)
MEASURED_FIELDS: Final = (*CORE_FIELDS, *OPTIONAL_FIELDS)
OTHER_FIELDS: Final = ("symptoms", "note", "consciousness", "supplemental_oxygen")
# ACVPU (NEWS2): alert, new confusion, voice, pain, unresponsive.
CONSCIOUSNESS_LEVELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "A": "Alert",
        "C": "New confusion",
        "V": "Responds to voice",
        "P": "Responds to pain",
        "U": "Unresponsive",
    }
)

# field -> (lowest, highest, unit): what a living patient can show (app.vitals.catalogue).
POSSIBLE_RANGES: Final[Mapping[str, tuple[Decimal, Decimal, str]]] = MappingProxyType(
    {name: (sign.lowest, sign.highest, sign.unit) for name, sign in VITAL_SIGNS.items()}
)
DECIMAL_PLACES: Final[Mapping[str, int]] = MappingProxyType(
    {name: sign.decimal_places for name, sign in VITAL_SIGNS.items()}
)

# The bedside checklist, in the order it is shown (clinical-reference.md §d).
SYMPTOMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "flushing": "Flushing",
        "pruritus": "Itching (pruritus)",
        "urticaria": "Hives (urticaria)",
        "angioedema": "Swelling of lips, tongue or face (angioedema)",
        "sneezing": "Sneezing",
        "rhinorrhoea": "Runny nose (rhinorrhoea)",
        "red_watery_eyes": "Red, watery eyes",
        "throat_tightness": "Throat tightness, voice change or stridor",
        "wheeze": "Wheeze",
        "cough": "Repetitive cough",
        "dyspnoea": "Shortness of breath (dyspnoea)",
        "chest_tightness": "Chest tightness",
        "back_pain": "Back pain",
        "abdominal_pain": "Pelvic or abdominal pain",
        "nausea": "Nausea",
        "vomiting": "Vomiting",
        "diarrhoea": "Diarrhoea",
        "dizziness": "Dizziness or feeling faint (presyncope)",
        "diaphoresis": "Sweating (diaphoresis)",
        "hypotension_collapse": "Low blood pressure or collapse",
        "loss_of_consciousness": "Loss of consciousness",
        "cyanosis": "Blue lips or skin (cyanosis)",
        "confusion": "Confusion",
        "incontinence": "Incontinence",
        "sense_of_doom": "Sense of impending doom",
        "fever_chills": "Fever, chills or rigors",
    }
)

REASON_MAX: Final = 300
NOTE_MAX: Final = 2000
SYMPTOMS_MAX: Final = 100  # entries in one list, duplicates included
_NUMBER_TEXT_MAX = 32
_SHOWN_MAX = 24
_STATUS_KEYS = frozenset({"status", "value", "reason"})
# An unknown key is reported under its own name only when that name is safe to show as one.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")

Problem = tuple[str, str]


@dataclass(frozen=True)
class VitalsReading:
    """A possible vitals set. A value is ``None`` unless its status is "measured"; ``status``
    holds every measured field that was recorded either way, ``reasons`` why one was not."""

    systolic_bp: Decimal | None
    diastolic_bp: Decimal | None
    heart_rate: Decimal | None
    spo2: Decimal | None
    respiratory_rate: Decimal | None
    temperature_c: Decimal | None
    fev1_l: Decimal | None
    peak_flow_l_min: Decimal | None
    status: Mapping[str, Status] = field(hash=False)
    reasons: Mapping[str, str] = field(hash=False)
    symptoms: frozenset[str]
    note: str
    consciousness: str | None = None  # a key of CONSCIOUSNESS_LEVELS; None: not recorded
    supplemental_oxygen: bool | None = None  # None: not recorded

    def value(self, name: str) -> Decimal | None:
        if name not in POSSIBLE_RANGES:
            raise KeyError(name)
        return getattr(self, name)

    def status_of(self, name: str) -> Status | None:
        """ "measured", "unable_to_obtain", "refused", or None when not recorded at all."""
        if name not in POSSIBLE_RANGES:
            raise KeyError(name)
        return self.status.get(name)

    def symptom_labels(self) -> list[str]:
        return [label for code, label in SYMPTOMS.items() if code in self.symptoms]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: values as Decimal (canonical JSON writes them as strings), symptoms in
        checklist order, each recorded field with its status and, when not measured, reason."""
        fields: dict[str, Any] = {}
        for name in MEASURED_FIELDS:
            status = self.status.get(name)
            if status is None:
                continue
            entry: dict[str, Any] = {"status": status}
            if status == "measured":
                entry["value"] = getattr(self, name)
            else:
                entry["reason"] = self.reasons[name]
            fields[name] = entry
        out: dict[str, Any] = {
            **fields,
            "symptoms": [code for code in SYMPTOMS if code in self.symptoms],
            "note": self.note,
        }
        # Only when recorded: sets stored before these fields existed read back the same.
        if self.consciousness is not None:
            out["consciousness"] = self.consciousness
        if self.supplemental_oxygen is not None:
            out["supplemental_oxygen"] = self.supplemental_oxygen
        return out


@dataclass(frozen=True)
class VitalsRefusal:
    """Every problem found, as (field, one-line message), in form order."""

    problems: tuple[Problem, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.problems))

    def by_field(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, message in self.problems:
            found.setdefault(name, []).append(message)
        return found

    @property
    def message(self) -> str:
        return "; ".join(message for _, message in self.problems)


# --- showing a caller's input safely ------------------------------------------------------------


def _shown(value: object) -> str:
    """A caller's value quoted for a message: short, and on one line (repr escapes every line
    break, including the Unicode ones)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > _SHOWN_MAX:
        text = text[:_SHOWN_MAX] + "…"
    return repr(text)


def _number_text(value: Decimal) -> str:
    """A Decimal for a message: plain digits when short, else scientific (never huge)."""
    text = format(value, "f") if -12 <= value.adjusted() <= 12 else str(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "…"


def _range_text(name: str) -> str:
    low, high, unit = POSSIBLE_RANGES[name]
    return f"{_number_text(low)}–{_number_text(high)} {unit}"


# --- parsing one field ----------------------------------------------------------------------------


def _storable(text: str) -> bool:
    """No NUL and no lone surrogate: neither database can hold them."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _decimal_places(value: Decimal) -> int:
    """Digits after the point, trailing zeros ignored; exact, independent of the context."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    places = max(-exponent, 0)
    index = len(digits) - 1
    while places and index >= 0 and digits[index] == 0:
        places -= 1
        index -= 1
    return places


def _to_decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        return Decimal(repr(raw))  # 36.6 means 36.6, not its binary neighbour
    if isinstance(raw, str):
        try:
            return Decimal(raw.strip().replace("\N{MINUS SIGN}", "-"))
        except InvalidOperation:
            return None
    return None


def _measured_value(name: str, raw: object) -> Decimal | Problem:
    low, high, unit = POSSIBLE_RANGES[name]
    if isinstance(raw, str) and len(raw.strip()) > _NUMBER_TEXT_MAX:
        return name, f"{name} must be a number in {unit}: {len(raw.strip())} characters is too long"
    value = _to_decimal(raw)
    if value is None:
        if isinstance(raw, str):
            return name, f"{name} must be a number in {unit}, got {_shown(raw)}"
        return name, f"{name} must be a number in {unit}"
    if not value.is_finite():
        return name, f"{name} must be a finite number in {unit}, got {_shown(raw)}"
    if not low <= value <= high:
        return name, (
            f"{name} {_number_text(value)} {unit} is outside the possible range {_range_text(name)}"
        )
    places = DECIMAL_PLACES[name]
    if _decimal_places(value) > places:
        if places == 0:
            return name, f"{name} {_number_text(value)} {unit} must be a whole number"
        return name, (
            f"{name} {_number_text(value)} {unit} has more than {places} decimal "
            f"place{'s' if places > 1 else ''}"
        )
    return value


def _reason(name: str, status: str, raw: object) -> str | Problem:
    if _is_blank(raw):
        return name, f"{name} is marked {status}: give a reason"
    if not isinstance(raw, str):
        return name, f"{name} is marked {status}: the reason must be text"
    reason = raw.strip()
    if len(reason) > REASON_MAX:
        return name, f"{name}: the reason must have at most {REASON_MAX} characters"
    if not _storable(reason):
        return name, f"{name}: the reason contains characters that cannot be stored"
    return reason


@dataclass(frozen=True)
class _Parsed:
    status: Status
    value: Decimal | None = None
    reason: str | None = None


def _parse_field(name: str, raw: object) -> _Parsed | Problem:
    if not isinstance(raw, Mapping):
        if isinstance(raw, list | tuple | Set):
            return name, f"{name} must be one number, or a status with a reason"
        value = _measured_value(name, raw)
        return value if isinstance(value, tuple) else _Parsed("measured", value=value)

    unknown = [key for key in raw if key not in _STATUS_KEYS]
    if unknown:
        return name, f"{name}: unknown key {_shown(unknown[0])}; use status, value and reason"
    status = raw.get("status")
    if _is_blank(status) and not _is_blank(raw.get("value")):
        status = "measured"
    if _is_blank(status):
        return name, f"{name}: give a value, or a status ({', '.join(NOT_MEASURED)}) and reason"
    if status not in STATUSES:
        return name, (f"{name}: unknown status {_shown(status)}; use one of: {', '.join(STATUSES)}")
    if status == "measured":
        if not _is_blank(raw.get("reason")):
            return name, f"{name}: a reason is only given when it is {' or '.join(NOT_MEASURED)}"
        if _is_blank(raw.get("value")):
            return name, f"{name} is marked measured: give the value"
        value = _measured_value(name, raw["value"])
        return value if isinstance(value, tuple) else _Parsed("measured", value=value)
    if not _is_blank(raw.get("value")):
        return name, f"{name} is marked {status}: leave the value out"
    reason = _reason(name, status, raw.get("reason"))
    return reason if isinstance(reason, tuple) else _Parsed(status, reason=reason)


def _symptoms(raw: object) -> frozenset[str] | list[Problem]:
    if raw is None:
        return frozenset()
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, list | tuple | Set):
        return [("symptoms", "symptoms must be a list of symptom codes")]
    if len(raw) > SYMPTOMS_MAX:
        return [("symptoms", f"symptoms must list at most {SYMPTOMS_MAX} codes")]
    problems: list[Problem] = []
    codes: set[str] = set()
    for code in raw:
        if not isinstance(code, str):
            problems.append(("symptoms", f"symptoms must be codes (text), got {_shown(code)}"))
        elif code not in SYMPTOMS:
            problems.append(("symptoms", f"symptoms: unknown symptom code {_shown(code)}"))
        else:
            codes.add(code)
    return problems or frozenset(codes)


def _note(raw: object) -> str | Problem:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        return "note", "note must be text"
    note = raw.strip()
    if len(note) > NOTE_MAX:
        return "note", f"note must have at most {NOTE_MAX} characters"
    if not _storable(note):
        return "note", "note contains characters that cannot be stored"
    return note


def _consciousness(raw: object) -> str | Problem | None:
    if _is_blank(raw):
        return None
    if isinstance(raw, str) and raw.strip().upper() in CONSCIOUSNESS_LEVELS:
        return raw.strip().upper()
    levels = ", ".join(f"{k} ({v.lower()})" for k, v in CONSCIOUSNESS_LEVELS.items())
    return "consciousness", f"consciousness must be one of {levels}, got {_shown(raw)}"


_OXYGEN_WORDS: Final[Mapping[str, bool]] = MappingProxyType(
    {"true": True, "false": False, "oxygen": True, "air": False}
)


def _oxygen(raw: object) -> bool | Problem | None:
    if _is_blank(raw):
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _OXYGEN_WORDS:
        return _OXYGEN_WORDS[raw.strip().lower()]
    return (
        "supplemental_oxygen",
        f"supplemental_oxygen must be true (oxygen) or false (air), got {_shown(raw)}",
    )


# --- the whole set ------------------------------------------------------------------------------


def validate_vitals(
    raw: Mapping[str, Any], *, spirometry_required: bool
) -> VitalsReading | VitalsRefusal:
    """Clean a vitals set, or list every reason it cannot be recorded."""
    if not isinstance(raw, Mapping):
        return VitalsRefusal((("vitals", "a vitals set must be an object of named fields"),))
    problems: list[Problem] = []
    parsed: dict[str, _Parsed] = {}
    present: set[str] = set()

    for name in MEASURED_FIELDS:
        value = raw.get(name)
        if _is_blank(value):
            if name in CORE_FIELDS:
                problems.append(
                    (
                        name,
                        f"{name} is required: record a value, or mark it "
                        f"{' or '.join(NOT_MEASURED)} with a reason",
                    )
                )
            continue
        present.add(name)
        result = _parse_field(name, value)
        if isinstance(result, tuple):
            problems.append(result)
        else:
            parsed[name] = result

    systolic, diastolic = parsed.get("systolic_bp"), parsed.get("diastolic_bp")
    if (
        systolic is not None
        and diastolic is not None
        and systolic.value is not None
        and diastolic.value is not None
        and diastolic.value >= systolic.value
    ):
        problems.append(
            (
                "diastolic_bp",
                f"diastolic_bp {_number_text(diastolic.value)} mmHg must be below systolic_bp "
                f"{_number_text(systolic.value)} mmHg",
            )
        )

    if spirometry_required and not present.intersection(SPIROMETRY_FIELDS):
        problems.append(
            (
                "spirometry",
                "spirometry is required: record fev1_l or peak_flow_l_min, or mark one "
                f"{' or '.join(NOT_MEASURED)} with a reason",
            )
        )

    symptoms = _symptoms(raw.get("symptoms"))
    if isinstance(symptoms, list):
        problems.extend(symptoms)
    note = _note(raw.get("note"))
    if isinstance(note, tuple):
        problems.append(note)
    consciousness = _consciousness(raw.get("consciousness"))
    if isinstance(consciousness, tuple):
        problems.append(consciousness)
    oxygen = _oxygen(raw.get("supplemental_oxygen"))
    if isinstance(oxygen, tuple):
        problems.append(oxygen)

    known = set(MEASURED_FIELDS) | set(OTHER_FIELDS)
    for key in raw:
        if key not in known:
            name = key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else "vitals"
            problems.append((name, f"unknown field {_shown(key)}"))

    if problems:
        return VitalsRefusal(tuple(problems))
    assert isinstance(symptoms, frozenset) and isinstance(note, str)
    assert not isinstance(consciousness, tuple) and not isinstance(oxygen, tuple)
    values = {name: parsed[name].value if name in parsed else None for name in MEASURED_FIELDS}
    return VitalsReading(
        **values,
        status=MappingProxyType({name: parsed[name].status for name in parsed}),
        reasons=MappingProxyType(
            {name: p.reason for name, p in parsed.items() if p.reason is not None}
        ),
        symptoms=symptoms,
        note=note,
        consciousness=consciousness,
        supplemental_oxygen=oxygen,
    )
