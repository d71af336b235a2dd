"""Accounts and sign-in. Each public function is one unit of work: it writes its rows and its
audit row in one transaction and commits. Nothing else in app/auth commits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.auth import passwords, refusals, throttle
from app.auth.models import LoginFailure, LoginSession, LoginThrottle, User
from app.clock import Clock
from app.config import Settings
from app.db import DEFERRED_BEGIN
from app.permissions import ROLES, SYSTEM_ROLE
from app.text import text_problem

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
# Writing last_seen_at on every request would make every read a write; a minute is precise
# enough for an idle timeout counted in tens of minutes.
TOUCH_INTERVAL = timedelta(seconds=60)
THROTTLE_PAIR: throttle.Scope = "user name and address"
# Ended throttles reported by one audited sign-in event, at most: the work stays bounded.
STALE_THROTTLES_PER_EVENT = 20
_PASSWORD_CHECKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-check")
# audit_event.entity_id holds 255 characters, and a refused path is chosen by the caller.
ROUTE_ID_LIMIT = 255

SYSTEM_ACTOR = Actor(user_id=None, username="system", role=SYSTEM_ROLE)
ANONYMOUS_ACTOR = Actor(user_id=None, username="anonymous", role="anonymous")


class AccountError(ValueError):
    """A refused account change; the message is one line, safe to show, never a password."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class LoginRefused(Exception):
    def __init__(self, message: str, status_code: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after  # seconds, when throttled


@dataclass(frozen=True)
class UserView:
    """Who is signed in, as plain data: safe to read after the database session rolled back
    (an ORM object would expire and try to reload)."""

    id: int
    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class LoginView:
    id: int
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    user: UserView
    login: LoginView

    @classmethod
    def of(cls, user: User, session: LoginSession) -> SignedIn:
        return cls(
            UserView(user.id, user.username, user.display_name, user.role),
            LoginView(session.id, session.csrf_token, session.expires_at),
        )

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user.id, username=self.user.username, role=self.user.role)


@dataclass(frozen=True)
class NewLogin:
    token: str  # given to the browser once, never stored
    signed_in: SignedIn


@dataclass(frozen=True)
class Unlocked:
    username: str
    failures_cleared: int
    throttles_ended: int


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str


DEMO_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("nurse", "nurse", "Demo Nurse"),
    ("physician", "physician", "Demo Physician"),
    ("pharmacist", "pharmacist", "Demo Pharmacist"),
    ("auditor", "auditor", "Demo Auditor"),
    ("admin", "admin", "Demo Administrator"),
)


def demo_password(username: str) -> str:
    return f"{username}-demo-pass"


def actor_of(user: User) -> Actor:
    return Actor(user_id=user.id, username=user.username, role=user.role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_public(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "disabled": user.disabled_at is not None,
    }


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _account_name(username: str) -> str:
    """The normalised user name, refused before any query when it is not plain text."""
    name = normalise_username(username)
    problem = text_problem(name)
    if problem:
        raise AccountError(
            f"user name must be plain text on one line: it {problem}", field="username"
        )
    return name


def _checked_reason(reason: str | None) -> str | None:
    problem = None if reason is None else text_problem(reason, multiline=True)
    if problem:
        raise AccountError(f"reason must be plain text: it {problem}", field="reason")
    return reason


# --- accounts ---------------------------------------------------------------------------------


async def create_user(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    request: RequestInfo | None = None,
    is_demo: bool = False,
) -> User:
    name = _account_name(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "user name must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            field="username",
        )
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role")
    problem = passwords.check_policy(password)
    if problem:
        raise AccountError(problem, field="password")
    title = (display_name or "").strip() or name
    if len(title) > 120:
        raise AccountError("display name must have at most 120 characters", field="display_name")
    problem = text_problem(title)
    if problem:
        raise AccountError(
            f"display name must be plain text on one line: it {problem}", field="display_name"
        )
    if await db.scalar(select(User.id).where(User.username == name)) is not None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise AccountError(f"user {name!r} already exists", field="username")
    now = clock.now()
    user = User(
        username=name,
        display_name=title,
        role=role,
        password_hash=passwords.hash_password(password),
        is_demo=is_demo,
        created_at=now,
    )
    db.add(user)
    await db.flush()
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=str(user.id),
        after=_user_public(user),
        request=request,
    )
    await db.commit()
    return user


