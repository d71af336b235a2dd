"""Sign-in throttling: the pure rules, then the service on a real database with a manual clock.

Client addresses vary through RequestInfo here; tests/auth/test_throttle_http.py sends the same
attempts through real HTTP. Every test uses its own user names and addresses: the database is
shared by the whole test session.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit import AuditEvent, RequestInfo
from app.audit.model import AuditChainHead
from app.auth import login_failures, refusals, service, throttle
from app.auth import sign_in as sign_in_service
from app.auth.models import LoginFailure, LoginThrottle, User
from app.auth.router import STATUS_OF_LOGIN_REFUSAL
from app.auth.service import AccountError, LoginRefused
from app.clock import ManualClock
from app.config import Settings
from tests.auth.test_sessions import new_user
from tests.support import TEST_ACTOR

T0 = datetime(2031, 3, 4, 8, 0, tzinfo=UTC)
POLICY = throttle.Policy(max_failures=5, window=timedelta(minutes=15))


def address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def attempt(
    db: AsyncSession, clock: ManualClock, settings: Settings, name: str, password: str, addr: str
) -> int:
    """The HTTP status the attempt would get: 200 signed in, else the refusal's."""
    try:
        await sign_in_service.login(
            db,
            clock,
            settings,
            username=name,
            password=password,
            request=RequestInfo(client_addr=addr, user_agent="pytest"),
        )
    except LoginRefused as refused:
        return STATUS_OF_LOGIN_REFUSAL[refused.kind]
    return 200


async def refusal(
    db: AsyncSession, clock: ManualClock, settings: Settings, name: str, password: str, addr: str
) -> LoginRefused:
    with pytest.raises(LoginRefused) as refused:
        await sign_in_service.login(
            db,
            clock,
            settings,
            username=name,
            password=password,
            request=RequestInfo(client_addr=addr, user_agent="pytest"),
        )
    return refused.value


async def last_seq(db: AsyncSession) -> int:
    seq = await db.scalar(select(func.max(AuditEvent.seq)))
    await db.rollback()
    return seq or 0


