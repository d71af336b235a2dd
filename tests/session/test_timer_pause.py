"""How long the timer loop sleeps between passes: never past the earliest deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.session.timers import pause_before

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
POLL = 0.2


def test_with_no_pending_deadline_the_loop_polls() -> None:
    assert pause_before(None, NOW, 1.0, POLL) == POLL


def test_a_deadline_nearer_than_the_poll_is_slept_to_exactly() -> None:
    assert pause_before(NOW + timedelta(milliseconds=40), NOW, 1.0, POLL) == pytest.approx(0.04)


def test_a_far_deadline_waits_for_the_next_poll() -> None:
    assert pause_before(NOW + timedelta(minutes=15), NOW, 1.0, POLL) == POLL


@pytest.mark.parametrize("before_the_pass", [timedelta(0), timedelta(seconds=3)])
def test_a_deadline_the_pass_saw_and_left_pending_waits_a_poll_rather_than_spin(
    before_the_pass: timedelta,
) -> None:
    pass_started = NOW - timedelta(milliseconds=30)
    earliest = pass_started - before_the_pass
    assert pause_before(earliest, NOW, 1.0, POLL, pass_started) == POLL


def test_a_deadline_that_came_due_during_the_pass_is_fired_without_waiting() -> None:
    pass_started = NOW - timedelta(milliseconds=30)
    earliest = NOW - timedelta(milliseconds=10)  # after the pass looked, before it ended
    assert pause_before(earliest, NOW, 1.0, POLL, pass_started) == 0.0


def test_training_time_is_turned_into_real_seconds() -> None:
    # 6 training seconds at 60x are 0.1 real seconds.
    assert pause_before(NOW + timedelta(seconds=6), NOW, 60.0, POLL) == pytest.approx(0.1)