async def set_disabled(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    username: str,
    disabled: bool,
    reason: str | None = None,
    request: RequestInfo | None = None,
) -> User:
    """Disable (ending every session of the user at once) or enable an account."""
    name = _account_name(username)
    reason = _checked_reason(reason)
    user = await db.scalar(select(User).where(User.username == name))
    refusal = None
    if user is None:
        refusal = f"no user {name!r}"
    elif disabled and actor.user_id == user.id:
        refusal = "you cannot disable your own account"
    elif disabled == (user.disabled_at is not None):
        refusal = f"user {name!r} is already {'disabled' if disabled else 'enabled'}"
    if refusal is not None or user is None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise AccountError(refusal or "no such user", field="username")
    now = clock.now()
    before = _user_public(user)
    user.disabled_at = now if disabled else None
    ended = 0
    if disabled:
        result = await db.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
            .values(ended_at=now, end_reason="account disabled")
        )
        ended = result.rowcount or 0
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        entity="user",
        entity_id=str(user.id),
        before=before,
        after={**_user_public(user), "sessions_ended": ended},
        reason=reason,
        request=request,
    )
    await db.commit()
    return user


async def list_users(db: AsyncSession) -> list[User]:
    return list(await db.scalars(select(User).order_by(User.role, User.username)))


async def seed_demo_users(db: AsyncSession, clock: Clock, settings: Settings) -> list[DemoLogin]:
    """On an empty database, create one demo account per role. Returns the demo logins that
    still work, so `make run` can print them every time. Never in production."""
    if settings.env == "production":
        raise AccountError("demo accounts are never created in production")
    if not await db.scalar(select(func.count()).select_from(User)):
        for username, role, title in DEMO_ACCOUNTS:
            await create_user(
                db,
                clock,
                actor=SYSTEM_ACTOR,
                username=username,
                role=role,
                password=demo_password(username),
                display_name=title,
                is_demo=True,
            )
    working = []
    for user in await db.scalars(select(User).where(User.is_demo.is_(True)).order_by(User.id)):
        password = demo_password(user.username)
        if user.is_active and passwords.verify_password(user.password_hash, password):
            working.append(DemoLogin(user.username, user.role, password))
    return working


# --- signing in and out -----------------------------------------------------------------------


def _failure_key(settings: Settings, username: str) -> str:
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, normalise_username(username).encode(), hashlib.sha256).hexdigest()


def throttle_policy(settings: Settings) -> throttle.Policy:
    return throttle.Policy(
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_failure_window_minutes),
    )


def _from_addr(column: Any, addr: str | None) -> Any:
    return column.is_(None) if addr is None else column == addr


async def _failures(db: AsyncSession, *where: Any, since: datetime) -> throttle.Failures:
    count, last_at = (
        await db.execute(
            select(func.count(), func.max(LoginFailure.at)).where(*where, LoginFailure.at >= since)
        )
    ).one()
    return throttle.Failures(count or 0, last_at)


def _wait_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


def _tally_of(row: LoginThrottle | None) -> throttle.Tally | None:
    return None if row is None else throttle.Tally(row.first_at, row.last_at, row.refused)


def _throttle_subject(row: LoginThrottle) -> tuple[str, str | None]:
    return ("user", str(row.user_id)) if row.user_id is not None else ("login", None)


