"""Alarms: logic.py decides, purely, what alarms a session has, what sounds, what is shown and
when an alarm escalates (IEC 60601-1-8 as product-spec §4 states it)."""

from app.alarms.logic import (
    AUDIO_PAUSE,
    AUDIO_PULSES,
    VISUAL,
    Accepted,
    Alarm,
    AlarmBoard,
    AlarmSettings,
    AudioPause,
    Event,
    Refused,
    acknowledge,
    condition_cleared,
    escalate_due,
    escalation_deadlines,
    pause_audio,
    raise_alarm,
    sounding,
    tick,
)

__all__ = [
    "AUDIO_PAUSE",
    "AUDIO_PULSES",
    "VISUAL",
    "Accepted",
    "Alarm",
    "AlarmBoard",
    "AlarmSettings",
    "AudioPause",
    "Event",
    "Refused",
    "acknowledge",
    "condition_cleared",
    "escalate_due",
    "escalation_deadlines",
    "pause_audio",
    "raise_alarm",
    "sounding",
    "tick",
]
