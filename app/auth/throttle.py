"""Sign-in throttling rules. Pure: counts and times in, a decision out; app.auth.service reads
the counts and writes the outcome.

Failures are counted per (user name, client address) pair and per client address. Each pair
has `max_failures` free failures within the window; after that it waits 1 s, then 2 s, 4 s …
after each further failure, never longer than the window. An address has four times as many
free failures across all user names (someone trying one password on many names), then waits
the same way. Failures for a user name from other addresses never count against a pair: five
wrong passwords for "physician" from five places do not stop the physician signing in from a
sixth.

A throttled attempt (refused without looking at the password) is not a failure: it neither
lengthens the wait nor, apart from the first refusal of a throttle, writes an audit entry. The
refusals of one throttle are tallied and reported in one summary entry when it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

FIRST_WAIT = timedelta(seconds=1)
ADDRESS_FAILURE_FACTOR = 4
# The tally key of the per-address throttle, in place of a user name key (a hex digest).
ANY_NAME = "*"

Scope = Literal["user name and address", "address"]


@dataclass(frozen=True)
class Policy:
    max_failures: int  # free failures of one user name from one address within the window
    window: timedelta  # how long a failure counts; also the longest wait

    @property
    def address_max_failures(self) -> int:
        return self.max_failures * ADDRESS_FAILURE_FACTOR


@dataclass(frozen=True)
class Failures:
    """Failures within the window: how many, and when the last one was."""

    count: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True)
class Throttled:
    scope: Scope
    retry_after: timedelta

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds()))


def wait_after(failures: int, free: int, longest: timedelta) -> timedelta:
    """How long to wait after the last of `failures` failures, `free` of them without a wait."""
    if failures < free:
        return timedelta(0)
    doublings = failures - free
    if doublings >= 40:  # far beyond any window; avoids huge numbers
        return longest
    return min(FIRST_WAIT * 2**doublings, longest)


def decide(pair: Failures, address: Failures, now: datetime, policy: Policy) -> Throttled | None:
    """Whether an attempt now must be refused unheard, and for how long. The address throttle
    names the refusal when both apply; the wait is the longer of the two."""
    refusals: list[tuple[Scope, timedelta]] = []
    checks: tuple[tuple[Scope, Failures, int], ...] = (
        ("address", address, policy.address_max_failures),
        ("user name and address", pair, policy.max_failures),
    )
    for scope, failures, free in checks:
        if failures.last_at is None:
            continue
        until = failures.last_at + wait_after(failures.count, free, policy.window)
        if until > now:
            refusals.append((scope, until - now))
    if not refusals:
        return None
    return Throttled(refusals[0][0], max(wait for _, wait in refusals))


@dataclass(frozen=True)
class Tally:
    """The refusals of one open throttle of one key: the first was audited."""

    first_at: datetime
    last_at: datetime
    refused: int


TallyStep = Literal["open", "count", "reopen"]


def on_refusal(tally: Tally | None, now: datetime, policy: Policy) -> TallyStep:
    """What a refusal does to its key's tally: open one (audit this refusal), count it, or
    report a tally that outlived its throttle and open a new one."""
    if tally is None:
        return "open"
    if is_stale(tally, now, policy):
        return "reopen"
    return "count"


def is_stale(tally: Tally, now: datetime, policy: Policy) -> bool:
    """A throttle refuses for at most the window after a failure, and refusals add no failure:
    a tally with no refusal for longer than that belongs to a throttle that has ended."""
    return now - tally.last_at > policy.window


def needs_summary(tally: Tally) -> bool:
    """The first refusal has its own audit entry; a summary is worth writing for the rest."""
    return tally.refused > 1