async def audit_since(db: AsyncSession, seq: int, addr: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
    if addr is not None:
        query = query.where(AuditEvent.client_addr == addr)
    rows = list(await db.scalars(query))
    db.expunge_all()  # readable after the rollback that ends this read
    await db.rollback()
    return rows


# --- the rules, pure ------------------------------------------------------------------------------


def test_the_wait_doubles_after_the_free_failures_and_never_exceeds_the_window() -> None:
    waits = [throttle.wait_after(n, 5, timedelta(minutes=15)).total_seconds() for n in range(20)]
    assert waits[:5] == [0, 0, 0, 0, 0]
    assert waits[5:15] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert waits[15:] == [900] * 5
    assert throttle.wait_after(10_000, 5, timedelta(minutes=15)) == timedelta(minutes=15)


def test_a_pair_waits_after_its_own_failures_only() -> None:
    five_just_now = throttle.Failures(5, T0)
    assert throttle.decide(throttle.Failures(), throttle.Failures(), T0, POLICY) is None
    refused = throttle.decide(five_just_now, five_just_now, T0, POLICY)
    assert refused == throttle.Throttled("user name and address", timedelta(seconds=1))
    assert throttle.decide(five_just_now, five_just_now, T0 + timedelta(seconds=1), POLICY) is None
    # Four failures of this pair and many of others from the address, below its own limit.
    assert throttle.decide(throttle.Failures(4, T0), throttle.Failures(19, T0), T0, POLICY) is None


def test_an_address_trying_many_names_waits_whatever_name_it_tries_next() -> None:
    refused = throttle.decide(throttle.Failures(), throttle.Failures(21, T0), T0, POLICY)
    assert refused == throttle.Throttled("address", timedelta(seconds=2))
    assert refused.retry_after_seconds == 2
    # Both apply: the address names the refusal, the longer wait is the answer.
    both = throttle.decide(throttle.Failures(9, T0), throttle.Failures(20, T0), T0, POLICY)
    assert both == throttle.Throttled("address", timedelta(seconds=16))


def test_a_tally_is_opened_counted_and_reopened_once_its_throttle_is_over() -> None:
    assert throttle.on_refusal(None, T0, POLICY) == "open"
    tally = throttle.Tally(T0, T0 + timedelta(minutes=3), 40)
    assert throttle.on_refusal(tally, T0 + timedelta(minutes=18), POLICY) == "count"
    assert throttle.on_refusal(tally, T0 + timedelta(minutes=18, seconds=1), POLICY) == "reopen"
    assert throttle.needs_summary(tally) and not throttle.needs_summary(throttle.Tally(T0, T0, 1))


def test_refusals_are_held_for_an_interval_after_a_write_and_handed_over_once() -> None:
    buffer = refusals.RefusalBuffer(timedelta(seconds=1))
    where = ("db", "key", "10.0.0.1")
    assert not buffer.hold(where, T0)  # never written here: write now
    buffer.written(where, T0, forget_before=T0 - timedelta(minutes=15))
    assert buffer.hold(where, T0 + timedelta(milliseconds=999))
    assert buffer.hold(where, T0 + timedelta(milliseconds=999))
    assert not buffer.hold(where, T0 + timedelta(seconds=1))  # due: write now
    assert not buffer.hold(where, T0 - timedelta(seconds=5))  # the wall clock went back
    assert buffer.take(where) == 2 and buffer.take(where) == 0
    buffer.written(where, T0, forget_before=T0)
    buffer.written(("db", "other", ""), T0 + timedelta(hours=1), forget_before=T0)
    assert len(buffer) == 2
    later = T0 + timedelta(hours=1)
    buffer.written(("db", "third", ""), later, forget_before=T0 + timedelta(minutes=30))
    assert len(buffer) == 2  # the one written long ago was forgotten


# --- M3: nobody can lock somebody else out --------------------------------------------------------


async def test_failures_from_other_addresses_never_block_the_right_password(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    """The reported attack: wrong passwords for one name from five addresses used to make the
    right password answer 429 from anywhere for the whole window, again and again."""
    username, password = await new_user(db, clock, role="physician")
    attackers = [address() for _ in range(5)]
    for _round in range(3):  # repeating the attack changes nothing
        for addr in attackers:
            assert await attempt(db, clock, settings, username, "guess-123456", addr) == 401
    assert await attempt(db, clock, settings, username, password, address()) == 200
    # Each attacking address itself is slowed down for this name: 3 failures there, not 5.
    for addr in attackers:
        for _ in range(2):
            assert await attempt(db, clock, settings, username, "guess-123456", addr) == 401
        refused = await refusal(db, clock, settings, username, password, addr)
        assert (STATUS_OF_LOGIN_REFUSAL[refused.kind], refused.retry_after) == (429, 1)
    # The real physician, at a new place, is still heard at once.
    assert await attempt(db, clock, settings, username, password, address()) == 200


async def test_one_address_guessing_one_name_waits_longer_after_each_failure(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    addr = address()
    for _ in range(settings.login_max_failures):
        assert await attempt(db, clock, settings, username, "guess-123456", addr) == 401
    for expected in (1, 2, 4, 8, 16):
        refused = await refusal(db, clock, settings, username, password, addr)
        assert (STATUS_OF_LOGIN_REFUSAL[refused.kind], refused.retry_after) == (429, expected)
        assert f"try again in {expected} second" in refused.message
        # even the right password is refused unheard until the wait is over ...
        clock.advance(timedelta(seconds=expected) - timedelta(milliseconds=1))
        assert await attempt(db, clock, settings, username, password, addr) == 429
        clock.advance(timedelta(milliseconds=1))
        # ... and then the next guess is heard, and doubles the wait
        assert await attempt(db, clock, settings, username, "guess-123456", addr) == 401
    clock.advance(timedelta(seconds=32))
    assert await attempt(db, clock, settings, username, password, addr) == 200
    # Signing in cleared the failures of this name from this address.
    assert await attempt(db, clock, settings, username, "one-typo-1234", addr) == 401
    assert await attempt(db, clock, settings, username, password, addr) == 200


async def test_the_longest_wait_is_the_window(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    """Failures are forgotten after the window, and no wait is longer than it."""
    username, password = await new_user(db, clock)
    addr = address()
    key = login_failures.failure_key(settings, username)
    db.add_all(LoginFailure(username_key=key, client_addr=addr, at=clock.now()) for _ in range(40))
    await db.commit()
    window = settings.login_failure_window_minutes * 60
    assert (await refusal(db, clock, settings, username, password, addr)).retry_after == window
    assert (
        "try again in 15 minutes"
        in (await refusal(db, clock, settings, username, password, addr)).message
    )
    clock.advance(timedelta(seconds=window))
    assert await attempt(db, clock, settings, username, password, addr) == 200


async def test_an_address_spraying_many_names_is_throttled_but_not_the_names_elsewhere(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    sprayer = address()
    limit = settings.login_max_failures * throttle.ADDRESS_FAILURE_FACTOR
    for i in range(limit):
        name = f"n{secrets.token_hex(3)}{i}"
        assert await attempt(db, clock, settings, name, "spring-2031!", sprayer) == 401
    refused = await refusal(db, clock, settings, username, password, sprayer)
    assert (STATUS_OF_LOGIN_REFUSAL[refused.kind], refused.retry_after) == (429, 1)
    assert await attempt(db, clock, settings, username, password, address()) == 200


# --- L2: a flood of refused attempts does not flood the audit log ---------------------------------


async def test_a_flood_of_throttled_attempts_writes_one_entry_then_one_summary(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    user_id = await db.scalar(select(User.id).where(User.username == username))
    await db.rollback()
    addr = address()
    for _ in range(settings.login_max_failures):
        assert await attempt(db, clock, settings, username, "guess-123456", addr) == 401
    before = await last_seq(db)
    for i in range(50):
        clock.advance(timedelta(milliseconds=10))  # all within the one-second wait
        password_tried = password if i % 2 else "guess-123456"
        assert await attempt(db, clock, settings, username, password_tried, addr) == 429
    flood = await audit_since(db, before, addr)
    assert [e.action for e in flood] == ["auth.login_throttled"]
    assert flood[0].entity_id == str(user_id) and flood[0].actor_username == "anonymous"
    assert json.loads(flood[0].after_json) == {
        "scope": "user name and address",
        "retry_after_seconds": 1,
    }
    clock.advance(timedelta(seconds=1))
    assert await attempt(db, clock, settings, username, password, addr) == 200
    after = await audit_since(db, before, addr)
    assert [e.action for e in after] == [
        "auth.login_throttled",
        "auth.login_throttle_ended",
        "auth.login",
    ]
    summary = after[1]
    assert summary.reason == "50 sign-in attempts refused while throttled"
    assert summary.entity_id == str(user_id)
    assert json.loads(summary.after_json)["refused"] == 50
    assert await db.scalar(select(LoginThrottle).where(LoginThrottle.client_addr == addr)) is None


async def tallied(db: AsyncSession, addr: str) -> int | None:
    refused = await db.scalar(
        select(LoginThrottle.refused).where(LoginThrottle.client_addr == addr)
    )
    await db.rollback()
    return refused


async def test_a_long_flood_is_written_once_a_second_without_losing_count(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    addr = address()
    key = login_failures.failure_key(settings, username)
    db.add_all(LoginFailure(username_key=key, client_addr=addr, at=clock.now()) for _ in range(12))
    await db.commit()  # a wait of 128 s from this address
    assert await attempt(db, clock, settings, username, password, addr) == 429
    assert await tallied(db, addr) == 1
    for tenth in range(1, 31):
        clock.advance(timedelta(milliseconds=100))
        assert await attempt(db, clock, settings, username, password, addr) == 429
        if tenth % 10 == 0:  # the row is brought up to date once a second, exactly
            assert await tallied(db, addr) == tenth + 1
        elif tenth % 10 == 5:  # and held in this process in between
            assert await tallied(db, addr) == tenth - 5 + 1


async def test_held_refusals_wait_neither_for_the_write_lock_nor_for_the_audit_chain(
    db: AsyncSession, clock: ManualClock, settings: Settings, engine: AsyncEngine
) -> None:
    """What slowed the bedside down: every refused attempt queued on the lock that the next
    vitals entry needs (SQLite's write lock; on PostgreSQL the audit chain head row)."""
    username, password = await new_user(db, clock)
    addr = address()
    for _ in range(settings.login_max_failures):
        await attempt(db, clock, settings, username, "guess-123456", addr)
    assert await attempt(db, clock, settings, username, password, addr) == 429  # audited
    before = await last_seq(db)
    async with engine.connect() as writer, writer.begin():
        # A writer in the middle of its transaction: on SQLite BEGIN IMMEDIATE holds the write
        # lock; on both, the chain head is locked as an audit append locks it.
        await writer.execute(select(AuditChainHead).with_for_update())
        for _ in range(20):
            clock.advance(timedelta(milliseconds=10))
            answer = attempt(db, clock, settings, username, password, addr)
            assert await asyncio.wait_for(answer, timeout=3) == 429
    assert await audit_since(db, before, addr) == []


async def test_a_throttle_nobody_comes_back_to_is_reported_by_the_next_audited_event(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    victim, _ = await new_user(db, clock)
    bystander, bystander_password = await new_user(db, clock)
    addr = address()
    for _ in range(settings.login_max_failures):
        await attempt(db, clock, settings, victim, "guess-123456", addr)
    for _ in range(7):
        assert await attempt(db, clock, settings, victim, "guess-123456", addr) == 429
    before = await last_seq(db)
    clock.advance(timedelta(minutes=settings.login_failure_window_minutes, seconds=1))
    assert await attempt(db, clock, settings, bystander, bystander_password, address()) == 200
    reported = [e for e in await audit_since(db, before, addr)]
    assert [e.action for e in reported] == ["auth.login_throttle_ended"]
    assert json.loads(reported[0].after_json)["refused"] == 7


async def test_unknown_names_are_throttled_without_naming_them(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    addr = address()
    typed = f"maybe-a-password-{secrets.token_hex(3)}"
    for _ in range(settings.login_max_failures + 3):
        await attempt(db, clock, settings, typed, "whatever-123", addr)
    rows = await audit_since(db, 0, addr)
    throttled = [e for e in rows if e.action == "auth.login_throttled"]
    assert len(throttled) == 1 and throttled[0].entity_id is None
    assert all(typed not in (e.after_json or "") + (e.reason or "") for e in rows)


# --- unlock ---------------------------------------------------------------------------------------


async def test_unlock_forgets_the_failures_of_a_name_from_every_address_and_is_audited(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    addresses = [address() for _ in range(3)]
    for addr in addresses:
        for _ in range(settings.login_max_failures + 1):
            await attempt(db, clock, settings, username, "guess-123456", addr)
        assert await attempt(db, clock, settings, username, password, addr) == 429

    with pytest.raises(AccountError, match="give a reason"):
        await login_failures.unlock(
            db, clock, settings, actor=TEST_ACTOR, username=username, reason="  "
        )
    with pytest.raises(AccountError, match="no user 'ghost"):
        await login_failures.unlock(
            db, clock, settings, actor=TEST_ACTOR, username="ghost-x1", reason="asked by phone"
        )
    before = await last_seq(db)
    unlocked = await login_failures.unlock(
        db, clock, settings, actor=TEST_ACTOR, username=username.upper(), reason="typo storm"
    )
    assert unlocked == login_failures.Unlocked(username, failures_cleared=15, throttles_ended=3)
    events = await audit_since(db, before)
    assert [e.action for e in events] == ["auth.login_throttle_ended"] * 3 + ["user.unlock"]
    unlock_event = events[-1]
    assert (unlock_event.actor_username, unlock_event.reason) == ("test-setup", "typo storm")
    assert json.loads(unlock_event.after_json) == {"failures_cleared": 15, "throttles_ended": 3}
    for addr in addresses:
        assert await attempt(db, clock, settings, username, password, addr) == 200


# --- user names that are not plain text -----------------------------------------------------------


@pytest.mark.parametrize("typed", ["a\x00b", "nurse\x00", "nu\u202erse", "a\x1bb", "\x00"])
async def test_a_user_name_with_control_characters_is_refused_and_changes_nothing(
    db: AsyncSession, clock: ManualClock, settings: Settings, typed: str
) -> None:
    before = await last_seq(db)
    failures = await db.scalar(select(func.count()).select_from(LoginFailure))
    await db.rollback()
    refused = await refusal(db, clock, settings, typed, "whatever-123", address())
    assert STATUS_OF_LOGIN_REFUSAL[refused.kind] == 422
    assert refused.message.startswith("the user name must be plain text: it contains U+")
    assert await audit_since(db, before) == []
    assert await db.scalar(select(func.count()).select_from(LoginFailure)) == failures


async def test_accounts_with_control_characters_are_refused(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    with pytest.raises(AccountError, match="plain text") as name:
        await service.create_user(
            db, clock, actor=TEST_ACTOR, username="a\x00b", role="nurse", password="long-enough"
        )
    assert name.value.field == "username"
    with pytest.raises(AccountError, match="plain text") as title:
        await service.create_user(
            db,
            clock,
            actor=TEST_ACTOR,
            username=f"ok{secrets.token_hex(3)}",
            role="nurse",
            password="long-enough",
            display_name="Dr \u202eevil",
        )
    assert title.value.field == "display_name"
    username, _ = await new_user(db, clock)
    for kwargs in ({"username": "a\x00b"}, {"username": username, "reason": "left\x00"}):
        with pytest.raises(AccountError, match="plain text"):
            await service.set_disabled(
                db, clock, actor=TEST_ACTOR, disabled=True, **{"reason": "left", **kwargs}
            )
        with pytest.raises(AccountError, match="plain text"):
            await login_failures.unlock(
                db, clock, settings, actor=TEST_ACTOR, **{"reason": "asked", **kwargs}
            )
