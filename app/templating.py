"""The Jinja2 environment shared by every page and fragment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import localtime
from app.deps import server_clock_if_started
from app.permissions import ROLE_TITLES, is_allowed
from app.static_assets import static_url

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _server_clock(request: Request) -> dict[str, Any]:
    # Every page shows the server's time, and says so when a training clock runs fast.
    clock = server_clock_if_started(request)
    if clock is None:
        return {"server_now": None, "clock_speed": 1.0}
    return {"server_now": clock.now(), "clock_speed": clock.speed}


def _signed_in(request: Request) -> dict[str, Any]:
    # Set by app.auth.dependencies when the request was signed in; pages use it for the header,
    # the sign-out form and the CSRF token htmx sends with every unsafe request.
    signed_in = getattr(request.state, "signed_in", None)
    return {
        "signed_in": signed_in,
        "csrf_token": signed_in.login.csrf_token if signed_in else None,
        "may": (lambda action: is_allowed(signed_in.user.role, action)) if signed_in else None,
        "role_titles": ROLE_TITLES,
    }


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_server_clock, _signed_in])
# Times as the facility reads them (app.localtime): every template, live fragments included.
templates.env.globals.update(
    local=localtime.local,
    stamp=localtime.stamp,
    clock_time=localtime.clock,
    short_time=localtime.short,
    zone_name=localtime.zone_name,
    zone_abbreviation=localtime.abbreviation,
    static=static_url,
)


def no_such_session(request: Request, session_id: int) -> HTMLResponse:
    """The 404 page of every screen that shows one session."""
    return templates.TemplateResponse(
        request,
        "errors/not_found.html",
        {"what": f"There is no session {session_id}."},
        status_code=404,
    )
