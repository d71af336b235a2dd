"""The pure alarm logic (product-spec §4, IEC 60601-1-8): latching, acknowledge versus audio
pause, break-through, escalation, refusals; then random command sequences against invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.alarms import logic as A

T0 = datetime(2031, 5, 6, 8, 0, tzinfo=UTC)
NURSE, OTHER_NURSE = 7, 8


def at(seconds: float = 0, *, minutes: float = 0, ms: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds, milliseconds=ms)


def ok(result: A.Result) -> A.Accepted:
    assert isinstance(result, A.Accepted), result
    return result


def refused(result: A.Result) -> A.Refused:
    assert isinstance(result, A.Refused), result
    assert result.reason and "\n" not in result.reason
    return result


def kinds(result: A.Accepted) -> list[str]:
    return [e.kind for e in result.events]


def raised(
    board: A.AlarmBoard,
    priority: A.Priority,
    now: datetime,
    condition: str | None = None,
    value: str = "85",
) -> A.AlarmBoard:
    result = ok(
        A.raise_alarm(
            board,
            condition or f"cond-{priority.lower()}",
            priority,
            "physiological",
            f"{priority} alarm",
            value,
            "90",
            now,
        )
    )
    return result.state


# --- data ----------------------------------------------------------------------------------


def test_visual_and_audio_patterns_are_data() -> None:
    assert A.VISUAL == {
        "HIGH": ("red", True),
        "MEDIUM": ("yellow", True),
        "LOW": ("cyan", False),
    }
    assert A.AUDIO_PULSES == {"HIGH": 10, "MEDIUM": 3, "LOW": 1}
    board = raised(A.AlarmBoard(), "LOW", T0)
    assert board.alarms[0].visual == ("cyan", False)


def test_a_raised_alarm_records_what_triggered_it() -> None:
    result = ok(
        A.raise_alarm(
            A.AlarmBoard(), "spo2-low", "HIGH", "physiological", "SpO2 low", "91 %", "≤ 92 %", T0
        )
    )
    (alarm,) = result.state.alarms
    assert (alarm.id, alarm.priority, alarm.kind, alarm.condition) == (
        1,
        "HIGH",
        "physiological",
        "spo2-low",
    )
    assert (alarm.message, alarm.value, alarm.limit, alarm.raised_at) == (
        "SpO2 low",
        "91 %",
        "≤ 92 %",
        T0,
    )
    assert alarm.condition_active and alarm.active and not alarm.acknowledged
    assert kinds(result) == ["raised"]
    assert result.events[0].data["value"] == "91 %"
    assert result.state.last_at == T0
    assert A.sounding(result.state, T0) == "HIGH"


# --- latching ------------------------------------------------------------------------------


def test_high_alarm_latches_until_acknowledged() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    cleared = ok(A.condition_cleared(board, "cond-high", at(10)))
    assert kinds(cleared) == ["latched"]
    (alarm,) = cleared.state.alarms
    assert alarm.active and alarm.latched and not alarm.condition_active
    assert alarm.cleared_at is None
    assert A.sounding(cleared.state, at(11)) == "HIGH"  # still sounding: nobody acknowledged

    acked = ok(A.acknowledge(cleared.state, 1, NURSE, at(20)))
    assert kinds(acked) == ["acknowledged", "ended"]
    (alarm,) = acked.state.alarms
    assert not alarm.active
    assert (alarm.acknowledged_by, alarm.acknowledged_at, alarm.cleared_at) == (
        NURSE,
        at(20),
        at(20),
    )
    assert A.sounding(acked.state, at(21)) is None


@pytest.mark.parametrize("priority", ["MEDIUM", "LOW"])
def test_medium_and_low_alarms_end_when_their_condition_clears(priority: A.Priority) -> None:
    board = raised(A.AlarmBoard(), priority, T0)
    result = ok(A.condition_cleared(board, f"cond-{priority.lower()}", at(10)))
    assert kinds(result) == ["ended"]
    (alarm,) = result.state.alarms
    assert alarm.cleared_at == at(10) and not alarm.active and not alarm.acknowledged
    assert A.sounding(result.state, at(10)) is None


@pytest.mark.parametrize("priority", ["HIGH", "MEDIUM", "LOW"])
def test_acknowledged_alarm_with_active_condition_stays_visible_but_silent(
    priority: A.Priority,
) -> None:
    board = raised(A.AlarmBoard(), priority, T0)
    acked = ok(A.acknowledge(board, 1, NURSE, at(5)))
    assert kinds(acked) == ["acknowledged"]
    (alarm,) = acked.state.alarms
    assert alarm.active and alarm.condition_active and alarm.acknowledged
    assert A.sounding(acked.state, at(6)) is None
    # It ends when its condition clears, whatever the priority: it was acknowledged.
    cleared = ok(A.condition_cleared(acked.state, f"cond-{priority.lower()}", at(30)))
    assert kinds(cleared) == ["ended"]
    assert cleared.state.alarms[0].cleared_at == at(30)


# --- acknowledge versus audio pause ---------------------------------------------------------


def test_audio_pause_silences_without_acknowledging() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    paused = ok(A.pause_audio(board, NURSE, at(5)))
    assert kinds(paused) == ["audio_paused"]
    (alarm,) = paused.state.alarms
    assert alarm.acknowledged_by is None and alarm.acknowledged_at is None
    assert alarm.audio_paused_until == at(5, minutes=2)
    assert paused.state.audio_pause == A.AudioPause(at(5), at(5, minutes=2), NURSE, "HIGH", (1,))
    assert A.sounding(paused.state, at(6)) is None
    # The condition clears during the pause: the HIGH alarm latches, it does not end.
    latched = ok(A.condition_cleared(paused.state, "cond-high", at(30)))
    assert latched.state.alarms[0].active
    assert A.sounding(latched.state, at(5, minutes=2)) == "HIGH"
    # Acknowledging is still needed, and still possible.
    assert kinds(ok(A.acknowledge(latched.state, 1, NURSE, at(40)))) == ["acknowledged", "ended"]


def test_acknowledging_does_not_pause_the_others() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = raised(board, "MEDIUM", at(1))
    acked = ok(A.acknowledge(board, 1, NURSE, at(5)))
    assert acked.state.audio_pause is None
    assert acked.state.alarms[1].audio_paused_until is None
    assert A.sounding(acked.state, at(5)) == "MEDIUM"


def test_audio_pause_expires_at_exactly_two_minutes() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    paused = ok(A.pause_audio(board, NURSE, at(5))).state
    end = at(5, minutes=2)
    almost = end - timedelta(milliseconds=1)
    assert A.sounding(paused, almost) is None
    assert A.pause_remaining(paused, almost) == timedelta(milliseconds=1)
    assert A.pause_remaining(paused, at(5)) == timedelta(minutes=2)
    still = ok(A.tick(paused, almost))
    assert still.events == () and still.state is paused
    assert A.sounding(paused, end) == "MEDIUM"
    assert A.pause_remaining(paused, end) is None
    expired = ok(A.tick(paused, end))
    assert kinds(expired) == ["audio_pause_expired"]
    assert expired.events[0].data["until"] == end.isoformat()
    assert expired.state.audio_pause is None
    assert A.sounding(expired.state, end) == "MEDIUM"
    # Nothing left to expire: a second tick changes nothing.
    again = ok(A.tick(expired.state, at(10, minutes=3)))
    assert again.events == () and again.state is expired.state


def test_pause_with_a_custom_duration() -> None:
    board = raised(A.AlarmBoard(), "LOW", T0)
    paused = ok(A.pause_audio(board, NURSE, T0, timedelta(seconds=30))).state
    assert A.sounding(paused, at(29.999)) is None
    assert A.sounding(paused, at(30)) == "LOW"


def test_a_command_after_the_deadline_records_the_expiry_first() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    paused = ok(A.pause_audio(board, NURSE, T0)).state
    result = ok(
        A.raise_alarm(paused, "other", "LOW", "technical", "vitals due soon", "", "", at(minutes=3))
    )
    assert kinds(result) == ["audio_pause_expired", "raised"]
    assert result.state.audio_pause is None
    assert result.state.alarms[1].audio_paused_until is None


def test_pause_is_refused_when_nothing_sounds() -> None:
    refused(A.pause_audio(A.AlarmBoard(), NURSE, T0))
    board = raised(A.AlarmBoard(), "HIGH", T0)
    acked = ok(A.acknowledge(board, 1, NURSE, at(1))).state
    refused(A.pause_audio(acked, NURSE, at(2)))  # acknowledged: silent already
    paused = ok(A.pause_audio(board, NURSE, at(3))).state
    again = refused(A.pause_audio(paused, NURSE, at(4)))
    assert "paused until" in again.reason


# --- break-through ---------------------------------------------------------------------------


def test_higher_priority_raised_during_a_pause_breaks_through() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    paused = ok(A.pause_audio(board, NURSE, at(5))).state
    assert A.sounding(paused, at(6)) is None
    result = ok(
        A.raise_alarm(paused, "sbp-low", "HIGH", "physiological", "SBP < 90", "84", "90", at(30))
    )
    assert result.events[0].data["breaks_through_pause"] is True
    assert result.state.alarms[1].audio_paused_until is None
    assert A.sounding(result.state, at(30)) == "HIGH"
    # The MEDIUM alarm stays paused: acknowledging the HIGH one leaves silence until the end.
    acked = ok(A.acknowledge(result.state, 2, NURSE, at(40))).state
    assert A.sounding(acked, at(5, minutes=2) - timedelta(microseconds=1)) is None
    assert A.sounding(acked, at(5, minutes=2)) == "MEDIUM"


def test_pausing_again_silences_the_alarm_that_broke_through() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    board = ok(A.pause_audio(board, NURSE, T0)).state
    board = raised(board, "HIGH", at(30))
    again = ok(A.pause_audio(board, OTHER_NURSE, at(40)))
    assert again.state.audio_pause == A.AudioPause(
        at(40), at(40, minutes=2), OTHER_NURSE, "HIGH", (1, 2)
    )
    assert A.sounding(again.state, at(40, minutes=2) - timedelta(microseconds=1)) is None
    assert A.sounding(again.state, at(40, minutes=2)) == "HIGH"


@pytest.mark.parametrize("new_priority", ["MEDIUM", "LOW"])
def test_equal_or_lower_priority_raised_during_a_pause_stays_paused(
    new_priority: A.Priority,
) -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    paused = ok(A.pause_audio(board, NURSE, at(5))).state
    result = ok(
        A.raise_alarm(paused, "new", new_priority, "technical", "new", "", "", at(minutes=1))
    )
    assert result.events[0].data["breaks_through_pause"] is False
    assert result.state.alarms[1].audio_paused_until == at(5, minutes=2)
    # Even with the first alarm gone, the new one waits for the pause to end.
    acked = ok(A.acknowledge(result.state, 1, NURSE, at(minutes=1.5))).state
    assert A.sounding(acked, at(5, minutes=2) - timedelta(milliseconds=1)) is None
    assert A.sounding(acked, at(5, minutes=2)) == new_priority


def test_break_through_needs_a_priority_above_every_alarm_silenced() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = raised(board, "LOW", at(1))
    paused = ok(A.pause_audio(board, NURSE, at(2))).state
    assert paused.audio_pause is not None and paused.audio_pause.ceiling == "HIGH"
    board = raised(paused, "MEDIUM", at(10))
    board = raised(board, "HIGH", at(11), condition="another-high")
    assert A.sounding(board, at(12)) is None


# --- escalation ------------------------------------------------------------------------------


def test_high_alarm_escalates_at_exactly_30_seconds_and_only_once() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    assert A.escalation_deadlines(board) == [(1, at(30))]
    early = ok(A.escalate_due(board, at(ms=29_999)))
    assert early.events == () and early.state is board
    due = ok(A.escalate_due(board, at(30)))
    assert kinds(due) == ["escalated"]
    assert due.events[0].data["to"] == "physicians"
    assert due.state.alarms[0].escalated_at == at(30)
    assert A.escalation_deadlines(due.state) == []
    again = ok(A.escalate_due(due.state, at(45)))
    assert again.events == () and again.state.alarms[0].escalated_at == at(30)


def test_medium_alarm_escalates_at_exactly_two_minutes() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    assert A.escalation_deadlines(board) == [(1, at(minutes=2))]
    assert ok(A.escalate_due(board, at(minutes=2) - timedelta(milliseconds=1))).events == ()
    due = ok(A.escalate_due(board, at(minutes=2)))
    assert due.state.alarms[0].escalated_at == at(minutes=2)


def test_low_alarm_never_escalates() -> None:
    board = raised(A.AlarmBoard(), "LOW", T0)
    assert A.escalation_deadlines(board) == []
    assert ok(A.escalate_due(board, at(minutes=60))).events == ()


def test_late_timer_escalates_at_the_time_it_runs() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = raised(board, "MEDIUM", at(10))
    assert A.escalation_deadlines(board) == [(1, at(30)), (2, at(10, minutes=2))]
    due = ok(A.escalate_due(board, at(minutes=5)))
    assert [e.data["alarm_id"] for e in due.events] == [1, 2]
    assert due.events[0].data["due_at"] == at(30).isoformat()
    assert [a.escalated_at for a in due.state.alarms] == [at(minutes=5)] * 2


def test_acknowledging_before_the_deadline_cancels_the_escalation() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    acked = ok(A.acknowledge(board, 1, NURSE, at(ms=29_999)))
    assert acked.events[0].data["escalation_cancelled"] is True
    assert A.escalation_deadlines(acked.state) == []
    result = ok(A.escalate_due(acked.state, at(30)))
    assert result.events == () and result.state.alarms[0].escalated_at is None


def test_an_audio_pause_does_not_cancel_the_escalation() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    paused = ok(A.pause_audio(board, NURSE, at(1))).state
    assert A.escalation_deadlines(paused) == [(1, at(30))]
    assert ok(A.escalate_due(paused, at(30))).state.alarms[0].escalated_at == at(30)


def test_a_latched_high_alarm_still_escalates_and_an_ended_medium_does_not() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = raised(board, "MEDIUM", T0)
    board = ok(A.condition_cleared(board, "cond-high", at(5))).state
    board = ok(A.condition_cleared(board, "cond-medium", at(5))).state
    assert A.escalation_deadlines(board) == [(1, at(30))]


def test_escalation_delays_are_settings() -> None:
    fast = A.AlarmSettings(escalate_high_after=timedelta(seconds=10), escalate_medium_after=None)
    board = raised(A.AlarmBoard(settings=fast), "HIGH", T0)
    board = raised(board, "MEDIUM", T0)
    board = raised(board, "LOW", T0)
    assert A.escalation_deadlines(board) == [(1, at(10))]
    with pytest.raises(ValueError):
        A.AlarmSettings(escalate_high_after=timedelta(0))


# --- duplicates --------------------------------------------------------------------------------


def test_raising_an_active_condition_again_updates_it() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0, condition="sbp-low", value="88")
    again = ok(
        A.raise_alarm(board, "sbp-low", "HIGH", "physiological", "SBP 80", "80", "95", at(10))
    )
    assert kinds(again) == ["updated"]
    assert again.events[0].data["previous_value"] == "88"
    (alarm,) = again.state.alarms
    assert (alarm.id, alarm.raised_at, alarm.value, alarm.limit) == (1, T0, "80", "95")
    assert again.state.next_id == 2
    # The deadline still counts from the first raise.
    assert A.escalation_deadlines(again.state) == [(1, at(30))]


def test_raising_a_latched_condition_again_reactivates_the_same_alarm() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = ok(A.condition_cleared(board, "cond-high", at(5))).state
    again = ok(A.raise_alarm(board, "cond-high", "HIGH", "physiological", "x", "1", "2", at(9)))
    assert again.events[0].data["reactivated"] is True
    (alarm,) = again.state.alarms
    assert alarm.condition_active and alarm.raised_at == T0


def test_raising_an_acknowledged_active_condition_keeps_it_silent() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    board = ok(A.acknowledge(board, 1, NURSE, at(1))).state
    board = raised(board, "MEDIUM", at(2), value="70")
    (alarm,) = board.alarms
    assert alarm.acknowledged and alarm.value == "70"
    assert A.sounding(board, at(2)) is None


def test_after_an_alarm_ends_the_same_condition_raises_a_new_one() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0)
    board = ok(A.condition_cleared(board, "cond-medium", at(5))).state
    board = raised(board, "MEDIUM", at(9))
    assert [(a.id, a.active, a.raised_at) for a in board.alarms] == [
        (1, False, T0),
        (2, True, at(9)),
    ]


def test_the_same_condition_at_another_priority_is_another_alarm() -> None:
    board = raised(A.AlarmBoard(), "MEDIUM", T0, condition="spo2")
    board = raised(board, "HIGH", at(1), condition="spo2")
    assert [a.priority for a in board.active] == ["MEDIUM", "HIGH"]
    result = ok(A.condition_cleared(board, "spo2", at(2)))
    assert kinds(result) == ["ended", "latched"]


# --- refusals ------------------------------------------------------------------------------


def test_refusals_change_nothing() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = raised(board, "MEDIUM", at(1))
    board = ok(A.condition_cleared(board, "cond-medium", at(2))).state  # alarm 2 ended
    board = ok(A.acknowledge(board, 1, NURSE, at(3))).state  # alarm 1 acknowledged
    snapshot = board
    later, earlier = at(10), at(2)

    cases = {
        "unknown id": A.acknowledge(board, 99, NURSE, later),
        "ended": A.acknowledge(board, 2, NURSE, later),
        "twice": A.acknowledge(board, 1, OTHER_NURSE, later),
        "back raise": A.raise_alarm(board, "x", "LOW", "technical", "m", "", "", earlier),
        "back clear": A.condition_cleared(board, "cond-high", earlier),
        "back pause": A.pause_audio(board, NURSE, earlier),
        "back tick": A.tick(board, earlier),
        "back escalate": A.escalate_due(board, earlier),
        "naive time": A.tick(board, datetime(2031, 5, 6, 9, 0)),
        "unknown condition": A.condition_cleared(board, "nothing", later),
        "bad priority": A.raise_alarm(board, "x", "URGENT", "technical", "m", "", "", later),  # type: ignore[arg-type]
        "bad kind": A.raise_alarm(board, "x", "LOW", "other", "m", "", "", later),  # type: ignore[arg-type]
        "no condition": A.raise_alarm(board, " ", "LOW", "technical", "m", "", "", later),
        "no message": A.raise_alarm(board, "x", "LOW", "technical", "", "", "", later),
        "zero pause": A.pause_audio(board, NURSE, later, timedelta(0)),
    }
    for name, result in cases.items():
        refusal = refused(result)
        assert refusal.reason, name
    assert "no alarm 99" in refused(cases["unknown id"]).reason
    assert refused(cases["unknown id"]).kind == "unknown"
    assert "ended" in refused(cases["ended"]).reason
    assert f"already acknowledged by user {NURSE}" in refused(cases["twice"]).reason
    assert "never runs back" in refused(cases["back tick"]).reason
    assert board == snapshot and board.last_at == at(3)
    assert board.alarms[0].acknowledged_by == NURSE


def test_a_latched_condition_cannot_clear_twice() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    board = ok(A.condition_cleared(board, "cond-high", at(1))).state
    assert "acknowledged" in refused(A.condition_cleared(board, "cond-high", at(2))).reason


def test_the_same_time_as_the_last_entry_is_accepted() -> None:
    board = raised(A.AlarmBoard(), "HIGH", T0)
    assert kinds(ok(A.acknowledge(board, 1, NURSE, T0))) == ["acknowledged"]


# --- random command sequences ------------------------------------------------------------------

CONDITIONS = st.sampled_from(["sbp", "spo2", "lost-contact"])
PRIORITIES = st.sampled_from(A.PRIORITIES)
USERS = st.sampled_from([NURSE, OTHER_NURSE])
# Milliseconds: mostly forward (the escalation and pause boundaries included), rarely back.
STEPS = st.one_of(
    st.sampled_from([0, 1, 29_999, 30_000, 119_999, 120_000]),
    st.integers(min_value=0, max_value=180_000),
    st.integers(min_value=-5_000, max_value=-1),
)


class AlarmMachine(RuleBasedStateMachine):
    """Keeps its own account of which alarm an audio pause silences, to check `sounding`."""

    def __init__(self) -> None:
        super().__init__()
        self.board = A.AlarmBoard()
        self.now = T0  # the time of the last accepted command
        self.escalated: dict[int, datetime] = {}
        self.silenced_until: dict[int, datetime] = {}
        self.pause: tuple[datetime, int] | None = None  # (until, rank of the highest silenced)
        self.last_at: datetime | None = None

    def _apply(self, result: A.Result, when: datetime) -> A.Accepted | None:
        if isinstance(result, A.Refused):
            assert result.reason and "\n" not in result.reason
            if self.last_at is not None and when < self.last_at:
                assert "never runs back" in result.reason
            return None
        assert self.last_at is None or when >= self.last_at, "accepted a time running back"
        assert result.state.last_at in (when, self.board.last_at)
        self.board = result.state
        if result.events:
            self.last_at = when
        self.now = max(self.now, when)
        return result

    def _expected_sounding(self, now: datetime) -> int:
        ranks = [
            A.RANK[a.priority]
            for a in self.board.alarms
            if a.active
            and not a.acknowledged
            and not (a.id in self.silenced_until and now < self.silenced_until[a.id])
        ]
        return max(ranks, default=0)

    @rule(step=STEPS, condition=CONDITIONS, priority=PRIORITIES, value=st.integers(40, 200))
    def raise_alarm(self, step: int, condition: str, priority: A.Priority, value: int) -> None:
        when = self.now + timedelta(milliseconds=step)
        before = {a.id for a in self.board.alarms}
        result = self._apply(
            A.raise_alarm(
                self.board, condition, priority, "physiological", "m", str(value), "90", when
            ),
            when,
        )
        if result is None:
            return
        for alarm in result.state.alarms:
            if alarm.id in before:
                continue
            assert alarm.raised_at == when
            pause = self.pause
            if pause is not None and when < pause[0] and A.RANK[alarm.priority] <= pause[1]:
                self.silenced_until[alarm.id] = pause[0]

    @rule(step=STEPS, condition=CONDITIONS)
    def clear(self, step: int, condition: str) -> None:
        when = self.now + timedelta(milliseconds=step)
        self._apply(A.condition_cleared(self.board, condition, when), when)

    @rule(step=STEPS, alarm_id=st.integers(0, 12), user=USERS)
    def acknowledge(self, step: int, alarm_id: int, user: int) -> None:
        when = self.now + timedelta(milliseconds=step)
        before = self.board.get(alarm_id)
        result = self._apply(A.acknowledge(self.board, alarm_id, user, when), when)
        if result is None:
            assert (
                before is None
                or not before.active
                or before.acknowledged
                or (self.last_at is not None and when < self.last_at)
            )
            return
        after = result.state.get(alarm_id)
        assert after is not None and after.acknowledged_by == user and after.acknowledged_at == when

    @rule(step=STEPS, user=USERS, seconds=st.sampled_from([120, 120, 30]))
    def pause(self, step: int, user: int, seconds: int) -> None:
        when = self.now + timedelta(milliseconds=step)
        expected = self._expected_sounding(when)
        acked_before = {a.id: a.acknowledged_at for a in self.board.alarms}
        result = self._apply(
            A.pause_audio(self.board, user, when, timedelta(seconds=seconds)), when
        )
        if result is None:
            if self.last_at is None or when >= self.last_at:
                assert expected == 0, "pause refused while something sounds"
            return
        assert expected > 0, "pause accepted while nothing sounds"
        until = when + timedelta(seconds=seconds)
        covered = [a for a in result.state.alarms if a.active and not a.acknowledged]
        for alarm in covered:
            self.silenced_until[alarm.id] = until
        self.pause = (until, max(A.RANK[a.priority] for a in covered))
        # Pausing acknowledges nothing.
        assert {a.id: a.acknowledged_at for a in result.state.alarms} == acked_before

    @rule(step=STEPS)
    def tick(self, step: int) -> None:
        when = self.now + timedelta(milliseconds=step)
        self._apply(A.tick(self.board, when), when)

    @rule(step=STEPS)
    def escalate(self, step: int) -> None:
        when = self.now + timedelta(milliseconds=step)
        result = self._apply(A.escalate_due(self.board, when), when)
        if result is not None:
            assert all(due > when for _, due in A.escalation_deadlines(result.state))

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def high_never_ends_unacknowledged(self) -> None:
        for alarm in self.board.alarms:
            if alarm.priority == "HIGH" and not alarm.active:
                assert alarm.acknowledged_at is not None
                assert alarm.cleared_at is not None
                assert alarm.acknowledged_at <= alarm.cleared_at

    @invariant()
    def sounding_is_the_highest_unsilenced_alarm(self) -> None:
        for now in (self.now, self.now + timedelta(minutes=1), self.now + timedelta(minutes=3)):
            got = A.sounding(self.board, now)
            # Never lower than an active, unacknowledged alarm no pause covers, and exactly it.
            assert (A.RANK[got] if got else 0) == self._expected_sounding(now)

    @invariant()
    def escalated_at_never_changes(self) -> None:
        for alarm in self.board.alarms:
            if alarm.id in self.escalated:
                assert alarm.escalated_at == self.escalated[alarm.id]
            elif alarm.escalated_at is not None:
                delay = self.board.settings.escalation_delay(alarm.priority)
                assert delay is not None and alarm.escalated_at >= alarm.raised_at + delay
                self.escalated[alarm.id] = alarm.escalated_at
            if alarm.escalated_at is not None and alarm.acknowledged_at is not None:
                assert alarm.escalated_at <= alarm.acknowledged_at

    @invariant()
    def time_never_runs_backwards_in_the_record(self) -> None:
        assert self.board.last_at == self.last_at
        for alarm in self.board.alarms:
            for stamp in (alarm.acknowledged_at, alarm.cleared_at, alarm.escalated_at):
                if stamp is not None:
                    assert alarm.raised_at <= stamp
                    assert self.last_at is not None and stamp <= self.last_at

    @invariant()
    def one_active_alarm_per_condition_and_priority(self) -> None:
        keys = [(a.condition, a.priority) for a in self.board.active]
        assert len(keys) == len(set(keys))
        assert [a.id for a in self.board.alarms] == list(range(1, self.board.next_id))


TestAlarmMachine = AlarmMachine.TestCase
TestAlarmMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
