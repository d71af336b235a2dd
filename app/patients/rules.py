"""What a valid patient record is: pure checks, no I/O, no clock (today is passed in).

Each check takes what a caller typed (JSON value or form text) and returns the cleaned value, or
raises ``PatientError`` with a one-line message that names the field.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from app.text import text_problem

# The record's bounds; the table's columns (app.patients.models) are sized from them.
SEXES = ("female", "male", "other", "unknown")
MRN_MAX = 32
NAME_MAX = 100
ALLERGY_HISTORY_MAX = 4000

WEIGHT_MIN_KG: Final = Decimal("0.3")
WEIGHT_MAX_KG: Final = Decimal("400")
WEIGHT_STEP: Final = Decimal("0.01")  # Numeric(6, 2)
# Nobody alive is older than this; an earlier birth date is a typing error.
OLDEST_AGE_YEARS: Final = 130

MRN_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# Long enough for any real number; bounds the work spent on a pasted essay.
_NUMBER_TEXT_MAX = 32

FIELDS: Final = (
    "mrn",
    "family_name",
    "given_name",
    "birth_date",
    "sex",
    "weight_kg",
    "asthma",
    "allergy_history",
)
REQUIRED: Final = frozenset(
    {"mrn", "family_name", "given_name", "birth_date", "weight_kg", "asthma"}
)


class PatientError(ValueError):
    """A refused patient change; the message is one line and safe to show."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PatientNotFound(PatientError):
    pass


class DuplicateMrn(PatientError):
    pass


def _shown(value: object, limit: int = 40) -> str:
    """A caller's value quoted for a message: shortened, on one line."""
    text = value if isinstance(value, str) else str(value)
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def normalise_mrn(raw: str) -> str:
    """People copy MRNs with spaces ("123 456"); the record keeps them without."""
    return "".join(raw.split())


def check_mrn(raw: object) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PatientError("mrn is required", field="mrn")
    if not isinstance(raw, str):
        raise PatientError("mrn must be text", field="mrn")
    mrn = normalise_mrn(raw)
    if len(mrn) > MRN_MAX:
        raise PatientError(f"mrn must have at most {MRN_MAX} characters", field="mrn")
    if not MRN_PATTERN.match(mrn):
        raise PatientError(
            f"mrn {_shown(mrn)} may hold only letters, digits and '-', starting with a letter "
            "or digit",
            field="mrn",
        )
    return mrn


def _has_control_characters(text: str, allow_newlines: bool = False) -> bool:
    """Control characters, lone surrogates (JSON can carry them; no database can store them
    as UTF-8) and the invisible characters that change how a name displays (app.text)."""
    return text_problem(text, multiline=allow_newlines) is not None


def is_storable_text(text: str) -> bool:
    """Whether the databases can hold ``text``: no NUL, no lone surrogate."""
    return "\x00" not in text and not any(unicodedata.category(c) == "Cs" for c in text)


def check_name(field: str, raw: object) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PatientError(f"{field} is required", field=field)
    if not isinstance(raw, str):
        raise PatientError(f"{field} must be text", field=field)
    name = raw.strip()
    if len(name) > NAME_MAX:
        raise PatientError(f"{field} must have at most {NAME_MAX} characters", field=field)
    if _has_control_characters(name):
        raise PatientError(f"{field} must be one line of plain text", field=field)
    return name


def check_birth_date(raw: object, *, today: date) -> date:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PatientError("birth_date is required", field="birth_date")
    if isinstance(raw, str):
        try:
            born = date.fromisoformat(raw.strip())
        except ValueError:
            raise PatientError(
                f"birth_date {_shown(raw)} is not a date; write it as YYYY-MM-DD",
                field="birth_date",
            ) from None
    elif isinstance(raw, date) and not isinstance(raw, datetime):
        born = raw
    else:
        raise PatientError("birth_date must be a date written YYYY-MM-DD", field="birth_date")
    if born > today:
        raise PatientError(
            f"birth_date {born.isoformat()} is in the future (today is {today.isoformat()})",
            field="birth_date",
        )
    if age_in_years(born, today) > OLDEST_AGE_YEARS:
        raise PatientError(
            f"birth_date {born.isoformat()} is more than {OLDEST_AGE_YEARS} years ago",
            field="birth_date",
        )
    return born


