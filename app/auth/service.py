"""Accounts and sign-in. Each public function is one unit of work: it writes its rows and its
audit row in one transaction and commits. Nothing else in app/auth commits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.auth import passwords
from app.auth.models import LoginFailure, LoginSession, User
from app.auth.permissions import ROLES
from app.clock import Clock
from app.config import Settings

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
# Writing last_seen_at on every request would make every read a write; a minute is precise
# enough for an idle timeout counted in tens of minutes.
TOUCH_INTERVAL = timedelta(seconds=60)
ADDRESS_FAILURE_FACTOR = 4
# audit_event.entity_id holds 255 characters, and a refused path is chosen by the caller.
ROUTE_ID_LIMIT = 255

SYSTEM_ACTOR = Actor(user_id=None, username="system", role="system")
ANONYMOUS_ACTOR = Actor(user_id=None, username="anonymous", role="anonymous")


class AccountError(ValueError):
    """A refused account change; the message is one line, safe to show, never a password."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class LoginRefused(Exception):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


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
    name = normalise_username(username)
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
    name = normalise_username(username)
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


async def _recent_failures(db: AsyncSession, column, value: str | None, since: datetime) -> int:
    if value is None:
        return 0
    return (
        await db.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(column == value, LoginFailure.at >= since)
        )
        or 0
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
    now = clock.now()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    key = _failure_key(settings, username)
    by_name = await _recent_failures(db, LoginFailure.username_key, key, now - window)
    by_address = await _recent_failures(
        db, LoginFailure.client_addr, request.client_addr, now - window
    )
    if by_name >= settings.login_max_failures or (
        by_address >= settings.login_max_failures * ADDRESS_FAILURE_FACTOR
    ):
        await audit_service.append(
            db,
            at=now,
            actor=ANONYMOUS_ACTOR,
            action="auth.login_throttled",
            entity="login",
            reason="too many failed sign-ins",
            request=request,
        )
        await db.commit()
        raise LoginRefused(
            f"too many failed sign-ins; try again in {settings.login_failure_window_minutes} "
            "minutes or ask an administrator",
            status_code=429,
        )

    user = await db.scalar(select(User).where(User.username == normalise_username(username)))
    password_ok = passwords.verify_password(user.password_hash if user else None, password)
    refusal = None
    if not password_ok or user is None:
        refusal = "wrong user name or password"
    elif not user.is_active:
        refusal = "this account is disabled"
    elif user.is_demo and settings.env == "production":
        refusal = "demo accounts cannot sign in in production"
    if refusal is not None:
        db.add(LoginFailure(username_key=key, client_addr=request.client_addr, at=now))
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
