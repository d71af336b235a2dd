"""Rounding for display. Values are kept exact everywhere else."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

MIN_DECIMALS = 3
JSON_SIGNIFICANT_DIGITS = 12


MIN_SIGNIFICANT = 3


def display_decimals(
    value: Decimal, min_decimals: int = MIN_DECIMALS, min_significant: int = MIN_SIGNIFICANT
) -> int:
    """At least `min_decimals` places, and at least `min_significant` significant digits for
    small values, so a 1/1000 bag never shows as 0.000."""
    if value == 0 or not value.is_finite():
        return min_decimals
    leading = value.copy_abs().adjusted()  # exponent of the first significant digit
    return max(min_decimals, min_significant - 1 - leading)


def quantized(value: Decimal, places: int) -> Decimal:
    """`value` rounded half up to `places` decimals, whatever its size: the working precision
    grows with the number, so a display can never fail on a large one (quantize raises once
    the result has more digits than the context's precision, 28 by default)."""
    if not value.is_finite():
        return value
    with localcontext() as ctx:
        ctx.prec = max(28, value.adjusted() + max(places, 0) + 3)
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_for_display(
    value: Decimal, min_decimals: int = MIN_DECIMALS, min_significant: int = MIN_SIGNIFICANT
) -> Decimal:
    return quantized(value, display_decimals(value, min_decimals, min_significant))


def format_quantity(
    value: Decimal, min_decimals: int = MIN_DECIMALS, min_significant: int = MIN_SIGNIFICANT
) -> str:
    return f"{round_for_display(value, min_decimals, min_significant):f}"


def format_trimmed(value: Decimal, keep_decimals: int = 0) -> str:
    """Like format_quantity, without trailing zeros past `keep_decimals`: rates read 2.0, 0.625,
    minutes read 15 or 174.375."""
    text = format_quantity(value)
    if "." not in text:
        return text
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(keep_decimals, "0")
    return f"{whole}.{fraction}" if fraction else whole


def format_percent(value: Decimal) -> str:
    return format_quantity(value, min_decimals=2, min_significant=2)


def format_plain(value: Decimal) -> str:
    """Input echo: '2000' not '2000.000', '0.0001' not '1E-4'."""
    text = f"{value.normalize():f}"
    return text


def json_number(value: Decimal) -> int | float:
    """A JSON number with 12 significant digits: exact for every printed table we reproduce,
    and never rounds a tiny dilute dose down to zero."""
    with localcontext() as ctx:
        ctx.prec = JSON_SIGNIFICANT_DIGITS
        rounded = +value
    if rounded == rounded.to_integral_value():
        return int(rounded)
    return float(rounded)


def format_duration(minutes: Decimal) -> str:
    """'5 h 39 min' — whole minutes, rounded down like the published tables."""
    whole = int(minutes)
    hours, rest = divmod(whole, 60)
    if hours == 0:
        return f"{rest} min"
    return f"{hours} h {rest:02d} min"
