"""The home page: what this person may do, by role."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.dependencies import require_permission
from app.auth.service import SignedIn
from app.templating import templates

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, _: SignedIn = require_permission("account.use")) -> HTMLResponse:
    return templates.TemplateResponse(request, "home.html")
