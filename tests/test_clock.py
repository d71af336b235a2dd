"""The three clocks; time is injected, never slept for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.clock import (
    AcceleratedClock,
    Clock,
    ManualClock,
    RealClock,
    clock_from_settings,
)
from app.config import Settings

START = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self, value: float = 1000.0) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


# --- RealClock -------------------------------------------------------------------------------


def test_real_clock_is_aware_utc_and_close_to_system_time() -> None:
    clock = RealClock()
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)

    assert now.tzinfo is UTC
    assert before <= now <= after
    assert clock.speed == 1.0


def test_real_clock_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    clock = RealClock(wall=lambda: datetime(2024, 5, 6, 9, 8, 9, tzinfo=plus_two))

    assert clock.now() == START
    assert clock.now().tzinfo is UTC


def test_real_clock_never_runs_backwards() -> None:
    readings = iter([START, START - timedelta(minutes=5), START + timedelta(seconds=1)])
    clock = RealClock(wall=lambda: next(readings))

    assert clock.now() == START
    assert clock.now() == START  # the wall clock stepped back; the record does not
    assert clock.now() == START + timedelta(seconds=1)


def test_real_clock_refuses_a_naive_source() -> None:
    clock = RealClock(wall=lambda: datetime(2024, 5, 6, 7, 8, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.now()


# --- AcceleratedClock ------------------------------------------------------------------------


def test_accelerated_clock_runs_speed_times_faster() -> None:
    mono = FakeMonotonic()
    clock = AcceleratedClock(60, START, monotonic=mono)

    assert clock.speed == 60
    assert clock.now() == START
    mono.value += 10  # ten real seconds
    assert clock.now() == START + timedelta(minutes=10)
    mono.value += 0.5
    assert clock.now() == START + timedelta(minutes=10, seconds=30)


def test_accelerated_clock_at_speed_one_follows_real_time() -> None:
    mono = FakeMonotonic()
    clock = AcceleratedClock(1.0, START, monotonic=mono)
    mono.value += 90
    assert clock.now() == START + timedelta(seconds=90)


def test_accelerated_clock_never_runs_backwards() -> None:
    mono = FakeMonotonic()
    clock = AcceleratedClock(10, START, monotonic=mono)
    mono.value += 3
    later = clock.now()
    mono.value -= 100  # a misbehaving source must not drag the clock before its origin
    assert clock.now() >= START
    mono.value += 200
    assert clock.now() > later


def test_accelerated_clock_defaults_to_starting_now() -> None:
    before = datetime.now(UTC)
    clock = AcceleratedClock(5, monotonic=FakeMonotonic())
    after = datetime.now(UTC)

    assert before <= clock.now() <= after
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("speed", [0.5, 0, -2, float("nan")])
def test_accelerated_clock_refuses_slow_speeds(speed: float) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        AcceleratedClock(speed, START, monotonic=FakeMonotonic())


def test_accelerated_clock_refuses_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AcceleratedClock(2, datetime(2024, 5, 6), monotonic=FakeMonotonic())


# --- ManualClock -----------------------------------------------------------------------------


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(START)

    assert clock.now() == START
    assert clock.now() == START
    assert clock.advance(timedelta(minutes=15)) == START + timedelta(minutes=15)
    assert clock.now() == START + timedelta(minutes=15)
    assert clock.set(START + timedelta(hours=2)) == START + timedelta(hours=2)
    assert clock.now() == START + timedelta(hours=2)
    assert clock.speed == 1.0


def test_manual_clock_normalises_to_utc() -> None:
    clock = ManualClock(datetime(2024, 5, 6, 2, 8, 9, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == START
    assert clock.now().tzinfo is UTC


def test_manual_clock_refuses_to_go_backwards() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(START - timedelta(microseconds=1))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == START
    assert clock.set(START) == START  # standing still is allowed


def test_manual_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2024, 5, 6))
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2030, 1, 1))


# --- from settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected_type", "speed"),
    [
        ("real", RealClock, 1.0),
        ("accelerated", AcceleratedClock, 30.0),
        ("manual", ManualClock, 1.0),
    ],
)
def test_clock_from_settings(mode: str, expected_type: type, speed: float) -> None:
    settings = Settings(env="test", clock_mode=mode, clock_speed=30)

    clock = clock_from_settings(settings)

    assert isinstance(clock, expected_type)
    assert isinstance(clock, Clock)
    assert clock.speed == speed
    assert clock.now().tzinfo is UTC
