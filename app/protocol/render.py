"""Protocol → JSON-ready dict (the CLI contract of product-spec §2) and → plain-text table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.protocol.display import (
    format_duration,
    format_percent,
    format_plain,
    format_quantity,
    format_trimmed,
    json_number,
)
from app.protocol.model import Protocol


def to_json_dict(protocol: Protocol) -> dict[str, Any]:
    def number(value: Decimal | None) -> int | float | None:
        return None if value is None else json_number(value)

    return {
        "template": protocol.template,
        "target_dose": number(protocol.target_dose),
        "unit": protocol.unit,
        "solutions": [
            {
                "number": s.number,
                "volume_ml": number(s.volume_ml),
                "concentration": number(s.concentration),
                "amount": number(s.amount),
            }
            for s in protocol.solutions
        ],
        "steps": [
            {
                "number": s.number,
                "solution": s.solution,
                "rate_ml_h": number(s.rate_ml_h),
                "minutes": number(s.minutes),
                "volume_ml": number(s.volume_ml),
                "dose": number(s.dose),
                "cumulative_dose": number(s.cumulative_dose),
            }
            for s in protocol.steps
        ],
        "total_minutes": number(protocol.total_minutes),
    }


def to_text_table(protocol: Protocol) -> str:
    unit = protocol.unit
    lines = [
        f"{protocol.template}: target {format_plain(protocol.target_dose)} {unit}, "
        f"{len(protocol.steps)} steps, total {format_quantity(protocol.total_minutes)} min "
        f"({format_duration(protocol.total_minutes)})",
    ]
    if protocol.solutions:
        lines.append("")
        lines.append(
            _row(
                ["bag", "dilution", "volume mL", f"conc {unit}/mL", f"amount {unit}"],
                [4, 9, 10, 14, 14],
            )
        )
        for s in protocol.solutions:
            label = s.label + (" *" if s.overridden else "")
            lines.append(
                _row(
                    [
                        str(s.number),
                        label,
                        format_quantity(s.volume_ml),
                        format_quantity(s.concentration),
                        format_quantity(s.amount),
                    ],
                    [4, 9, 10, 14, 14],
                )
            )
    lines.append("")
    widths = [4, 4, 10, 9, 10, 14, 14, 9]
    lines.append(
        _row(
            [
                "step",
                "bag",
                "rate mL/h",
                "minutes",
                "volume mL",
                f"dose {unit}",
                f"cumul. {unit}",
                "% target",
            ],
            widths,
        )
    )
    for step in protocol.steps:
        mark = {"inserted": " +", "edited": " ~"}.get(step.origin, "")
        lines.append(
            _row(
                [
                    f"{step.number}{mark}",
                    "-" if step.solution is None else str(step.solution),
                    "-" if step.rate_ml_h is None else format_trimmed(step.rate_ml_h, 1),
                    format_trimmed(step.minutes),
                    "-" if step.volume_ml is None else format_quantity(step.volume_ml),
                    format_quantity(step.dose),
                    format_quantity(step.cumulative_dose),
                    format_percent(step.percent_of_target),
                ],
                widths,
            )
        )
    legend = []
    if any(s.overridden for s in protocol.solutions):
        legend.append("* bag recipe set by hand")
    if any(s.origin == "inserted" for s in protocol.steps):
        legend.append("+ inserted step")
    if any(s.origin == "edited" for s in protocol.steps):
        legend.append("~ edited step")
    if legend:
        lines.append("")
        lines.append("; ".join(legend))
    for note in protocol.notes:
        lines.append("")
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def _row(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    out = first.ljust(widths[0])
    for cell, width in zip(rest, widths[1:], strict=True):
        out += "  " + cell.rjust(width)
    return out.rstrip()
