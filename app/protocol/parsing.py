"""Parse user-typed values (CLI options, form fields) into exact decimals and template parameters.

Shared by the CLI and the preview page so both refuse the same input with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from app.protocol.model import UNITS, Protocol, ProtocolError
from app.protocol.templates import (
    BRIGHAM_DESIGNS,
    DEFAULT_BAG_VOLUME_ML,
    DEFAULT_DOUBLING_STEPS,
    DEFAULT_FACTOR,
    DEFAULT_FINAL_RATE_ML_H,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_START_FRACTION,
    DEFAULT_STEP_MINUTES,
    TEMPLATES,
    BagOverride,
    BrighamParameters,
    DosesParameters,
    DoublingParameters,
    build,
)

MAX_STEPS = 60
_BAG_OVERRIDE = re.compile(r"^\s*(?P<number>\d+)\s*:\s*(?P<pairs>.+)$")


def parse_decimal(text: str | None, what: str, field: str) -> Decimal:
    if text is None or str(text).strip() == "":
        raise ProtocolError(f"{what} is required", field=field)
    cleaned = str(text).strip().replace(",", "") if field != "doses" else str(text).strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ProtocolError(f"{what} must be a number, got {text!r}", field=field) from None
    if not value.is_finite():
        raise ProtocolError(f"{what} must be a number, got {text!r}", field=field)
    return value


def parse_positive(text: str | None, what: str, field: str) -> Decimal:
    value = parse_decimal(text, what, field)
    if value <= 0:
        raise ProtocolError(f"{what} must be greater than 0, got {text}", field=field)
    return value


def parse_fraction(text: str | None, what: str, field: str) -> Decimal:
    """'1/10000', '1:10000' or '0.0001'."""
    if text is None or str(text).strip() == "":
        raise ProtocolError(f"{what} is required", field=field)
    raw = str(text).strip().replace(",", "")
    for separator in ("/", ":"):
        if separator in raw:
            top, _, bottom = raw.partition(separator)
            numerator = parse_positive(top, what, field)
            denominator = parse_positive(bottom, what, field)
            return numerator / denominator
    return parse_positive(raw, what, field)


def parse_whole(text: str | None, what: str, field: str, low: int, high: int) -> int:
    value = parse_decimal(text, what, field)
    if value != value.to_integral_value():
        raise ProtocolError(f"{what} must be a whole number, got {text}", field=field)
    if not low <= value <= high:
        raise ProtocolError(f"{what} must be between {low} and {high}, got {text}", field=field)
    return int(value)


def parse_unit(text: str | None) -> str:
    unit = (text or "").strip()
    if not unit:
        raise ProtocolError(f"unit is required: use one of {', '.join(UNITS)}", field="unit")
    if unit not in UNITS:
        raise ProtocolError(f"unknown unit {text!r}: use one of {', '.join(UNITS)}", field="unit")
    return unit


def parse_template(text: str | None) -> str:
    template = (text or "").strip()
    if template not in TEMPLATES:
        raise ProtocolError(
            f"unknown template {text!r}: use one of {', '.join(TEMPLATES)}", field="template"
        )
    return template


def parse_doses(text: str | None) -> tuple[Decimal, ...]:
    if text is None or str(text).strip() == "":
        raise ProtocolError(
            "give the doses as a comma-separated list, e.g. 100,200,400", field="doses"
        )
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) > MAX_STEPS:
        raise ProtocolError(f"at most {MAX_STEPS} doses", field="doses")
    return tuple(
        parse_positive(part, f"dose {i}", "doses") for i, part in enumerate(parts, start=1)
    )


def parse_bag_override(text: str) -> tuple[int, BagOverride]:
    """'2:volume=50,amount=15' → (2, BagOverride(50, 15))."""
    match = _BAG_OVERRIDE.match(text or "")
    if not match:
        raise ProtocolError(
            f"bag override {text!r} must look like N:volume=ML,amount=A", field="bags"
        )
    number = int(match["number"])
    values: dict[str, Decimal] = {}
    for pair in match["pairs"].split(","):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in ("volume", "amount"):
            raise ProtocolError(
                f"bag override {text!r}: use volume=ML and/or amount=A", field="bags"
            )
        if key in values:
            raise ProtocolError(f"bag override {text!r} gives {key} twice", field="bags")
        values[key] = parse_positive(value, f"bag {number} {key}", "bags")
    return number, BagOverride(volume_ml=values.get("volume"), amount=values.get("amount"))


@dataclass
class ProtocolRequest:
    """Everything a user may type, as text. Only the options of the chosen template may be set."""

    template: str | None
    dose: str | None = None
    unit: str | None = None
    final_rate: str | None = None
    bag_volume: str | None = None
    step_minutes: str | None = None
    bags: list[str] = field(default_factory=list)
    start_fraction: str | None = None
    factor: str | None = None
    steps: str | None = None
    interval: str | None = None
    doses: str | None = None


BRIGHAM_OPTIONS = ("final_rate", "bag_volume", "step_minutes", "bags")
DOUBLING_OPTIONS = ("start_fraction", "factor", "steps", "interval")
DOSES_OPTIONS = ("doses", "interval")
OPTION_NAMES = {
    "final_rate": "--final-rate",
    "bag_volume": "--bag-volume",
    "step_minutes": "--step-minutes",
    "bags": "--bag",
    "start_fraction": "--start-fraction",
    "factor": "--factor",
    "steps": "--steps",
    "interval": "--interval",
    "doses": "--doses",
}


def build_from_request(request: ProtocolRequest, *, strict_options: bool = True) -> Protocol:
    """Parse and build. With strict_options, options that do not belong to the template are
    refused (the CLI); a form simply ignores the fields of other templates."""
    template = parse_template(request.template)
    unit = parse_unit(request.unit)
    allowed: tuple[str, ...]
    if template in BRIGHAM_DESIGNS:
        allowed = BRIGHAM_OPTIONS
    elif template == "doubling":
        allowed = DOUBLING_OPTIONS
    else:
        allowed = DOSES_OPTIONS
    if strict_options:
        for option in (*BRIGHAM_OPTIONS, *DOUBLING_OPTIONS, *DOSES_OPTIONS):
            given = getattr(request, option)
            if option not in allowed and given not in (None, "", []):
                raise ProtocolError(
                    f"{OPTION_NAMES[option]} does not apply to the {template} template",
                    field=option,
                )

    if template in BRIGHAM_DESIGNS:
        overrides: dict[int, BagOverride] = {}
        for text in request.bags:
            number, override = parse_bag_override(text)
            if number in overrides:
                raise ProtocolError(f"bag {number} is overridden twice", field="bags")
            overrides[number] = override
        parameters = BrighamParameters(
            target_dose=parse_positive(request.dose, "dose", "dose"),
            unit=unit,
            final_rate_ml_h=_optional(
                request.final_rate, "final rate", "final_rate", DEFAULT_FINAL_RATE_ML_H
            ),
            bag_volume_ml=_optional(
                request.bag_volume, "bag volume", "bag_volume", DEFAULT_BAG_VOLUME_ML
            ),
            step_minutes=_optional(
                request.step_minutes, "step minutes", "step_minutes", DEFAULT_STEP_MINUTES
            ),
            bag_overrides=overrides,
        )
        return build(template, parameters)
    interval = _optional(request.interval, "interval", "interval", DEFAULT_INTERVAL_MINUTES)
    if template == "doubling":
        doubling = DoublingParameters(
            target_dose=parse_positive(request.dose, "dose", "dose"),
            unit=unit,
            start_fraction=DEFAULT_START_FRACTION
            if _blank(request.start_fraction)
            else parse_fraction(request.start_fraction, "start fraction", "start_fraction"),
            factor=_optional(request.factor, "factor", "factor", DEFAULT_FACTOR),
            steps=DEFAULT_DOUBLING_STEPS
            if _blank(request.steps)
            else parse_whole(request.steps, "steps", "steps", 2, MAX_STEPS),
            interval_minutes=interval,
        )
        return build(template, doubling)
    doses = DosesParameters(
        doses=parse_doses(request.doses),
        unit=unit,
        interval_minutes=interval,
        target_dose=None if _blank(request.dose) else parse_positive(request.dose, "dose", "dose"),
    )
    return build(template, doses)


def _blank(text: str | None) -> bool:
    return text is None or str(text).strip() == ""


def _optional(text: str | None, what: str, field: str, default: Decimal) -> Decimal:
    return default if _blank(text) else parse_positive(text, what, field)
