"""FHIR's value types made from the record's: times in UTC with Z, decimals as JSON numbers
rounded to 12 significant digits, references, text concepts, dose quantities in UCUM. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, Final

UCUM: Final = "http://unitsofmeasure.org"
SIGNIFICANT_DIGITS: Final = 12
# Plan units -> UCUM; "units" has no single UCUM meaning (IU? enzyme units?), so it stays text.
UCUM_DOSE_UNITS: Final[Mapping[str, str]] = {"mg": "mg", "g": "g", "mcg": "ug"}


def utc_time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


def stamp(value: str | datetime | None) -> str | None:
    """FHIR dateTime/instant: ISO 8601 in UTC with ``Z``."""
    moment = utc_time(value)
    if moment is None:
        return None
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def number(value: str | Decimal | int | None) -> int | float | None:
    """A JSON number for a FHIR decimal, rounded to 12 significant digits (exact decimals
    from the dose ledger carry up to 60)."""
    if value is None:
        return None
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    with localcontext() as ctx:
        ctx.prec = SIGNIFICANT_DIGITS
        ctx.rounding = ROUND_HALF_EVEN
        number = (+number).normalize()
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def reference(full_url: str, display: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"reference": full_url}
    if display:
        reference["display"] = display
    return reference


def text_concept(text: str) -> dict[str, Any]:
    return {"text": text}


def dose_quantity(amount: str | Decimal | None, unit: str) -> dict[str, Any] | None:
    value = number(amount)
    if value is None:
        return None
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if unit in UCUM_DOSE_UNITS:
        quantity |= {"system": UCUM, "code": UCUM_DOSE_UNITS[unit]}
    return quantity
