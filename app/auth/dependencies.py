"""Request-level authentication and authorization: `require_permission(action)` on every route.

The dependency signs the request in from its cookie, checks the session-bound CSRF token on
unsafe methods, and checks the permission table. Refusals are raised as exceptions that
app.main turns into 401/403 answers (JSON for /api, pages otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app import clock, config
from app.audit import RequestInfo
from app.auth import service, sign_in
from app.auth.csrf import CSRF_FIELD, CSRF_HEADER, tokens_match
from app.auth.service import SignedIn
from app.deps import DB, PersonClock, Settings
from app.permissions import is_allowed, refusal_reason

SESSION_COOKIE = "stepwise_session"
# Over HTTPS the __Host- prefix makes the browser refuse a cookie that is not Secure, not
# Path=/ or that names a Domain: no subdomain can plant or widen it.
SECURE_SESSION_COOKIE = "__Host-stepwise_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNRESOLVED = object()


class NotSignedIn(Exception):
    """No valid login session."""


class Forbidden(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def session_cookie_name(request: Request) -> str:
    return SECURE_SESSION_COOKIE if request.url.scheme == "https" else SESSION_COOKIE


def request_info_of(connection: HTTPConnection) -> RequestInfo:
    return RequestInfo(
        client_addr=connection.client.host if connection.client else None,
        user_agent=(connection.headers.get("user-agent") or "")[:300] or None,
        request_id=connection.scope.get("state", {}).get("request_id"),
    )


def request_info(request: Request) -> RequestInfo:
    return request_info_of(request)


async def current_login(
    request: Request, db: AsyncSession, person_clock: clock.Clock, settings: config.Settings
) -> SignedIn | None:
    cached = getattr(request.state, "signed_in", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached  # type: ignore[return-value]
    signed_in = await sign_in.resolve(
        db,
        person_clock,
        settings,
        request.cookies.get(session_cookie_name(request)),
        request_info(request),
    )
    request.state.signed_in = signed_in
    return signed_in


async def _submitted_csrf_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # parsed once; the route's Form() fields reuse it
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


class RequirePermission:
    """Dependency: the signed-in user, provided their role may perform `action`."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __repr__(self) -> str:
        return f"RequirePermission({self.action!r})"

    async def __call__(
        self, request: Request, db: DB, person_clock: PersonClock, settings: Settings
    ) -> SignedIn:
        signed_in = await current_login(request, db, person_clock, settings)
        if signed_in is None:
            raise NotSignedIn()
        target = f"{request.method} {request.url.path}"
        if request.method in UNSAFE_METHODS and not tokens_match(
            signed_in.login.csrf_token, await _submitted_csrf_token(request)
        ):
            reason = "missing or wrong CSRF token; reload the page and try again"
            await service.record_refusal(
                db,
                person_clock,
                actor=signed_in.actor,
                action=self.action,
                target=target,
                reason=reason,
                request=request_info(request),
            )
            raise Forbidden(reason)
        if not is_allowed(signed_in.user.role, self.action):
            reason = refusal_reason(signed_in.user.role, self.action)
            await service.record_refusal(
                db,
                person_clock,
                actor=signed_in.actor,
                action=self.action,
                target=target,
                reason=reason,
                request=request_info(request),
            )
            raise Forbidden(reason)
        return signed_in


def require_permission(action: str) -> Any:
    return Depends(RequirePermission(action))
