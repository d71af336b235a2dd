"""The three clocks; time is injected, never slept for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.clock import (
    AcceleratedClock,
    AlignedClock,
    Clock,
    ManualClock,
    RealClock,
    clock_from_settings,
)
from app.config import Settings

START = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


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


class FakeWall:
    def __init__(self, value: datetime = START) -> None:
        self.value = value

    def __call__(self) -> datetime:
        return self.value


def test_accelerated_clock_runs_speed_times_faster() -> None:
    wall = FakeWall()
    clock = AcceleratedClock(60, START, wall=wall)

    assert clock.speed == 60
    assert clock.now() == START
    wall.value += timedelta(seconds=10)  # ten real seconds
    assert clock.now() == START + timedelta(minutes=10)
    wall.value += timedelta(seconds=0.5)
    assert clock.now() == START + timedelta(minutes=10, seconds=30)


def test_accelerated_clock_at_speed_one_follows_real_time() -> None:
    wall = FakeWall()
    clock = AcceleratedClock(1.0, START, wall=wall)
    wall.value += timedelta(seconds=90)
    assert clock.now() == START + timedelta(seconds=90)


def test_a_restarted_training_clock_continues_where_the_last_one_was() -> None:
    wall = FakeWall(START + timedelta(minutes=2))
    before_restart = AcceleratedClock(30, START, wall=wall).now()
    after_restart = AcceleratedClock(30, START, wall=wall).now()  # same anchor, new process
    assert after_restart == before_restart == START + timedelta(hours=1)


def test_accelerated_clock_never_runs_before_its_anchor() -> None:
    wall = FakeWall(START - timedelta(hours=1))  # a wall clock behind the anchor
    assert AcceleratedClock(10, START, wall=wall).now() == START


def test_accelerated_clock_defaults_to_starting_now() -> None:
    before = datetime.now(UTC)
    clock = AcceleratedClock(5)
    after = datetime.now(UTC)

    assert before <= clock.anchor <= after
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("speed", [0.5, 0, -2, float("nan")])
def test_accelerated_clock_refuses_slow_speeds(speed: float) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        AcceleratedClock(speed, START, wall=FakeWall())


def test_accelerated_clock_refuses_naive_anchor() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AcceleratedClock(2, datetime(2024, 5, 6), wall=FakeWall())


def test_a_speed_above_one_alone_turns_on_the_training_clock() -> None:
    clock = clock_from_settings(Settings(env="test", clock_speed=60), anchor=START)
    assert isinstance(clock, AcceleratedClock) and clock.speed == 60 and clock.anchor == START


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


# --- AlignedClock ---------------------------------------------------------------------------


def test_aligned_clock_adds_the_measured_offset_to_the_local_time() -> None:
    wall = FakeWall(START)
    clock = AlignedClock(wall)
    assert clock.now() == START and clock.offset == timedelta(0)

    clock.align(timedelta(seconds=-90))  # this machine runs 90 s ahead of the database
    wall.value = START + timedelta(seconds=100)

    assert clock.local() == START + timedelta(seconds=100)
    assert clock.now() == START + timedelta(seconds=10)
    assert isinstance(clock, Clock) and clock.speed == 1.0


def test_a_correction_backwards_holds_the_aligned_clock_still() -> None:
    wall = FakeWall(START)
    clock = AlignedClock(wall)
    assert clock.now() == START

    clock.align(timedelta(seconds=-5))
    wall.value = START + timedelta(seconds=3)
    assert clock.now() == START  # not 2 s before an instant it already gave
    wall.value = START + timedelta(seconds=8)
    assert clock.now() == START + timedelta(seconds=3)


def test_the_training_clock_runs_on_the_aligned_wall_when_given() -> None:
    wall = FakeWall(START)
    aligned = AlignedClock(wall)
    aligned.align(timedelta(seconds=30))
    settings = Settings(env="test", clock_mode="real", clock_speed=10)

    clock = clock_from_settings(settings, anchor=START, wall=aligned)
    wall.value = START + timedelta(seconds=1)  # aligned: 31 s after the anchor

    assert clock.now() == START + timedelta(seconds=310)
    assert clock_from_settings(Settings(env="test"), wall=aligned) is aligned


# --- from settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected_type", "speed"),
    [
        ("accelerated", AcceleratedClock, 30.0),
        ("manual", ManualClock, 1.0),
    ],
)
def test_clock_from_settings(mode: str, expected_type: type, speed: float) -> None:
    assert isinstance(clock_from_settings(Settings(env="test", clock_mode="real")), RealClock)
    settings = Settings(env="test", clock_mode=mode, clock_speed=30)

    clock = clock_from_settings(settings)

    assert isinstance(clock, expected_type)
    assert isinstance(clock, Clock)
    assert clock.speed == speed
    assert clock.now().tzinfo is UTC