async def _report_throttle(db: AsyncSession, now: datetime, row: LoginThrottle) -> None:
    """The audit entry that closes a throttle: how many attempts it refused. None is written
    when it refused only the one already audited. The caller deletes or reopens the row."""
    if not throttle.needs_summary(throttle.Tally(row.first_at, row.last_at, row.refused)):
        return
    entity, entity_id = _throttle_subject(row)
    await audit_service.append(
        db,
        at=now,
        actor=ANONYMOUS_ACTOR,
        action="auth.login_throttle_ended",
        entity=entity,
        entity_id=entity_id,
        after={
            "scope": "address" if row.username_key == throttle.ANY_NAME else THROTTLE_PAIR,
            "refused": row.refused,
            "first_at": row.first_at.isoformat(),
            "last_at": row.last_at.isoformat(),
        },
        reason=f"{row.refused} sign-in attempts refused while throttled",
        request=RequestInfo(client_addr=row.client_addr or None),
    )


def _where(settings: Settings, key: str, addr: str | None) -> refusals.Where:
    return (settings.database_url, key, addr or "")


async def _end_throttles(db: AsyncSession, settings: Settings, now: datetime, *where: Any) -> int:
    """Report and remove the open throttles matching `where`; how many there were."""
    rows = list(await db.scalars(select(LoginThrottle).where(*where).with_for_update()))
    for row in rows:
        row.refused += refusals.BUFFER.take(_where(settings, row.username_key, row.client_addr))
        await _report_throttle(db, now, row)
        await db.delete(row)
    return len(rows)


async def _end_stale_throttles(
    db: AsyncSession, settings: Settings, now: datetime, policy: throttle.Policy
) -> None:
    """Throttles whose refusals stopped long enough ago to be over are reported by the next
    audited sign-in event, whoever's it is: a summary does not wait for its own key."""
    stale = list(
        await db.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.last_at < now - policy.window)
            .order_by(LoginThrottle.last_at)
            .limit(STALE_THROTTLES_PER_EVENT)
            .with_for_update(skip_locked=True)  # another event is reporting them
        )
    )
    for row in stale:
        row.refused += refusals.BUFFER.take(_where(settings, row.username_key, row.client_addr))
        await _report_throttle(db, now, row)
        await db.delete(row)


async def _throttle_decision(
    db: AsyncSession, key: str, addr: str | None, now: datetime, policy: throttle.Policy
) -> throttle.Throttled | None:
    since = now - policy.window
    from_addr = _from_addr(LoginFailure.client_addr, addr)
    return throttle.decide(
        await _failures(db, LoginFailure.username_key == key, from_addr, since=since),
        await _failures(db, from_addr, since=since),
        now,
        policy,
    )


def _tally_key(throttled: throttle.Throttled, key: str) -> str:
    return throttle.ANY_NAME if throttled.scope == "address" else key


async def _tally(db: AsyncSession, key: str, addr: str | None) -> throttle.Tally | None:
    row = (
        await db.execute(
            select(LoginThrottle.first_at, LoginThrottle.last_at, LoginThrottle.refused).where(
                LoginThrottle.username_key == key, LoginThrottle.client_addr == (addr or "")
            )
        )
    ).first()
    return None if row is None else throttle.Tally(*row)


def _throttled_answer(throttled: throttle.Throttled) -> LoginRefused:
    return LoginRefused(
        f"too many failed sign-ins; try again in {_wait_words(throttled.retry_after_seconds)}"
        " or ask an administrator",
        status_code=429,
        retry_after=throttled.retry_after_seconds,
    )


