"""The application's notion of "now".

Nothing outside this module reads the system clock: the service layer is handed a ``Clock``,
so that training runs can use an accelerated clock and tests a manual one, without sleeping.
Every clock returns timezone-aware UTC datetimes and never runs backwards.
"""

from __future__ import annotations

import threading
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


class AlignedClock:
    """Wall-clock time moved by an offset measured against a reference clock: the database's,
    when several processes share one. A timer is due when the shared clock says so, not when
    the clock of whichever machine looks first does; machines whose clocks disagree by a
    minute would otherwise fire a step a minute early (or late).

    The offset is measured outside this module (app.clock_sync) and handed in with
    ``align``; a correction backwards holds the clock still instead of running it back.
    """

    speed = 1.0

    def __init__(self, wall: Callable[[], datetime] | None = None) -> None:
        self._local = wall or (lambda: datetime.now(UTC))
        self._offset = timedelta(0)
        self._aligned = RealClock(lambda: self._local() + self._offset)

    @property
    def offset(self) -> timedelta:
        """Reference time minus this machine's time, as last measured."""
        return self._offset

    def local(self) -> datetime:
        """This machine's own, uncorrected time: what the offset is measured from."""
        return require_aware(self._local(), "wall clock time")

    def align(self, offset: timedelta) -> None:
        self._offset = offset
        self.measured = True

    measured = False  # not until the first measurement: until then it is this machine's time

    def now(self) -> datetime:
        return self._aligned.now()


class AcceleratedClock:
    """Training clock: simulated time runs ``speed`` times faster than real time.

    Simulated time is ``anchor + speed * (wall time - anchor)``: a function of the wall clock
    alone, so a restarted server continues exactly where the previous process was (a clock
    counted from process start would fall behind what was already recorded). The wall source
    never goes backwards (RealClock), so neither does this clock.
    """

    def __init__(
        self,
        speed: float,
        anchor: datetime | None = None,
        *,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        if not speed >= 1.0:
            raise ValueError(f"accelerated clock speed must be >= 1, got {speed!r}")
        self._speed = float(speed)
        self._wall = wall or RealClock().now
        self._anchor = require_aware(anchor, "anchor") if anchor is not None else self._wall()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def anchor(self) -> datetime:
        return self._anchor

    def now(self) -> datetime:
        elapsed = max(timedelta(0), require_aware(self._wall(), "wall time") - self._anchor)
        return self._anchor + elapsed * self._speed


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


def clock_from_settings(
    settings: Settings, anchor: datetime | None = None, wall: AlignedClock | None = None
) -> Clock:
    """Build the clock selected by ``STEPWISE_CLOCK_MODE``; a ``STEPWISE_CLOCK_SPEED`` above 1
    turns the real clock into the training clock. ``anchor`` (the installation's creation time,
    passed by the app) keeps training time continuous across restarts; ``wall``, when given, is
    the wall time both run on (aligned to the database's clock by the app)."""
    if settings.clock_mode == "accelerated" or (
        settings.clock_mode == "real" and settings.clock_speed > 1
    ):
        return AcceleratedClock(settings.clock_speed, anchor, wall=wall.now if wall else None)
    if settings.clock_mode == "real":
        return wall or RealClock()
    if settings.clock_mode == "manual":
        return ManualClock(datetime.now(UTC))
    raise ValueError(f"unknown clock mode {settings.clock_mode!r}")


def person_clock(clock: Clock, wall: AlignedClock | None = None) -> Clock:
    """The clock of durations that measure a person (sign-in timeouts, the audio pause,
    escalation): the wall clock, even when a training clock runs the protocol faster. A manual
    clock (tests) is both."""
    if isinstance(clock, ManualClock):
        return clock
    return wall or RealClock()
