"""The audit hash chain, without I/O: canonical JSON, entry hashes and the chain walk.

Every entry is hashed as ``sha256_hex(prev_hash + canonical_json(fields))``, where ``fields`` are
the entry's stored columns except ``hash``. The canonical form has one spelling per value, so
anyone holding the rows can recompute the hashes with a few lines of code in any language:

* objects with their keys sorted by code point, separators ``,`` and ``:``, UTF-8, no escaping
  of non-ASCII characters;
* datetimes as ISO 8601 in UTC with microseconds and ``Z`` (``2026-11-21T10:00:00.000000Z``);
  naive datetimes are refused, because their instant is a guess;
* ``Decimal`` as a string (``"2.50"`` keeps the precision it was given), floats only when finite;
* dates as ``YYYY-MM-DD``, UUIDs as their canonical string, tuples as lists.

Anything else (sets, bytes, arbitrary objects, non-string keys) is refused with ``ValueError``
rather than given a spelling that could change between library versions.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64

# The stored columns of an entry that its hash covers, i.e. every column except ``hash``.
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_role",
    "client_addr",
    "user_agent",
    "action",
    "entity",
    "entity_id",
    "before_json",
    "after_json",
    "reason",
    "request_id",
    "prev_hash",
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SECRET_WORDS = ("password", "secret", "token")


# --- canonical JSON --------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``; naive datetimes are refused."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any, path: str) -> Any:
    """``value`` rebuilt from JSON-native types only, each with its one canonical spelling."""
    # Order matters: bool is an int, datetime is a date, and str/int subclasses (enums) are
    # turned into the plain type so that their spelling does not depend on their class.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} has no JSON form")
        return float(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{path}: Decimal {value} has no JSON form")
        return str(value)
    if isinstance(value, datetime):
        try:
            return format_datetime(value)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} is not a string")
            plain[str.__str__(key)] = _plain(item, f"{path}.{key}")
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{path}: {type(value).__name__} values have no canonical JSON form")


def canonical_json(value: Any) -> str:
    """The one canonical JSON text of ``value`` (see the module docstring)."""
    text = json.dumps(
        _plain(value, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains a lone surrogate, which UTF-8 cannot encode") from None
    return text


def secret_keys(value: Any, path: str = "$") -> list[str]:
    """Paths of every mapping key, at any depth, that looks like it holds a secret."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}"
            if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
                found.append(here)
            found.extend(secret_keys(item, here))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(secret_keys(item, f"{path}[{index}]"))
    return found


# --- entry hashes ----------------------------------------------------------------------------


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(fields: Mapping[str, Any]) -> str:
    """The hash of an entry whose stored columns are ``fields`` (``hash`` itself is ignored)."""
    missing = [name for name in HASHED_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"entry lacks the field(s) {', '.join(missing)}")
    covered = {name: fields[name] for name in HASHED_FIELDS}
    prev_hash = covered["prev_hash"]
    if not isinstance(prev_hash, str):
        raise ValueError("prev_hash must be a string")
    return sha256_hex(prev_hash + canonical_json(covered))


def is_hash(value: object) -> bool:
    """True for 64 lower-case hexadecimal digits."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


# --- the chain walk --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a chain verification.

    ``entries`` and ``last_seq`` count the intact prefix of the chain (all of it when ``ok``;
    ``last_seq`` is 0 for an empty chain). When broken, ``first_bad_seq`` is the first entry
    that is wrong or missing (None when the break is not one entry, e.g. no chain head) and
    ``reason`` says what is wrong, starting with ``seq N:`` when there is such an entry;
    ``problem`` is the same text without that prefix.
    """

    ok: bool
    entries: int
    last_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None
    problem: str | None = None


class ChainWalker:
    """Checks entries fed in ``seq`` order, remembering the first break.

    Each entry must follow its predecessor without a gap, link to its hash through
    ``prev_hash`` (the first links to :data:`GENESIS_HASH`), and carry the hash of its own
    contents. :meth:`finish` compares the end of the walk with the chain head.
    """

    def __init__(self) -> None:
        self.entries = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        self._broken: ChainReport | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def _break(self, seq: int | None, problem: str) -> bool:
        self._broken = broken_report(seq, problem, entries=self.entries, last_seq=self.last_seq)
        return False

    def feed(self, entry: Mapping[str, Any]) -> bool:
        """Check the next entry; False once the chain is broken (further entries are ignored)."""
        if self._broken is not None:
            return False
        seq = entry["seq"]
        expected = self.last_seq + 1
        if not isinstance(seq, int) or isinstance(seq, bool):
            return self._break(expected, f"entry has a non-integer seq {seq!r}")
        if seq < expected:
            return self._break(seq, f"duplicate or out of order (follows seq {self.last_seq})")
        if seq > expected:
            more = "" if seq == expected + 1 else f" (and up to seq {seq - 1})"
            return self._break(expected, f"entry missing{more}")
        try:
            recomputed = entry_hash(entry)
        except ValueError as exc:
            return self._break(seq, f"contents cannot be hashed: {exc}")
        if not is_hash(entry.get("hash")) or recomputed != entry["hash"]:
            return self._break(seq, "hash does not match its contents")
        if entry["prev_hash"] != self.last_hash:
            if seq == 1:
                return self._break(seq, "prev_hash is not the genesis value")
            return self._break(seq, f"prev_hash does not link to seq {seq - 1}")
        self.entries += 1
        self.last_seq = seq
        self.last_hash = entry["hash"]
        return True

    def feed_all(self, entries: Iterable[Mapping[Any, Any]]) -> bool:
        return all(self.feed(entry) for entry in entries)  # stops at the first break

    def finish(self, head_seq: int, head_hash: str) -> ChainReport:
        """The report, after comparing the last entry walked with the chain head."""
        if self._broken is not None:
            return self._broken
        if head_seq > self.last_seq:
            self._break(self.last_seq + 1, f"entry missing (the chain head is at seq {head_seq})")
        elif head_seq < self.last_seq:
            self._break(head_seq + 1, f"not covered by the chain head (at seq {head_seq})")
        elif head_hash != self.last_hash:
            if head_seq == 0:
                self._break(None, "the chain head of an empty chain is not the genesis value")
            else:
                self._break(head_seq, "hash does not match the chain head")
        if self._broken is not None:
            return self._broken
        return ChainReport(ok=True, entries=self.entries, last_seq=self.last_seq)


def broken_report(seq: int | None, problem: str, *, entries: int, last_seq: int) -> ChainReport:
    """A report of a break found outside the walk itself (e.g. a missing chain head)."""
    return ChainReport(
        ok=False,
        entries=entries,
        last_seq=last_seq,
        first_bad_seq=seq,
        reason=problem if seq is None else f"seq {seq}: {problem}",
        problem=problem,
    )
