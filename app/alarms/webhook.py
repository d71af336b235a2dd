"""Escalations sent to an outside system (pager, messaging) as JSON. Delivery runs in the
background with retries: the session's transaction has committed long before, and a slow or
failing receiver never holds anything up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


class EscalationWebhook:
    def __init__(self, url: str, attempts: int = 5, backoff_seconds: float = 1.0) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self._tasks: set[asyncio.Task[bool]] = set()

    def notify(self, payload: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deliver(payload), name="escalation-webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> bool:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    response = await client.post(self.url, json=payload)
                    if response.is_success:
                        return True
                    problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    problem = type(error).__name__
                logger.warning(
                    "escalation webhook attempt %s of %s failed: %s",
                    attempt,
                    self.attempts,
                    problem,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        logger.error("escalation webhook gave up after %s attempts: %s", self.attempts, payload)
        return False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
