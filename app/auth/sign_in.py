"""Sign-in sessions: signing in (behind the throttle of app.auth.login_failures), the cookie
token resolved to who is signed in, timeouts, signing out. Each public function is one unit of
work and commits."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import RequestInfo
from app.audit import service as audit_service
from app.auth import passwords, refusals, throttle
from app.auth.login_failures import (
    buffer_key,
    end_stale_throttles,
    end_throttles,
    failure_key,
    from_addr,
    read_tally,
    refuse,
    tally_key_of,
    throttle_decision,
    throttle_policy,
    throttled_answer,
)
from app.auth.models import LoginFailure, LoginSession, LoginThrottle, User
from app.auth.service import (
    ANONYMOUS_ACTOR,
    LoginRefused,
    SignedIn,
    actor_of,
    normalise_username,
)
from app.clock import Clock
from app.config import Settings
from app.db import DEFERRED_BEGIN, LONE_READ
from app.text import text_problem

logger = logging.getLogger(__name__)

# Writing last_seen_at on every request would make every read a write; a minute is precise
# enough for an idle timeout counted in tens of minutes.
TOUCH_INTERVAL = timedelta(seconds=60)
_PASSWORD_CHECKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-check")


@dataclass(frozen=True)
class NewLogin:
    token: str  # given to the browser once, never stored
    signed_in: SignedIn


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    username: str,
    password: str,
    request: RequestInfo,
) -> NewLogin:
    user = await _checked_credentials(db, clock, settings, username, password, request)
    now = clock.now()
    token = secrets.token_urlsafe(16)  # 128 bits
    session = LoginSession(
        user_id=user.id,
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        client_addr=request.client_addr,
        user_agent=(request.user_agent or "")[:300] or None,
    )
    db.add(session)
    await db.flush()
    await audit_service.append(
        db,
        at=now,
        actor=actor_of(user),
        action="auth.login",
        entity="login_session",
        entity_id=str(session.id),
        request=request,
    )
    await db.commit()
    return NewLogin(token=token, signed_in=SignedIn.of(user, session))


async def confirm_identity(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    username: str,
    password: str,
    request: RequestInfo,
    purpose: str,
) -> User:
    """A second clinician's own credentials, typed in place on someone else's tablet (a double
    check): checked behind the same throttle as a sign-in, audited, and no sign-in made."""
    user = await _checked_credentials(db, clock, settings, username, password, request)
    await audit_service.append(
        db,
        at=clock.now(),
        actor=actor_of(user),
        action="auth.identity_confirmed",
        entity="user",
        entity_id=str(user.id),
        reason=purpose,
        request=request,
    )
    await db.commit()
    return user


async def _checked_credentials(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    username: str,
    password: str,
    request: RequestInfo,
) -> User:
    """The user these credentials name, behind the throttle; a wrong one is recorded (and
    committed) and raised as a LoginRefused."""
    name = normalise_username(username)
    problem = text_problem(name)
    if problem:
        # Refused before any query (PostgreSQL cannot even compare a NUL): nothing was tried,
        # so nothing is written.
        raise LoginRefused(f"the user name must be plain text: it {problem}", kind="invalid")
    now = clock.now()
    policy = throttle_policy(settings)
    key = failure_key(settings, name)
    addr = request.client_addr

    # 1. Reads, holding neither the write lock (which the bedside's next entry needs) nor the
    # audit lock. A flood of refused attempts is answered from here, its refusals held in this
    # process a moment; an attempt that will be heard has its password checked here, since
    # Argon2 takes tens of milliseconds.
    if not db.in_transaction():  # else the caller's read goes on, and ends here
        await db.connection(execution_options=DEFERRED_BEGIN)
    throttled = await throttle_decision(db, key, addr, now, policy)
    stored_hash = None
    held = False
    if throttled is not None:
        tally_key = tally_key_of(throttled, key)
        tally = await read_tally(db, tally_key, addr)
        held = throttle.on_refusal(tally, now, policy) == "count" and refusals.BUFFER.hold(
            buffer_key(settings, tally_key, addr), now
        )
    else:
        stored_hash = await db.scalar(select(User.password_hash).where(User.username == name))
    await db.rollback()
    if throttled is not None:
        if not held:
            await refuse(db, settings, now, policy, key, name, throttled, request)
        raise throttled_answer(throttled)
    # Off the event loop, which goes on serving the ward meanwhile; one at a time, as Argon2
    # takes 64 MiB a check.
    password_ok = await asyncio.get_running_loop().run_in_executor(
        _PASSWORD_CHECKS, passwords.verify_password, stored_hash, password
    )

    # 2. The write. On SQLite this transaction holds the write lock from its first read, so the
    # throttle is decided again under it: attempts sent at once are heard one after another.
    throttled = await throttle_decision(db, key, addr, now, policy)
    if throttled is not None:
        await refuse(db, settings, now, policy, key, name, throttled, request)
        raise throttled_answer(throttled)
    user = await db.scalar(select(User).where(User.username == name))
    if user is not None and user.password_hash != stored_hash:  # changed in between (rare)
        password_ok = passwords.verify_password(user.password_hash, password)
    refusal = None
    if not password_ok or user is None:
        refusal = "wrong user name or password"
    elif not user.is_active:
        refusal = "this account is disabled"
    elif user.is_demo and settings.env == "production":
        refusal = "demo accounts cannot sign in in production"
    # This attempt was heard: the throttles it got past are over.
    await end_throttles(
        db,
        settings,
        now,
        LoginThrottle.username_key.in_((key, throttle.ANY_NAME)),
        LoginThrottle.client_addr == (addr or ""),
    )
    await end_stale_throttles(db, settings, now, policy)
    if refusal is not None:
        db.add(LoginFailure(username_key=key, client_addr=addr, at=now))
        # Name the account only when it exists: an unknown "user name" may be a password typed
        # into the wrong field, and must not reach the log.
        await audit_service.append(
            db,
            at=now,
            actor=actor_of(user) if user else ANONYMOUS_ACTOR,
            action="auth.login_failed",
            entity="user" if user else "login",
            entity_id=str(user.id) if user else None,
            reason=refusal,
            request=request,
        )
        await db.commit()
        # A wrong password and an unknown name get the same answer.
        shown = "wrong user name or password" if not password_ok or user is None else refusal
        raise LoginRefused(shown, kind="refused")

    assert user is not None
    # The right password clears the failures of this name from this address, not from others.
    await db.execute(
        delete(LoginFailure).where(
            LoginFailure.username_key == key, from_addr(LoginFailure.client_addr, addr)
        )
    )
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


async def resolve(
    db: AsyncSession, clock: Clock, settings: Settings, token: str | None, request: RequestInfo
) -> SignedIn | None:
    """The signed-in user behind a cookie token, or None. Ends sessions that have expired.

    Almost every request only reads its sign-in: that read runs on its own (on SQLite, with no
    transaction and no lock). Only when something must be written (the minute's last-seen
    mark, an expiry) is it read again under the write lock and written; that is bookkeeping,
    not the request's own work: when it cannot be written (the lock taken, storage full) the
    request goes on, and a later one writes it."""
    if not token or len(token) > 200:
        return None
    if not db.in_transaction():
        await db.connection(execution_options=LONE_READ)
    found = await _check(db, clock, settings, token)
    if found is None or found.nothing_to_write:
        await db.rollback()  # end the read: the request's own work starts its own transaction
        return None if found is None or found.ended_because else found.signed_in
    await db.rollback()
    try:
        return await _write_bookkeeping(db, clock, settings, token, request)
    except (SQLAlchemyError, OSError) as error:
        with contextlib.suppress(SQLAlchemyError, OSError):
            await db.rollback()
        logger.warning("sign-in bookkeeping not saved: %s", type(error).__name__)
        return None if found.ended_because else found.signed_in


@dataclass(frozen=True)
class _Checked:
    signed_in: SignedIn
    session: LoginSession
    user: User
    ended_because: str | None
    touch_due: bool

    @property
    def nothing_to_write(self) -> bool:
        return self.ended_because is None and not self.touch_due


async def _check(db: AsyncSession, clock: Clock, settings: Settings, token: str) -> _Checked | None:
    """The sign-in behind `token` as stored, and what is due for it; None: no such sign-in,
    or one already ended."""
    row = (
        await db.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == token_hash(token))
        )
    ).first()
    if row is None or row[0].ended_at is not None:
        return None
    session, user = row
    now = clock.now()
    ended_because = None
    if not user.is_active:
        ended_because = "account disabled"
    elif now >= session.expires_at:
        ended_because = "absolute timeout"
    elif now - session.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        ended_because = "idle timeout"
    touch_due = now - session.last_seen_at >= TOUCH_INTERVAL
    return _Checked(SignedIn.of(user, session), session, user, ended_because, touch_due)


async def _write_bookkeeping(
    db: AsyncSession, clock: Clock, settings: Settings, token: str, request: RequestInfo
) -> SignedIn | None:
    """Read the sign-in again under the write lock and write what is due: the end of an
    expired one (audited), or the last-seen mark."""
    found = await _check(db, clock, settings, token)
    if found is None or found.nothing_to_write:
        await db.rollback()
        return None if found is None or found.ended_because else found.signed_in
    now = clock.now()
    if found.ended_because is not None:
        found.session.ended_at = now
        found.session.end_reason = found.ended_because
        await audit_service.append(
            db,
            at=now,
            actor=actor_of(found.user),
            action="auth.session_ended",
            entity="login_session",
            entity_id=str(found.session.id),
            reason=found.ended_because,
            request=request,
        )
        await db.commit()
        return None
    found.session.last_seen_at = now
    await db.commit()
    return found.signed_in


async def still_signed_in(
    db: AsyncSession, clock: Clock, settings: Settings, login_ids: set[int]
) -> set[int]:
    """Which of these sign-ins are still valid: not ended, not past their absolute or idle
    timeout, their account not disabled. A read: ending them is left to their next request;
    the live screens they hold are closed (app.live.hub)."""
    if not login_ids:
        return set()
    now = clock.now()
    idle_since = now - timedelta(minutes=settings.session_idle_minutes)
    valid = await db.scalars(
        select(LoginSession.id)
        .join(User, User.id == LoginSession.user_id)
        .where(
            LoginSession.id.in_(login_ids),
            LoginSession.ended_at.is_(None),
            LoginSession.expires_at > now,
            LoginSession.last_seen_at > idle_since,
            User.disabled_at.is_(None),
        )
    )
    return set(valid)


async def logout(db: AsyncSession, clock: Clock, signed_in: SignedIn, request: RequestInfo) -> None:
    session = await db.get(LoginSession, signed_in.login.id)
    if session is None or session.ended_at is not None:
        return
    now = clock.now()
    session.ended_at = now
    session.end_reason = "signed out"
    await audit_service.append(
        db,
        at=now,
        actor=signed_in.actor,
        action="auth.logout",
        entity="login_session",
        entity_id=str(session.id),
        request=request,
    )
    await db.commit()