async def _count_refusal(
    db: AsyncSession,
    settings: Settings,
    now: datetime,
    policy: throttle.Policy,
    *,
    key: str,
    name: str,
    refused: throttle.Throttled,
    request: RequestInfo,
) -> None:
    """Write a throttled attempt to its tally, with those this process held since the last
    write. Only the first refusal of a throttle writes an audit entry."""
    addr = request.client_addr or ""
    where = _where(settings, key, addr)
    row = await db.scalar(
        select(LoginThrottle)
        .where(LoginThrottle.username_key == key, LoginThrottle.client_addr == addr)
        .with_for_update()
    )
    step = throttle.on_refusal(_tally_of(row), now, policy)
    held = refusals.BUFFER.take(where)
    if step == "count" and row is not None:
        await db.execute(
            update(LoginThrottle)
            .where(LoginThrottle.id == row.id)
            .values(refused=LoginThrottle.refused + held + 1, last_at=now)
        )
        await db.commit()
        refusals.BUFFER.written(where, now, forget_before=now - policy.window)
        return
    user_id = None
    if key != throttle.ANY_NAME:
        user_id = await db.scalar(select(User.id).where(User.username == name))
    if row is not None:  # "reopen": the old tally outlived its throttle
        row.refused += held
        await _report_throttle(db, now, row)
        row.user_id, row.first_at, row.last_at, row.refused = user_id, now, now, 1
    else:
        row = LoginThrottle(
            username_key=key,
            client_addr=addr,
            user_id=user_id,
            first_at=now,
            last_at=now,
            refused=1,
        )
        db.add(row)
    # A concurrent first refusal of the same key fails here, before the audit log is touched.
    await db.flush()
    entity, entity_id = _throttle_subject(row)
    await audit_service.append(
        db,
        at=now,
        actor=ANONYMOUS_ACTOR,
        action="auth.login_throttled",
        entity=entity,
        entity_id=entity_id,
        after={"scope": refused.scope, "retry_after_seconds": refused.retry_after_seconds},
        reason="too many failed sign-ins",
        request=request,
    )
    await _end_stale_throttles(db, settings, now, policy)
    await db.commit()
    refusals.BUFFER.written(where, now, forget_before=now - policy.window)


async def _refuse(
    db: AsyncSession,
    settings: Settings,
    now: datetime,
    policy: throttle.Policy,
    key: str,
    name: str,
    throttled: throttle.Throttled,
    request: RequestInfo,
) -> None:
    tally_key = _tally_key(throttled, key)
    try:
        await _count_refusal(
            db, settings, now, policy, key=tally_key, name=name, refused=throttled, request=request
        )
    except IntegrityError:  # another refusal opened this throttle first: count this one
        await db.rollback()
        await _count_refusal(
            db, settings, now, policy, key=tally_key, name=name, refused=throttled, request=request
        )


async def login(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    username: str,
    password: str,
    request: RequestInfo,
) -> NewLogin:
    name = normalise_username(username)
    problem = text_problem(name)
    if problem:
        # Refused before any query (PostgreSQL cannot even compare a NUL): nothing was tried,
        # so nothing is written.
        raise LoginRefused(f"the user name must be plain text: it {problem}", status_code=422)
    now = clock.now()
    policy = throttle_policy(settings)
    key = _failure_key(settings, name)
    addr = request.client_addr

    # 1. Reads, holding neither the write lock (which the bedside's next entry needs) nor the
    # audit lock. A flood of refused attempts is answered from here, its refusals held in this
    # process a moment; an attempt that will be heard has its password checked here, since
    # Argon2 takes tens of milliseconds.
    if not db.in_transaction():  # else the caller's read goes on, and ends here
        await db.connection(execution_options=DEFERRED_BEGIN)
    throttled = await _throttle_decision(db, key, addr, now, policy)
    stored_hash = None
    held = False
    if throttled is not None:
        tally_key = _tally_key(throttled, key)
        tally = await _tally(db, tally_key, addr)
        held = throttle.on_refusal(tally, now, policy) == "count" and refusals.BUFFER.hold(
            _where(settings, tally_key, addr), now
        )
    else:
        stored_hash = await db.scalar(select(User.password_hash).where(User.username == name))
    await db.rollback()
    if throttled is not None:
        if not held:
            await _refuse(db, settings, now, policy, key, name, throttled, request)
        raise _throttled_answer(throttled)
    # Off the event loop, which goes on serving the ward meanwhile; one at a time, as Argon2
    # takes 64 MiB a check.
    password_ok = await asyncio.get_running_loop().run_in_executor(
        _PASSWORD_CHECKS, passwords.verify_password, stored_hash, password
    )

    # 2. The write. On SQLite this transaction holds the write lock from its first read, so the
    # throttle is decided again under it: attempts sent at once are heard one after another.
    throttled = await _throttle_decision(db, key, addr, now, policy)
    if throttled is not None:
        await _refuse(db, settings, now, policy, key, name, throttled, request)
        raise _throttled_answer(throttled)
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
    await _end_throttles(
        db,
        settings,
        now,
        LoginThrottle.username_key.in_((key, throttle.ANY_NAME)),
        LoginThrottle.client_addr == (addr or ""),
    )
    await _end_stale_throttles(db, settings, now, policy)
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
        raise LoginRefused(shown, status_code=401)

    assert user is not None
    # The right password clears the failures of this name from this address, not from others.
    await db.execute(
        delete(LoginFailure).where(
            LoginFailure.username_key == key, _from_addr(LoginFailure.client_addr, addr)
        )
    )
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
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


