"""Snapshots that keep only what changed. Pure.

A session's snapshot is three JSON texts: its state, its alarm board and its threshold
overrides. A full snapshot (a checkpoint) keeps them as they are; a delta keeps, for each text,
how the previous snapshot's becomes this one's, so a change that adds one reading to a long
session stores that reading, not the whole session again.

The diff works on the parsed JSON values: a dict keeps its changed keys (and names the removed
ones), a list keeps the changes of the elements both sides have, then either drops the rest or
appends the new tail (a list that only grew stores only what was appended), anything else is
replaced. Types are compared strictly (1, 1.0 and true are three different values), so the
rebuilt value is exactly the one diffed.

Stored forms (JSON; fixed, since stored rows must keep rebuilding):
    ["=", value]                         replace
    ["d", {key: delta}, [removed keys]]  patch a dict
    ["l", keep, {index: delta}, tail]    keep the first `keep` elements (patched), then `tail`
A part's delta text is "null" when the part did not change, ["t", text] when the new text is
not in the canonical form the rebuild writes (sorted keys, no spaces), so it is kept verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A full snapshot at least once every this many events: a replay applies at most the deltas
# written since, whatever the session's length.
CHECKPOINT_EVERY = 32

FULL = "full"
DELTA = "delta"


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, types included (Python holds 1 == 1.0 == True; JSON does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # -0.0 is not 0.0, and nan is itself
    return bool(a == b)


def diff(a: Any, b: Any) -> list[Any] | None:
    """How `a` becomes `b`; None when they are the same."""
    if same(a, b):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        changed: dict[str, Any] = {}
        for key, value in b.items():
            if key not in a:
                changed[key] = ["=", value]
            else:
                inner = diff(a[key], value)
                if inner is not None:
                    changed[key] = inner
        return ["d", changed, [key for key in a if key not in b]]
    if isinstance(a, list) and isinstance(b, list):
        keep = min(len(a), len(b))
        patches = {}
        for index in range(keep):
            inner = diff(a[index], b[index])
            if inner is not None:
                patches[str(index)] = inner
        if len(patches) * 2 > keep:  # mostly different: the new list is shorter to keep
            return ["=", b]
        return ["l", keep, patches, b[keep:]]
    return ["=", b]


def apply(a: Any, delta: list[Any] | None) -> Any:
    """`a` changed by `delta` (from `diff`); `a` itself is left as it was."""
    if delta is None:
        return a
    tag = delta[0]
    if tag == "=":
        return delta[1]
    if tag == "d":
        _, changed, removed = delta
        gone = set(removed)
        out = {k: v for k, v in a.items() if k not in gone and k not in changed}
        for key, inner in changed.items():
            out[key] = apply(a.get(key), inner)
        return out
    if tag == "l":
        _, keep, patches, tail = delta
        kept = [apply(a[i], patches.get(str(i))) for i in range(keep)]
        return kept + list(tail)
    raise ValueError(f"unknown delta {tag!r}")


def canonical(value: Any) -> str:
    """The text a rebuilt part is written as: the form app.session.codec stores."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def diff_text(before: str, after: str) -> str:
    """One part's delta as stored text."""
    if before == after:
        return "null"
    new = json.loads(after)
    if canonical(new) != after:
        return json.dumps(["t", after])
    return canonical(diff(json.loads(before), new))


def apply_text(before: str, delta: str) -> str:
    """One part rebuilt from the previous snapshot's text and its stored delta."""
    change = json.loads(delta)
    if change is None:
        return before
    if change[0] == "t":
        return str(change[1])
    return canonical(apply(json.loads(before), change))


@dataclass(frozen=True)
class Parts:
    """What a snapshot keeps: the three texts of the session row after a change."""

    state: str
    alarms: str
    thresholds: str


def diff_parts(before: Parts, after: Parts) -> Parts:
    return Parts(
        diff_text(before.state, after.state),
        diff_text(before.alarms, after.alarms),
        diff_text(before.thresholds, after.thresholds),
    )


def apply_parts(before: Parts, delta: Parts) -> Parts:
    return Parts(
        apply_text(before.state, delta.state),
        apply_text(before.alarms, delta.alarms),
        apply_text(before.thresholds, delta.thresholds),
    )


def checkpoint_due(base_seq: int | None, seq: int) -> bool:
    """Whether the snapshot at `seq` is kept whole: without a base (the first, or the row
    changed since its last snapshot), or when the events since the base cross a multiple of
    CHECKPOINT_EVERY."""
    return base_seq is None or base_seq // CHECKPOINT_EVERY != seq // CHECKPOINT_EVERY


@dataclass(frozen=True)
class Stored:
    """A snapshot row as stored: `parts` whole for a full one, deltas for a delta."""

    seq: int
    kind: str
    base_seq: int | None
    parts: Parts


def rebuild(rows: Iterable[Stored]) -> list[tuple[int, Parts]]:
    """The whole parts of each snapshot, from rows in seq order that begin with a full one."""
    out: list[tuple[int, Parts]] = []
    for row in rows:
        if row.kind == FULL:
            out.append((row.seq, row.parts))
            continue
        if not out or out[-1][0] != row.base_seq:
            raise ValueError(f"snapshot {row.seq}: its base {row.base_seq} is not before it")
        out.append((row.seq, apply_parts(out[-1][1], row.parts)))
    return out
