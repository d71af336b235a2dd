"""The application's notion of "now".

Nothing outside this module reads the system clock: the service layer is handed a ``Clock``,
so that training runs can use an accelerated clock and tests a manual one, without sleeping.
Every clock returns timezone-aware UTC datetimes and never runs backwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from app.config import Settings


def require_aware(value: datetime, what: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is refused (its zone is a guess)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Source of the current time for the whole application."""

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per real second (1.0 outside training)."""
        ...

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class RealClock:
    """Wall-clock time.

    A step of the system clock backwards (NTP correction, manual change) must not make the
    record go backwards, so ``now()`` never returns an instant earlier than one it already
    returned; it holds still until the wall clock catches up.
    """

    speed = 1.0

    def __init__(self, wall: Callable[[], datetime] | None = None) -> None:
        self._wall = wall or (lambda: datetime.now(UTC))
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        current = require_aware(self._wall(), "wall clock time")
        with self._lock:
            if self._last is not None and current < self._last:
                return self._last
            self._last = current
            return current


class AcceleratedClock:
    """Training clock: simulated time runs ``speed`` times faster than real time.

    Simulated time is ``start + speed * (elapsed monotonic time)``. The monotonic source never
    goes backwards, so neither does this clock, whatever happens to the wall clock.
    """

    def __init__(
        self,
        speed: float,
        start: datetime | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed >= 1.0:
            raise ValueError(f"accelerated clock speed must be >= 1, got {speed!r}")
        self._speed = float(speed)
        self._monotonic = monotonic
        self._origin = require_aware(start, "start") if start is not None else datetime.now(UTC)
        self._origin_mono = monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = max(0.0, self._monotonic() - self._origin_mono)
        return self._origin + timedelta(seconds=elapsed * self._speed)


class ManualClock:
    """A clock that moves only when told to: the clock of tests."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (which must not be negative) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot advance by a negative amount ({delta})")
        self._now += delta
        return self._now

    def set(self, value: datetime) -> datetime:
        """Jump to ``value``; moving backwards is refused."""
        target = require_aware(value, "value")
        if target < self._now:
            raise ValueError(
                f"a clock cannot move backwards (from {self._now.isoformat()} "
                f"to {target.isoformat()})"
            )
        self._now = target
        return self._now


def clock_from_settings(settings: Settings) -> Clock:
    """Build the clock selected by ``STEPWISE_CLOCK_MODE``."""
    if settings.clock_mode == "real":
        return RealClock()
    if settings.clock_mode == "accelerated":
        return AcceleratedClock(settings.clock_speed)
    if settings.clock_mode == "manual":
        return ManualClock(datetime.now(UTC))
    raise ValueError(f"unknown clock mode {settings.clock_mode!r}")
