"""The timer loop: every process runs one. Due timers are fired by compare-and-set in the
transaction of their transition (app.session.timer_firing), so a timer fires once however many
loops see it, and a timer that came due while the server was down fires at start-up, its
lateness recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import db_faults
from app.alarms.models import SessionAlarm
from app.alarms.webhook import EscalationWebhook
from app.clock import Clock
from app.db import DEFERRED_BEGIN
from app.doorbell import Doorbell
from app.session import presence, service, timer_firing
from app.session import technical_alarms as technical
from app.session.errors import Refusal
from app.session.models import Timer

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2


# Told of each timer this process fired: its kind and how late, in seconds (the metrics).
OnFired = Callable[[str, float], None]


async def fire_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    doorbell: Doorbell,
    webhook: EscalationWebhook | None = None,
    on_fired: OnFired | None = None,
) -> int:
    async with sessionmaker() as db:
        ids = await timer_firing.due_timer_ids(db, clock.now())
    notify = webhook.notify if webhook is not None else None
    fired = 0
    for timer_id in ids:
        async with sessionmaker() as db:
            try:
                done = await timer_firing.fire(db, clock, doorbell, timer_id, notify)
            except Refusal as error:  # e.g. escalated already, or refused
                logger.warning("timer %s not fired: %s", timer_id, error.detail)
            except Exception as error:
                if db_faults.fault_of(error) is not None:
                    raise  # the database, not this timer: the whole pass waits (run_forever)
                # One broken timer must not hold up the ones due after it; said once, not
                # every pass it is retried.
                if timer_id not in _BROKEN:
                    logger.exception("timer %s failed; it will be retried", timer_id)
                    _BROKEN[timer_id] = None
                    while len(_BROKEN) > 1000:
                        del _BROKEN[next(iter(_BROKEN))]
            else:
                if done is not None:
                    fired += 1
                    if on_fired is not None:
                        on_fired(done.kind, done.late_seconds)
    return fired


# Timers whose firing failed by a defect, already logged (oldest first, bounded).
_BROKEN: dict[int, None] = {}


class Repeats:
    """A failure that comes back every pass (a full disk, a database away) is logged once with
    its traceback, then once a minute with how many passes failed, and once when it ends: not
    five tracebacks a second."""

    def __init__(self, what: str, every_seconds: float = 60.0) -> None:
        self.what = what
        self.every_seconds = every_seconds
        self.failures = 0
        self._said_at = 0.0

    def failed(self) -> None:
        """Call from an except block."""
        self.failures += 1
        now = time.monotonic()
        if self.failures == 1:
            logger.exception("%s failed; retrying", self.what)
            self._said_at = now
        elif now - self._said_at >= self.every_seconds:
            logger.warning("%s still failing: %d times in a row", self.what, self.failures)
            self._said_at = now

    def succeeded(self) -> None:
        if self.failures:
            logger.warning("%s works again after %d failures", self.what, self.failures)
            self.failures = 0


CONTACT_SWEEP_SECONDS = 5.0


async def sweep_contact(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, doorbell: Doorbell
) -> int:
    """Look for lost contact (app.session.technical_alarms) where it can arise or end: at sessions
    whose vitals-overdue or lost-contact alarm is up. One indexed read when all is well."""
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)
        ids = list(
            await db.scalars(
                select(SessionAlarm.session_id)
                .where(
                    SessionAlarm.condition.in_((technical.VITALS_OVERDUE, technical.LOST_CONTACT)),
                    SessionAlarm.cleared_at.is_(None),
                )
                .distinct()
            )
        )
        await db.rollback()
    allowance = presence.stale_after()
    changed = 0
    for session_id in ids:
        async with sessionmaker() as db:
            try:
                changed += await service.check_contact(db, clock, doorbell, session_id, allowance)
            except Refusal as error:
                logger.warning("contact of session %s not checked: %s", session_id, error.detail)
    return changed


def pause_before(
    earliest: datetime | None,
    now: datetime,
    speed: float,
    poll_seconds: float,
    pass_started: datetime | None = None,
) -> float:
    """How long the loop may sleep, in real seconds, after a pass that started at
    ``pass_started``: until the earliest pending deadline when it is nearer than the next poll,
    so a step fires at its deadline rather than up to a poll later; no wait at all for one that
    came due while the pass ran. A deadline that was already due when the pass looked and is
    still pending (its session busy, or the firing refused) waits for the next poll rather
    than spinning."""
    if earliest is None:
        return poll_seconds
    if pass_started is not None and earliest <= pass_started:
        return poll_seconds
    left = (earliest - now).total_seconds() / speed
    return max(0.0, min(poll_seconds, left))


async def earliest_pending(sessionmaker: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessionmaker() as db:
        await db.connection(execution_options=DEFERRED_BEGIN)  # a read: no write lock
        earliest = await db.scalar(select(func.min(Timer.due_at)).where(Timer.status == "pending"))
        await db.rollback()
    return earliest


async def run_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    doorbell: Doorbell,
    webhook: EscalationWebhook | None = None,
    poll_seconds: float = POLL_SECONDS,
    stop: asyncio.Event | None = None,
    contact_seconds: float = CONTACT_SWEEP_SECONDS,
    not_ready: Callable[[], str | None] = lambda: None,
    on_fired: OnFired | None = None,
) -> None:
    """Fire due timers every `poll_seconds` until `stop` is set. Stopping waits for the pass
    under way: cancelling one inside a transaction could leave SQLite's write lock held.
    While `not_ready` gives a reason (a clock not yet aligned to the database's), nothing
    fires: a timer fired on a wrong clock fires early or late."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    last_sweep = loop.time()
    said = None
    passes = Repeats("timer loop pass")
    while not stop.is_set():
        pause = poll_seconds
        waiting = not_ready()
        if waiting != said:
            said = waiting
            if waiting is not None:
                logger.warning("timers wait: %s", waiting)
            else:
                logger.info("timers fire: the clock is ready")
        if waiting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            continue
        try:
            started = clock.now()
            await fire_due(sessionmaker, clock, doorbell, webhook, on_fired)
            if loop.time() - last_sweep >= contact_seconds:
                last_sweep = loop.time()
                await sweep_contact(sessionmaker, clock, doorbell)
            earliest = await earliest_pending(sessionmaker)
            pause = pause_before(earliest, clock.now(), clock.speed, poll_seconds, started)
            passes.succeeded()
        except Exception:  # keep the clock running; the next pass retries
            passes.failed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
