"""Failed sign-ins: counted per user name and address, the throttles they start (decided by
app.auth.throttle), the audit entries that open and close a throttle, and an administrator's
unlock. `unlock` is one unit of work and commits; the rest runs inside a sign-in's."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.auth import refusals, throttle
from app.auth.models import LoginFailure, LoginThrottle, User
from app.auth.service import (
    ANONYMOUS_ACTOR,
    AccountError,
    LoginRefused,
    account_name,
    checked_reason,
    normalise_username,
)
from app.clock import Clock
from app.config import Settings

THROTTLE_PAIR: throttle.Scope = "user name and address"
# Ended throttles reported by one audited sign-in event, at most: the work stays bounded.
STALE_THROTTLES_PER_EVENT = 20


@dataclass(frozen=True)
class Unlocked:
    username: str
    failures_cleared: int
    throttles_ended: int


def failure_key(settings: Settings, username: str) -> str:
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, normalise_username(username).encode(), hashlib.sha256).hexdigest()


def throttle_policy(settings: Settings) -> throttle.Policy:
    return throttle.Policy(
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_failure_window_minutes),
    )


def from_addr(column: Any, addr: str | None) -> Any:
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


def buffer_key(settings: Settings, key: str, addr: str | None) -> refusals.Where:
    return (settings.database_url, key, addr or "")


async def end_throttles(db: AsyncSession, settings: Settings, now: datetime, *where: Any) -> int:
    """Report and remove the open throttles matching `where`; how many there were."""
    rows = list(await db.scalars(select(LoginThrottle).where(*where).with_for_update()))
    for row in rows:
        row.refused += refusals.BUFFER.take(buffer_key(settings, row.username_key, row.client_addr))
        await _report_throttle(db, now, row)
        await db.delete(row)
    return len(rows)


async def end_stale_throttles(
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
        row.refused += refusals.BUFFER.take(buffer_key(settings, row.username_key, row.client_addr))
        await _report_throttle(db, now, row)
        await db.delete(row)


async def throttle_decision(
    db: AsyncSession, key: str, addr: str | None, now: datetime, policy: throttle.Policy
) -> throttle.Throttled | None:
    since = now - policy.window
    from_this_addr = from_addr(LoginFailure.client_addr, addr)
    return throttle.decide(
        await _failures(db, LoginFailure.username_key == key, from_this_addr, since=since),
        await _failures(db, from_this_addr, since=since),
        now,
        policy,
    )


def tally_key_of(throttled: throttle.Throttled, key: str) -> str:
    return throttle.ANY_NAME if throttled.scope == "address" else key


async def read_tally(db: AsyncSession, key: str, addr: str | None) -> throttle.Tally | None:
    row = (
        await db.execute(
            select(LoginThrottle.first_at, LoginThrottle.last_at, LoginThrottle.refused).where(
                LoginThrottle.username_key == key, LoginThrottle.client_addr == (addr or "")
            )
        )
    ).first()
    return None if row is None else throttle.Tally(*row)


def throttled_answer(throttled: throttle.Throttled) -> LoginRefused:
    return LoginRefused(
        f"too many failed sign-ins; try again in {_wait_words(throttled.retry_after_seconds)}"
        " or ask an administrator",
        kind="throttled",
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
    where = buffer_key(settings, key, addr)
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
    await end_stale_throttles(db, settings, now, policy)
    await db.commit()
    refusals.BUFFER.written(where, now, forget_before=now - policy.window)


async def refuse(
    db: AsyncSession,
    settings: Settings,
    now: datetime,
    policy: throttle.Policy,
    key: str,
    name: str,
    throttled: throttle.Throttled,
    request: RequestInfo,
) -> None:
    tally_key = tally_key_of(throttled, key)
    try:
        await _count_refusal(
            db, settings, now, policy, key=tally_key, name=name, refused=throttled, request=request
        )
    except IntegrityError:  # another refusal opened this throttle first: count this one
        await db.rollback()
        await _count_refusal(
            db, settings, now, policy, key=tally_key, name=name, refused=throttled, request=request
        )


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
    name = account_name(username)
    reason = checked_reason(reason)
    if not reason or not reason.strip():
        raise AccountError(f"give a reason to unlock {name}", field="reason")
    user = await db.scalar(select(User).where(User.username == name))
    if user is None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise AccountError(f"no user {name!r}", field="username", kind="not_found")
    now = clock.now()
    key = failure_key(settings, name)
    cleared = await db.execute(delete(LoginFailure).where(LoginFailure.username_key == key))
    failures = cleared.rowcount or 0  # type: ignore[attr-defined]
    throttles = await end_throttles(db, settings, now, LoginThrottle.username_key == key)
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
