"""The three clocks; time is injected, never slept for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clock import (
    SLEW,
    AcceleratedClock,
    Clock,
    ManualClock,
    RealClock,
    SteadyClock,
    clock_from_settings,
    not_ready,
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


# --- SteadyClock ----------------------------------------------------------------------------


class Machine:
    """A machine's two clocks: the wall clock (which can be stepped) and the monotonic one."""

    def __init__(self, wall: datetime = START) -> None:
        self.wall = wall
        self.monotonic = 1000.0

    def run(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.monotonic += seconds

    def step_wall(self, seconds: float) -> None:  # a manual change, an NTP server that jumps
        self.wall += timedelta(seconds=seconds)

    def steady(self, **kw) -> SteadyClock:
        return SteadyClock(lambda: self.wall, lambda: self.monotonic, **kw)


@pytest.mark.parametrize("step", [60, -60])
def test_a_step_of_the_machine_clock_is_slewed_not_jumped(step: int) -> None:
    machine = Machine()
    clock = machine.steady()
    assert clock.now() == START and clock.measured
    machine.run(30)
    machine.step_wall(step)
    machine.run(1)
    # It moved by the 31 s that passed, give or take the slew over them: not by a minute.
    assert abs(clock.now() - (START + timedelta(seconds=31))) <= timedelta(seconds=SLEW * 31)
    # A 15-minute step that runs across it lasts 15 minutes within SLEW of its length.
    begun = clock.now()
    machine.run(15 * 60)
    lasted = (clock.now() - begun).total_seconds()
    assert abs(lasted - 15 * 60) <= SLEW * 15 * 60 + 1e-6
    assert lasted != 15 * 60  # it is being steered towards the machine's new time
    # Given time enough, it meets the machine's clock and then keeps to it.
    machine.run(abs(step) / SLEW + 60)
    assert abs(clock.now() - machine.wall) < timedelta(milliseconds=1)
    assert abs(clock.error) < timedelta(milliseconds=1)


def test_the_first_alignment_is_taken_at_once_and_later_ones_are_slewed() -> None:
    machine = Machine()
    clock = machine.steady(aligned=True)
    assert not clock.measured  # not ready: nothing may fire on it yet
    clock.align(timedelta(seconds=90))  # the database is 90 s ahead of this machine
    assert clock.measured and clock.now() == START + timedelta(seconds=90)

    machine.step_wall(-3600)  # the machine's clock is stepped: nothing moves
    machine.run(10)
    assert clock.now() == START + timedelta(seconds=100)
    clock.align(timedelta(seconds=95))  # the database's clock was stepped 5 s ahead
    machine.run(100)
    assert clock.now() == START + timedelta(seconds=200 + 100 * SLEW)
    machine.run(6000)  # 5 s at 0.1 % take 5000 s
    assert clock.now() == START + timedelta(seconds=6110 + 95)
    assert isinstance(clock, Clock) and clock.speed == 1.0


def test_a_first_alignment_backwards_holds_the_clock_still() -> None:
    machine = Machine()
    clock = machine.steady(aligned=True)
    assert clock.now() == START  # before alignment: this machine's time
    clock.align(timedelta(seconds=-5))
    machine.run(3)
    assert clock.now() == START  # not 2 s before an instant it already gave
    machine.run(5)
    assert clock.now() == START + timedelta(seconds=3)


@settings(max_examples=200, deadline=None)
@given(
    moves=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=600),  # seconds the machine runs
            st.floats(min_value=-7200, max_value=7200),  # then its wall clock is stepped
            st.one_of(st.none(), st.floats(min_value=-7200, max_value=7200)),  # a measurement
        ),
        max_size=30,
    ),
    aligned=st.booleans(),
)
def test_the_steady_clock_never_runs_back_nor_faster_or_slower_than_the_slew(
    moves: list[tuple[float, float, float | None]], aligned: bool
) -> None:
    machine = Machine()
    clock = machine.steady(aligned=aligned)
    if aligned:
        clock.align(timedelta(0))
    last, last_monotonic = clock.now(), machine.monotonic
    for ran, stepped, measured in moves:
        machine.run(ran)
        machine.step_wall(stepped)
        if aligned and measured is not None:
            clock.align(timedelta(seconds=measured))
        now = clock.now()
        elapsed = machine.monotonic - last_monotonic
        moved = (now - last).total_seconds()
        assert now >= last
        assert elapsed * (1 - SLEW) - 1e-3 <= moved <= elapsed * (1 + SLEW) + 1e-3
        last, last_monotonic = now, machine.monotonic


def test_the_training_clock_runs_on_the_steady_wall_when_given() -> None:
    machine = Machine()
    aligned = machine.steady(aligned=True)
    aligned.align(timedelta(seconds=30))
    settings = Settings(env="test", clock_mode="real", clock_speed=10)

    clock = clock_from_settings(settings, anchor=START, wall=aligned)
    machine.run(1)  # aligned: 31 s after the anchor

    assert clock.now() == START + timedelta(seconds=310)
    assert clock_from_settings(Settings(env="test"), wall=aligned) is aligned


def test_a_training_clock_started_without_its_anchor_is_not_ready_until_it_has_it() -> None:
    machine = Machine()
    wall = machine.steady()
    clock = AcceleratedClock(10, None, wall=wall.now)
    assert not_ready(clock, wall) == "training clock not yet anchored to the installation's start"
    clock.anchor_to(START - timedelta(hours=1))
    assert not_ready(clock, wall) is None
    assert clock.now() == START + timedelta(hours=9)  # an hour of real time, ten of training
    unaligned = machine.steady(aligned=True)
    assert not_ready(unaligned, unaligned) == "not yet aligned to the database's clock"


# --- from settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected_type", "speed"),
    [
        ("accelerated", AcceleratedClock, 30.0),
        ("manual", ManualClock, 1.0),
    ],
)
def test_clock_from_settings(mode: str, expected_type: type, speed: float) -> None:
    assert isinstance(clock_from_settings(Settings(env="test", clock_mode="real")), SteadyClock)
    settings = Settings(env="test", clock_mode=mode, clock_speed=30)

    clock = clock_from_settings(settings)

    assert isinstance(clock, expected_type)
    assert isinstance(clock, Clock)
    assert clock.speed == speed
    assert clock.now().tzinfo is UTC
