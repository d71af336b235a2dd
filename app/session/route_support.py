"""What the session's JSON routes share: the caller, the Idempotency-Key, and answering a
command with the session's view. Not a route module: the routes import it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock as clocks
from app import config
from app import doorbell as doorbells
from app.auth import sign_in
from app.auth.dependencies import request_info
from app.auth.service import LoginRefused, SignedIn
from app.deps import DB
from app.permissions import is_allowed
from app.session import machine as M
from app.session import schemas, service, store
from app.session.errors import Refusal
from app.session.models import DesensitizationSession
from app.session.unit_of_work import Caller

Id = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]
MAX_IDEMPOTENCY_KEY = 200


def caller_of(request: Request, signed_in: SignedIn) -> Caller:
    return Caller(signed_in.actor, request_info(request))


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise Refusal("invalid", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key


async def answer_call(
    request: Request,
    body: schemas.Strict,
    call: Callable[[str | None, str], Awaitable[tuple[int, dict[str, Any]]]],
) -> JSONResponse:
    """Run a service call with this request's Idempotency-Key and fingerprint; answer JSON.
    A refusal is answered by the application's handler."""
    fingerprint = service.fingerprint_of(request.url.path, body.model_dump(mode="json"))
    status, payload = await call(idempotency_key_of(request), fingerprint)
    return JSONResponse(payload, status_code=status)


async def answer_command(
    request: Request,
    db: AsyncSession,
    clock: clocks.Clock,
    doorbell: doorbells.Doorbell,
    signed_in: SignedIn,
    session_id: Id,
    command: M.Command,
    body: schemas.Versioned,
    alarm_work: service.AlarmWork | None = None,
) -> JSONResponse:
    return await answer_call(
        request,
        body,
        lambda key, fingerprint: service.run_command(
            db,
            clock,
            doorbell,
            caller_of(request, signed_in),
            session_id,
            command,
            expected_version=body.expected_version,
            idempotency_key=key,
            fingerprint=fingerprint,
            alarm_work=alarm_work,
        ),
    )


async def session_row(session_id: Id, db: DB) -> DesensitizationSession:
    """The session of the path, or 404 `{"detail": "no session N"}` (a not_found refusal)."""
    return await store.load(db, session_id)


SessionRow = Annotated[DesensitizationSession, Depends(session_row)]


async def cosigner_of(
    request: Request,
    db: AsyncSession,
    clock: clocks.Clock,
    settings: config.Settings,
    signed_in: SignedIn,
    body: schemas.CosignedIn,
    session_id: int,
) -> int | None:
    """The second clinician's user id, their credentials checked; None when none given."""
    if body.cosigner_username is None and body.cosigner_password is None:
        return None
    if body.cosigner_username is None or body.cosigner_password is None:
        raise Refusal("invalid", "the second check needs the co-signer's user name and password")
    try:
        user = await sign_in.confirm_identity(
            db,
            clock,
            settings,
            username=body.cosigner_username,
            password=body.cosigner_password,
            request=request_info(request),
            purpose=f"double check of session {session_id}",
        )
    except LoginRefused as refused:
        raise Refusal(
            "forbidden", f"the second check was not signed: {refused.message}", field="cosigner"
        ) from None
    if not is_allowed(user.role, "session.bedside"):
        raise Refusal(
            "forbidden", f"the second check is for a nurse or a physician, not a {user.role}"
        )
    return user.id