async def unlock(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    actor: Actor,
    username: str,
    reason: str | None,
    request: RequestInfo | None = None,
) -> Unlocked:
    """Forget every failed sign-in of this user name, from every address, and end its
    throttles: the next attempt is heard at once. Throttles of an address across names are
    left to run out."""
    name = _account_name(username)
    reason = _checked_reason(reason)
    if not reason or not reason.strip():
        raise AccountError(f"give a reason to unlock {name}", field="reason")
    user = await db.scalar(select(User).where(User.username == name))
    if user is None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise AccountError(f"no user {name!r}", field="username")
    now = clock.now()
    key = _failure_key(settings, name)
    cleared = await db.execute(delete(LoginFailure).where(LoginFailure.username_key == key))
    failures = cleared.rowcount or 0  # type: ignore[attr-defined]
    throttles = await _end_throttles(db, settings, now, LoginThrottle.username_key == key)
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="user.unlock",
        entity="user",
        entity_id=str(user.id),
        after={"failures_cleared": failures, "throttles_ended": throttles},
        reason=reason,
        request=request,
    )
    await db.commit()
    return Unlocked(username=user.username, failures_cleared=failures, throttles_ended=throttles)


async def resolve(
    db: AsyncSession, clock: Clock, settings: Settings, token: str | None, request: RequestInfo
) -> SignedIn | None:
    """The signed-in user behind a cookie token, or None. Ends sessions that have expired."""
    if not token or len(token) > 200:
        return None
    row = (
        await db.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return None
    session, user = row
    if session.ended_at is not None:
        await db.rollback()
        return None
    now = clock.now()
    ended_because = None
    if not user.is_active:
        ended_because = "account disabled"
    elif now >= session.expires_at:
        ended_because = "absolute timeout"
    elif now - session.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        ended_because = "idle timeout"
    if ended_because is not None:
        session.ended_at = now
        session.end_reason = ended_because
        await audit_service.append(
            db,
            at=now,
            actor=actor_of(user),
            action="auth.session_ended",
            entity="login_session",
            entity_id=str(session.id),
            reason=ended_because,
            request=request,
        )
        await db.commit()
        return None
    touched = now - session.last_seen_at >= TOUCH_INTERVAL
    if touched:
        session.last_seen_at = now
    signed_in = SignedIn.of(user, session)
    # End the transaction either way: on SQLite it holds the write lock, and the request's
    # own work (another session, a long read) must not wait for it.
    if touched:
        await db.commit()
    else:
        await db.rollback()
    return signed_in


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


async def record_refusal(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    action: str,
    target: str,
    reason: str,
    request: RequestInfo,
) -> None:
    """A refused request is evidence too: who tried what, and why it was refused."""
    await audit_service.append(
        db,
        at=clock.now(),
        actor=actor,
        action="access.denied",
        entity="route",
        entity_id=target[:ROUTE_ID_LIMIT],
        after={"permission": action},
        reason=reason,
        request=request,
    )
    await db.commit()
