"""What a pure decision returns, for every core that decides (the session machine, the alarm
board): accepted, with the new state and the events to record, or refused, with a one-line
reason, the state untouched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

# forbidden: wrong role; state: not now; invalid: bad input; stale: a timer that was replaced;
# unknown: no such thing (an alarm id).
RefusalKind = Literal["forbidden", "state", "invalid", "stale", "unknown"]

S = TypeVar("S")


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted(Generic[S]):
    state: S
    events: tuple[Event, ...]
    # The session's step timer must be replaced (a new generation) or dropped; the shell keeps
    # the alarm board's escalation timers from the board itself.
    timer_changed: bool = False


@dataclass(frozen=True)
class Refused:
    reason: str
    kind: RefusalKind = "state"


Result = Accepted[S] | Refused
