"""The protocol form: its fields, how its values become a protocol request, and the context the
preview table renders from. Shared by the protocol preview page and the new-session page, which
shows the same table. Pure: values in, a request or a template context out.
"""

from __future__ import annotations

from app.protocol.display import (
    format_duration,
    format_percent,
    format_plain,
    format_quantity,
    format_trimmed,
)
from app.protocol.model import UNITS, Protocol, ProtocolError
from app.protocol.parsing import ProtocolRequest, build_from_request
from app.protocol.templates import TEMPLATE_TITLES, TEMPLATES

FORM_FIELDS = (
    "template",
    "dose",
    "unit",
    "final_rate",
    "bag_volume",
    "step_minutes",
    "bags",
    "start_fraction",
    "factor",
    "steps",
    "interval",
    "doses",
)
# Errors about inputs that have no field of their own are shown above the table.
FIELDS_WITH_ERROR_SLOT = FORM_FIELDS


def protocol_request(values: dict[str, str]) -> ProtocolRequest:
    bags = [part for part in values.get("bags", "").replace("\n", ";").split(";") if part.strip()]
    return ProtocolRequest(
        template=values.get("template"),
        dose=values.get("dose"),
        unit=values.get("unit"),
        final_rate=values.get("final_rate"),
        bag_volume=values.get("bag_volume"),
        step_minutes=values.get("step_minutes"),
        bags=bags,
        start_fraction=values.get("start_fraction"),
        factor=values.get("factor"),
        steps=values.get("steps"),
        interval=values.get("interval"),
        doses=values.get("doses"),
    )


def preview_context(values: dict[str, str]) -> tuple[dict, int]:
    """The preview table's template context and the status to answer with (422 when the values
    build no protocol)."""
    protocol: Protocol | None = None
    errors: dict[str, str] = {}
    try:
        # The form keeps the fields of every template; only the chosen template's count.
        protocol = build_from_request(protocol_request(values), strict_options=False)
    except ProtocolError as error:
        slot = error.field if error.field in FIELDS_WITH_ERROR_SLOT else "general"
        errors[slot] = error.message
    context = {
        "values": values,
        "protocol": protocol,
        "errors": errors,
        "error_slots": FIELDS_WITH_ERROR_SLOT,
        "templates_available": [(name, TEMPLATE_TITLES[name]) for name in TEMPLATES],
        "units": UNITS,
        "q": format_quantity,
        "pct": format_percent,
        "trim": format_trimmed,
        "plain": format_plain,
        "duration": format_duration,
    }
    return context, (200 if protocol is not None else 422)