def check_sex(raw: object) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str) and raw.strip().lower() in SEXES:
        return raw.strip().lower()
    shown = _shown(raw) if isinstance(raw, str) else "a non-text value"
    raise PatientError(f"sex {shown} is not one of: {', '.join(SEXES)}", field="sex")


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


def check_weight(raw: object) -> Decimal:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PatientError("weight_kg is required", field="weight_kg")
    weight: Decimal | None = None
    if isinstance(raw, Decimal):
        weight = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        weight = Decimal(str(raw))  # str(): 70.1 means 70.1, not its binary neighbour
    elif isinstance(raw, str) and len(raw) <= _NUMBER_TEXT_MAX:
        try:
            weight = Decimal(raw.strip())
        except InvalidOperation:
            weight = None
    if weight is None or not weight.is_finite():
        raise PatientError("weight_kg must be a number of kilograms", field="weight_kg")
    if not WEIGHT_MIN_KG <= weight <= WEIGHT_MAX_KG:
        raise PatientError(
            f"weight_kg {weight} kg is outside the accepted range "
            f"{WEIGHT_MIN_KG}–{WEIGHT_MAX_KG} kg",
            field="weight_kg",
        )
    if _decimal_places(weight) > 2:
        raise PatientError(
            f"weight_kg {weight} kg has more than 2 decimal places", field="weight_kg"
        )
    return weight.quantize(WEIGHT_STEP)


def check_asthma(raw: object) -> bool:
    # Strict: asthma decides whether spirometry is required, so "no" must not become True.
    if not isinstance(raw, bool):
        raise PatientError("asthma must be true or false", field="asthma")
    return raw


def check_allergy_history(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise PatientError("allergy_history must be text", field="allergy_history")
    text = raw.strip()
    if len(text) > ALLERGY_HISTORY_MAX:
        raise PatientError(
            f"allergy_history must have at most {ALLERGY_HISTORY_MAX} characters",
            field="allergy_history",
        )
    if _has_control_characters(text, allow_newlines=True):
        raise PatientError(
            "allergy_history must be plain text (no control characters)", field="allergy_history"
        )
    return text or None


def clean_fields(fields: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """Check every field given (and only those); the first problem, in form order, is raised."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise PatientError(f"unknown field {unknown[0]!r}", field=unknown[0])
    checks = {
        "mrn": check_mrn,
        "family_name": lambda v: check_name("family_name", v),
        "given_name": lambda v: check_name("given_name", v),
        "birth_date": lambda v: check_birth_date(v, today=today),
        "sex": check_sex,
        "weight_kg": check_weight,
        "asthma": check_asthma,
        "allergy_history": check_allergy_history,
    }
    return {name: checks[name](fields[name]) for name in FIELDS if name in fields}


def age_in_years(birth_date: date, on: date) -> int:
    """Completed years of life on the day ``on``. Someone born on 29 February turns a year
    older on 1 March in common years."""
    if isinstance(birth_date, datetime) or isinstance(on, datetime):
        raise TypeError("age_in_years takes dates, not datetimes")
    if on < birth_date:
        raise ValueError(f"{on.isoformat()} is before the birth date {birth_date.isoformat()}")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - before_birthday


def age_in_months(birth_date: date, on: date) -> int:
    """Completed months of life on the day ``on`` (a month is complete on the same day of the
    month, or on the last day of a shorter month)."""
    if isinstance(birth_date, datetime) or isinstance(on, datetime):
        raise TypeError("age_in_months takes dates, not datetimes")
    if on < birth_date:
        raise ValueError(f"{on.isoformat()} is before the birth date {birth_date.isoformat()}")
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month
    last_day = calendar.monthrange(on.year, on.month)[1]
    if on.day < birth_date.day and on.day != last_day:
        months -= 1
    return months


def rules_age(birth_date: date, on: date) -> Decimal:
    """The age the alarm rules use, in years with whole months (6 months is 0.5): an infant's
    limits depend on months, not on completed years. A birth date after ``on`` counts as 0."""
    if on < birth_date:
        return Decimal(0)
    return Decimal(age_in_months(birth_date, on)) / 12


def age_words(birth_date: date, on: date) -> str:
    """The age as a clinician says it: months under 2 years ("6 months"), years after."""
    if on < birth_date:
        return "0 months"
    months = age_in_months(birth_date, on)
    if months < 24:
        return f"{months} month{'' if months == 1 else 's'}"
    return f"{age_in_years(birth_date, on)} y"
