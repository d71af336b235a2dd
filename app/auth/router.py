"""Sign-in, sign-out and account management: pages and the JSON API. Thin: parse, authorize,
call app.auth.service, render."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock, config
from app.auth import login_failures, service, sign_in
from app.auth.dependencies import (
    current_login,
    request_info,
    require_permission,
    session_cookie_name,
)
from app.auth.schemas import AccountChange, Me, UserCreate, UserOut, UserUnlocked
from app.auth.service import (
    AccountError,
    AccountRefusal,
    LoginRefusal,
    LoginRefused,
    SignedIn,
)
from app.deps import DB, PersonClock, Settings
from app.permissions import ROLE_TITLES, ROLES, is_allowed
from app.templating import templates

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["accounts"])

LOGIN_NONCE_COOKIE = "stepwise_login_nonce"
# A refused sign-in's answer: the page and the JSON call say the same.
STATUS_OF_LOGIN_REFUSAL: dict[LoginRefusal, int] = {
    "invalid": 422,
    "refused": 401,
    "throttled": 429,
}


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host, never a scheme."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_token(settings: config.Settings, nonce: str) -> str:
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()


def _nonce_cookie_name(request: Request) -> str:
    return ("__Host-" if request.url.scheme == "https" else "") + LOGIN_NONCE_COOKIE


def _login_page(
    request: Request,
    settings: config.Settings,
    *,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    # The user name is never written back into the form: people type passwords into it, and a
    # bedside tablet is shared.
    nonce = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "auth/login.html",
        {
            "login_token": _login_token(settings, nonce),
            "next_path": next_path,
            "error": error,
        },
        status_code=status_code,
    )
    response.set_cookie(
        _nonce_cookie_name(request),
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(
    request: Request,
    db: DB,
    person_clock: PersonClock,
    settings: Settings,
    next: str | None = None,
) -> Response:
    if await current_login(request, db, person_clock, settings) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, settings, next_path=_safe_next(next))


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_submit(
    request: Request,
    db: DB,
    person_clock: PersonClock,
    settings: Settings,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    login_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if request.headers.get("content-type", "").startswith("application/json"):
        return await _sign_in_in_place(request, db, person_clock, settings)
    next_path = _safe_next(next)
    nonce = request.cookies.get(_nonce_cookie_name(request))
    if not nonce or not hmac.compare_digest(_login_token(settings, nonce), login_token):
        return _login_page(
            request,
            settings,
            next_path=next_path,
            status_code=403,
            error="the sign-in form expired; please sign in again",
        )
    if not username.strip() or not password:
        return _login_page(
            request,
            settings,
            next_path=next_path,
            status_code=422,
            error="enter your user name and password",
        )
    try:
        new_login = await sign_in.login(
            db,
            person_clock,
            settings,
            username=username,
            password=password,
            request=request_info(request),
        )
    except LoginRefused as refused:
        page = _login_page(
            request,
            settings,
            next_path=next_path,
            error=refused.message,
            status_code=STATUS_OF_LOGIN_REFUSAL[refused.kind],
        )
        _say_when_to_retry(page, refused)
        return page
    response = RedirectResponse(next_path, status_code=303)
    _set_session_cookie(request, settings, response, new_login.token)
    response.delete_cookie(_nonce_cookie_name(request), path="/")
    return response


def _say_when_to_retry(response: Response, refused: LoginRefused) -> None:
    if refused.retry_after is not None:
        response.headers["Retry-After"] = str(refused.retry_after)


def _set_session_cookie(
    request: Request, settings: config.Settings, response: Response, token: str
) -> None:
    response.set_cookie(
        session_cookie_name(request),
        token,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


async def _sign_in_in_place(
    request: Request, db: AsyncSession, person_clock: clock.Clock, settings: config.Settings
) -> Response:
    """A live page whose sign-in ended asks for the password where the nurse stands, keeping
    what she entered: `{"username", "password"}` as JSON, answered with the new CSRF token.
    Only same-origin scripts can send it (SecurityMiddleware refuses cross-site requests, and a
    cross-site form cannot send JSON), so the sign-in form's nonce is not needed here."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"detail": "send username and password as JSON"}, status_code=422)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return JSONResponse({"detail": "enter your user name and password"}, status_code=422)
    if not username.strip() or not password or len(username) > 200 or len(password) > 256:
        return JSONResponse({"detail": "enter your user name and password"}, status_code=422)
    try:
        new_login = await sign_in.login(
            db,
            person_clock,
            settings,
            username=username,
            password=password,
            request=request_info(request),
        )
    except LoginRefused as refused:
        answer = JSONResponse(
            {"detail": refused.message}, status_code=STATUS_OF_LOGIN_REFUSAL[refused.kind]
        )
        _say_when_to_retry(answer, refused)
        return answer
    user = new_login.signed_in.user
    response = JSONResponse(
        {
            "csrf_token": new_login.signed_in.login.csrf_token,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
        }
    )
    _set_session_cookie(request, settings, response, new_login.token)
    return response


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request,
    db: DB,
    person_clock: PersonClock,
    signed_in: SignedIn = require_permission("account.use"),
) -> Response:
    await sign_in.logout(db, person_clock, signed_in, request_info(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/")
    if request.headers.get("hx-request"):
        response.headers["HX-Redirect"] = "/login"
    return response


# --- account management pages ------------------------------------------------------------------


async def _users_page(
    request: Request,
    db: AsyncSession,
    signed_in: SignedIn,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "auth/users.html",
        {
            "users": await service.list_users(db),
            "may_manage": is_allowed(signed_in.user.role, "user.manage"),
            "roles": [(role, ROLE_TITLES[role]) for role in ROLES],
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
async def users_page(
    request: Request, db: DB, signed_in: SignedIn = require_permission("user.read")
) -> HTMLResponse:
    return await _users_page(request, db, signed_in)


@router.post("/admin/users", response_class=HTMLResponse, include_in_schema=False)
async def users_create(
    request: Request,
    db: DB,
    person_clock: PersonClock,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    signed_in: SignedIn = require_permission("user.manage"),
) -> HTMLResponse:
    values = {"username": username, "role": role, "display_name": display_name}
    try:
        user = await service.create_user(
            db,
            person_clock,
            actor=signed_in.actor,
            username=username,
            role=role,
            password=password,
            display_name=display_name,
            request=request_info(request),
        )
    except AccountError as error:
        return await _users_page(
            request,
            db,
            signed_in,
            errors={error.field or "general": error.message},
            values=values,
            status_code=422,
        )
    return await _users_page(
        request, db, signed_in, notice=f"Created {user.username} ({ROLE_TITLES[user.role]})."
    )


@router.post(
    "/admin/users/{username}/{change}", response_class=HTMLResponse, include_in_schema=False
)
async def users_change(
    request: Request,
    db: DB,
    person_clock: PersonClock,
    username: str,
    change: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    signed_in: SignedIn = require_permission("user.manage"),
) -> HTMLResponse:
    if change not in ("disable", "enable"):
        return await _users_page(
            request,
            db,
            signed_in,
            errors={"general": f"unknown change {change!r}"},
            status_code=404,
        )
    if change == "disable" and not reason.strip():
        return await _users_page(
            request,
            db,
            signed_in,
            errors={"general": f"give a reason to disable {username}"},
            status_code=422,
        )
    try:
        user = await service.set_disabled(
            db,
            person_clock,
            actor=signed_in.actor,
            username=username,
            disabled=change == "disable",
            reason=reason or None,
            request=request_info(request),
        )
    except AccountError as error:
        return await _users_page(
            request, db, signed_in, errors={"general": error.message}, status_code=422
        )
    return await _users_page(request, db, signed_in, notice=f"{user.username}: {change}d.")


# --- JSON API ----------------------------------------------------------------------------------


def _user_out(user) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        disabled=user.disabled_at is not None,
        created_at=user.created_at,
    )


STATUS_OF_REFUSAL: dict[AccountRefusal, int] = {"invalid": 422, "not_found": 404, "conflict": 409}


def _account_error(error: AccountError) -> JSONResponse:
    return JSONResponse(
        {"detail": error.message, "field": error.field},
        status_code=STATUS_OF_REFUSAL[error.kind],
    )


@api.get("/me", response_model=Me)
async def me(signed_in: SignedIn = require_permission("account.use")) -> Me:
    return Me(
        username=signed_in.user.username,
        display_name=signed_in.user.display_name,
        role=signed_in.user.role,
        session_expires_at=signed_in.login.expires_at,
    )


@api.get("/users", response_model=list[UserOut])
async def api_list_users(db: DB, _: SignedIn = require_permission("user.read")) -> list[UserOut]:
    return [_user_out(user) for user in await service.list_users(db)]


@api.post("/users", response_model=UserOut, status_code=201)
async def api_create_user(
    request: Request,
    body: UserCreate,
    db: DB,
    person_clock: PersonClock,
    signed_in: SignedIn = require_permission("user.manage"),
) -> UserOut | JSONResponse:
    try:
        user = await service.create_user(
            db,
            person_clock,
            actor=signed_in.actor,
            username=body.username,
            role=body.role,
            password=body.password,
            display_name=body.display_name,
            request=request_info(request),
        )
    except AccountError as error:
        return _account_error(error)
    return _user_out(user)


@api.post("/users/{username}/disable", response_model=UserOut)
async def api_disable_user(
    request: Request,
    username: str,
    db: DB,
    person_clock: PersonClock,
    body: AccountChange | None = None,
    signed_in: SignedIn = require_permission("user.manage"),
) -> UserOut | JSONResponse:
    return await _api_change(request, db, person_clock, signed_in, username, True, body)


@api.post("/users/{username}/enable", response_model=UserOut)
async def api_enable_user(
    request: Request,
    username: str,
    db: DB,
    person_clock: PersonClock,
    body: AccountChange | None = None,
    signed_in: SignedIn = require_permission("user.manage"),
) -> UserOut | JSONResponse:
    return await _api_change(request, db, person_clock, signed_in, username, False, body)


@api.post("/users/{username}/unlock", response_model=UserUnlocked)
async def api_unlock_user(
    request: Request,
    username: str,
    db: DB,
    person_clock: PersonClock,
    settings: Settings,
    body: AccountChange | None = None,
    signed_in: SignedIn = require_permission("user.manage"),
) -> UserUnlocked | JSONResponse:
    """Forget the failed sign-ins of a user name from every address, ending its throttles.
    A reason is required; it is kept in the audit log."""
    try:
        unlocked = await login_failures.unlock(
            db,
            person_clock,
            settings,
            actor=signed_in.actor,
            username=username,
            reason=body.reason if body else None,
            request=request_info(request),
        )
    except AccountError as error:
        return _account_error(error)
    return UserUnlocked(
        username=unlocked.username,
        failures_cleared=unlocked.failures_cleared,
        throttles_ended=unlocked.throttles_ended,
    )


async def _api_change(
    request: Request,
    db: AsyncSession,
    person_clock: clock.Clock,
    signed_in: SignedIn,
    username: str,
    disabled: bool,
    body: AccountChange | None,
) -> UserOut | JSONResponse:
    try:
        user = await service.set_disabled(
            db,
            person_clock,
            actor=signed_in.actor,
            username=username,
            disabled=disabled,
            reason=body.reason if body else None,
            request=request_info(request),
        )
    except AccountError as error:
        return _account_error(error)
    return _user_out(user)
