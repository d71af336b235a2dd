"""Protocol preview page: a form whose table follows the parameters as they are typed.

Thin shell: read the query, let the pure engine build or refuse, render. GET only — nothing is
written, so the page is safe to bookmark and to refresh.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import require_permission
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
from app.templating import templates

router = APIRouter(
    prefix="/protocols",
    tags=["protocols"],
    include_in_schema=False,  # HTML pages; the API is /api/v1
    dependencies=[require_permission("protocol.preview")],
)

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
DEFAULTS = {"template": "brigham-12", "dose": "2000", "unit": "mg"}


def _form_values(request: Request) -> dict[str, str]:
    query = request.query_params
    if not any(name in query for name in FORM_FIELDS):
        return dict(DEFAULTS)
    return {name: query.get(name, "") for name in FORM_FIELDS}


def _protocol_request(values: dict[str, str]) -> ProtocolRequest:
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


def _context(values: dict[str, str]) -> tuple[dict, int]:
    protocol: Protocol | None = None
    errors: dict[str, str] = {}
    try:
        # The form keeps the fields of every template; only the chosen template's count.
        protocol = build_from_request(_protocol_request(values), strict_options=False)
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


@router.get("/preview", response_class=HTMLResponse)
async def preview_page(request: Request) -> HTMLResponse:
    context, status = _context(_form_values(request))
    return templates.TemplateResponse(request, "protocol/preview.html", context, status_code=status)


@router.get("/preview/result", response_class=HTMLResponse)
async def preview_result(request: Request) -> HTMLResponse:
    values = _form_values(request)
    context, status = _context(values)
    response = templates.TemplateResponse(
        request, "protocol/_result.html", {**context, "oob_errors": True}, status_code=status
    )
    # Keep the address bar in step with the form, so a preview can be bookmarked or shared.
    response.headers["HX-Replace-Url"] = "/protocols/preview?" + urlencode(values)
    return response
