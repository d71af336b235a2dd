"""Protocol preview page: a form whose table follows the parameters as they are typed.

Thin shell: read the query, let the pure engine build or refuse (app.protocol.form), render. GET
only — nothing is written, so the page is safe to bookmark and to refresh.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import require_permission
from app.protocol.form import FORM_FIELDS, preview_context
from app.templating import templates

router = APIRouter(
    prefix="/protocols",
    tags=["protocols"],
    include_in_schema=False,  # HTML pages; the API is /api/v1
    dependencies=[require_permission("protocol.preview")],
)

DEFAULTS = {"template": "brigham-12", "dose": "2000", "unit": "mg"}


def _form_values(request: Request) -> dict[str, str]:
    query = request.query_params
    if not any(name in query for name in FORM_FIELDS):
        return dict(DEFAULTS)
    return {name: query.get(name, "") for name in FORM_FIELDS}


@router.get("/preview", response_class=HTMLResponse)
async def preview_page(request: Request) -> HTMLResponse:
    context, status = preview_context(_form_values(request))
    return templates.TemplateResponse(request, "protocol/preview.html", context, status_code=status)


@router.get("/preview/result", response_class=HTMLResponse)
async def preview_result(request: Request) -> HTMLResponse:
    values = _form_values(request)
    context, status = preview_context(values)
    response = templates.TemplateResponse(
        request, "protocol/_result.html", {**context, "oob_errors": True}, status_code=status
    )
    # Keep the address bar in step with the form, so a preview can be bookmarked or shared.
    response.headers["HX-Replace-Url"] = "/protocols/preview?" + urlencode(values)
    return response
