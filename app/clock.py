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

# How fast a steady clock is steered towards its reference: at most this many seconds per
# second (0.1 %): a 15-minute step moves by at most 0.9 s while it runs, and a minute's
# correction takes about 17 hours.
SLEW = 0.001


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


class SteadyClock:
    """Wall-clock time that never jumps: it advances with the machine's monotonic clock and is
    steered towards its reference by slewing, at most SLEW seconds per second, never by
    stepping. The reference is this machine's wall clock (one process, SQLite) or, once
    `align` hands in a measured offset, the database's clock (several processes share it).

    A step of the machine's clock (a manual change, an NTP server that jumps, a virtual
    machine resumed) therefore moves a running step's end by at most SLEW of its length:
    a 15-minute step stays 15 minutes, within 0.9 s, where following the wall clock would cut it
    by the whole step of the clock. Only the first alignment steps (until then the process is
    not ready and fires no timer); a correction backwards never runs the clock back.
    """

    speed = 1.0

    def __init__(
        self,
        wall: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        slew: float = SLEW,
        *,
        aligned: bool = False,
    ) -> None:
        self._wall = wall or (lambda: datetime.now(UTC))
        self._monotonic = monotonic or time.monotonic
        self._slew = slew
        self._start = require_aware(self._wall(), "wall clock time")
        self._started = self._monotonic()
        self._lock = threading.Lock()
        self._applied = timedelta(0)  # the correction in force, moved towards the target
        self._at = self._started  # when it was last moved (monotonic seconds)
        self._offset: timedelta | None = None  # database minus local(), once measured
        self._last: datetime | None = None
        # Aligned to its reference: at once when that is this machine's clock; after the first
        # measurement when it is the database's.
        self.measured = not aligned

    def local(self) -> datetime:
        """This process's own time line: the start's wall time plus the monotonic time since.
        What the offset to the database is measured from; no step of the wall clock moves it."""
        return self._start + timedelta(seconds=self._monotonic() - self._started)

    @property
    def offset(self) -> timedelta:
        """How far the time given is from this process's own time line, now."""
        return self._applied

    @property
    def error(self) -> timedelta:
        """Reference minus the time given, as last seen: what is still being slewed away."""
        with self._lock:
            return self._target(self.local()) - self._applied

    def align(self, offset: timedelta) -> None:
        """Hand in a measurement: the database's time minus local(). The first one is taken
        at once (nothing has fired on this clock yet); later ones are slewed towards."""
        with self._lock:
            if not self.measured:
                self._applied = offset
            self._offset = offset
            self.measured = True

    def _target(self, local: datetime) -> timedelta:
        if self._offset is not None:
            return self._offset
        return require_aware(self._wall(), "wall clock time") - local

    def now(self) -> datetime:
        with self._lock:
            moment = self._monotonic()
            local = self._start + timedelta(seconds=moment - self._started)
            most = timedelta(seconds=self._slew * max(0.0, moment - self._at))
            gap = self._target(local) - self._applied
            self._applied += max(-most, min(most, gap))
            self._at = moment
            current = local + self._applied
            if self._last is not None and current < self._last:
                return self._last  # a first alignment backwards: hold still, never run back
            self._last = current
            return current


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
        # Counting from the installation's start (read from the database), not this process's:
        # until then it is not ready and fires no timer.
        self.anchored = anchor is not None

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def anchor(self) -> datetime:
        return self._anchor

    def anchor_to(self, anchor: datetime) -> None:
        """The installation's start, read once the database answers (it did not at start-up)."""
        self._anchor = require_aware(anchor, "anchor")
        self.anchored = True

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
    settings: Settings, anchor: datetime | None = None, wall: SteadyClock | None = None
) -> Clock:
    """Build the clock selected by ``STEPWISE_CLOCK_MODE``; a ``STEPWISE_CLOCK_SPEED`` above 1
    turns the real clock into the training clock. ``anchor`` (the installation's creation time,
    passed by the app) keeps training time continuous across restarts; ``wall``, when given, is
    the wall time both run on (steady, and aligned to the database's clock by the app)."""
    if settings.clock_mode == "accelerated" or (
        settings.clock_mode == "real" and settings.clock_speed > 1
    ):
        return AcceleratedClock(settings.clock_speed, anchor, wall=wall.now if wall else None)
    if settings.clock_mode == "real":
        return wall or SteadyClock()
    if settings.clock_mode == "manual":
        return ManualClock(datetime.now(UTC))
    raise ValueError(f"unknown clock mode {settings.clock_mode!r}")


def not_ready(clock: Clock, wall: SteadyClock | None) -> str | None:
    """Why this process's clock must not fire timers yet (nor the process take work), or
    None: not yet aligned to the database's clock, or a training clock not yet counting from
    the installation's start."""
    if wall is not None and not wall.measured:
        return "not yet aligned to the database's clock"
    if isinstance(clock, AcceleratedClock) and not clock.anchored:
        return "training clock not yet anchored to the installation's start"
    return None


def person_clock(clock: Clock, wall: SteadyClock | None = None) -> Clock:
    """The clock of durations that measure a person (sign-in timeouts, the audio pause,
    escalation): the wall clock, even when a training clock runs the protocol faster. A manual
    clock (tests) is both."""
    if isinstance(clock, ManualClock):
        return clock
    return wall or SteadyClock()
