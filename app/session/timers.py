"""The timer loop: every process runs one. Due timers are fired by compare-and-set in the
transaction of their transition (app.session.service.fire_timer), so a timer fires once however
many loops see it, and a timer that came due while the server was down fires at start-up, its
lateness recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.alarms import service as alarm_service
from app.alarms.models import AlarmCheckTimer, AlarmTimer
from app.alarms.webhook import EscalationWebhook
from app.clock import Clock
from app.live.doorbell import Doorbell
from app.session import service

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2


async def fire_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    doorbell: Doorbell,
    webhook: EscalationWebhook | None = None,
) -> int:
    async with sessionmaker() as db:
        ids = await service.due_timer_ids(db, clock.now())
    async with sessionmaker() as db:
        alarm_ids = await alarm_service.due_ids(db, AlarmTimer, clock.now())
    async with sessionmaker() as db:
        check_ids = await alarm_service.due_ids(db, AlarmCheckTimer, clock.now())
    notify = webhook.notify if webhook is not None else None

    async def fire_alarm(db: AsyncSession, clock: Clock, doorbell: Doorbell, timer_id: int) -> bool:
        return await service.fire_alarm_timer(db, clock, doorbell, AlarmTimer, timer_id, notify)

    async def fire_check(db: AsyncSession, clock: Clock, doorbell: Doorbell, timer_id: int) -> bool:
        return await service.fire_alarm_timer(db, clock, doorbell, AlarmCheckTimer, timer_id)

    fired = 0
    for fire, timer_ids in (
        (service.fire_timer, ids),
        (fire_alarm, alarm_ids),
        (fire_check, check_ids),
    ):
        for timer_id in timer_ids:
            async with sessionmaker() as db:
                try:
                    fired += await fire(db, clock, doorbell, timer_id)
                except service.SessionError as error:  # e.g. escalated already, or refused
                    logger.warning("timer %s not fired: %s", timer_id, error.detail)
                except Exception:  # one broken timer must not hold up the ones due after it
                    logger.exception("timer %s failed; it will be retried", timer_id)
    return fired


async def run_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    doorbell: Doorbell,
    webhook: EscalationWebhook | None = None,
    poll_seconds: float = POLL_SECONDS,
    stop: asyncio.Event | None = None,
) -> None:
    """Fire due timers every `poll_seconds` until `stop` is set. Stopping waits for the pass
    under way: cancelling one inside a transaction could leave SQLite's write lock held."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await fire_due(sessionmaker, clock, doorbell, webhook)
        except Exception:  # keep the clock running; the next pass retries
            logger.exception("timer loop pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_seconds)
