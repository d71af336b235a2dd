"""The pure chain module: canonical JSON, entry hashes and the chain walk."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest

from app.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainWalker,
    canonical_json,
    entry_hash,
    format_datetime,
    secret_keys,
)

# --- canonical JSON --------------------------------------------------------------------------


def test_key_order_does_not_matter() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": True}
    other = {"c": True, "a": {"x": None, "y": [1, 2]}, "b": 1}

    assert canonical_json(one) == canonical_json(other)
    assert canonical_json(one) == '{"a":{"x":null,"y":[1,2]},"b":1,"c":true}'


def test_non_ascii_text_is_kept_as_is() -> None:
    assert canonical_json({"note": "Überwachung – 1×"}) == '{"note":"Überwachung – 1×"}'
    assert canonical_json({"q": 'a "b"\n'}) == '{"q":"a \\"b\\"\\n"}'


def test_datetimes_are_utc_with_microseconds_and_z() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))

    assert canonical_json(datetime(2024, 3, 1, 10, 0, tzinfo=kolkata)) == (
        '"2024-03-01T04:30:00.000000Z"'
    )
    assert format_datetime(datetime(2024, 3, 1, 4, 30, 0, 7, tzinfo=UTC)) == (
        "2024-03-01T04:30:00.000007Z"
    )
    # The same instant in two zones has one spelling.
    assert canonical_json({"at": datetime(2024, 3, 1, 4, 30, tzinfo=UTC)}) == canonical_json(
        {"at": datetime(2024, 3, 1, 10, 0, tzinfo=kolkata)}
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        canonical_json({"at": datetime(2024, 3, 1, 10, 0)})


def test_decimals_are_strings_that_keep_their_precision() -> None:
    assert canonical_json({"dose": Decimal("2.50")}) == '{"dose":"2.50"}'
    assert canonical_json([Decimal("1E-7")]) == '["1E-7"]'


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("Infinity")],
)
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="no JSON form"):
        canonical_json({"x": [value]})


def test_other_plain_values() -> None:
    class Role(str, Enum):  # noqa: UP042  (the mixin spells str() differently from StrEnum)
        NURSE = "nurse"

    assert canonical_json(
        {
            "day": date(2024, 3, 1),
            "id": UUID("12345678-1234-5678-1234-567812345678"),
            "pair": (1, "two"),
            "role": Role.NURSE,
            "rate": 2.5,
            "big": 10**30,
        }
    ) == (
        '{"big":1000000000000000000000000000000,"day":"2024-03-01",'
        '"id":"12345678-1234-5678-1234-567812345678","pair":[1,"two"],"rate":2.5,"role":"nurse"}'
    )


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), {1: "int key"}, "\ud800"])
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": value})


def test_secret_keys_are_found_at_any_depth() -> None:
    state = {
        "user": {"name": "a", "Password_Hash": "x"},
        "items": [{"ok": 1}, {"api_TOKEN": "y"}],
        "client_secret": "z",
        "fine": "password in a value is not a key",
    }

    assert secret_keys(state) == ["$.user.Password_Hash", "$.items[1].api_TOKEN", "$.client_secret"]
    assert secret_keys({"role": "nurse", "steps": [1, 2]}) == []


# --- entry hashes ----------------------------------------------------------------------------


def _fields(seq: int, prev_hash: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "seq": seq,
        "occurred_at": datetime(2026, 11, 21, 9, 0, seq, tzinfo=UTC),
        "actor_id": 7,
        "actor_username": "nurse1",
        "actor_role": "nurse",
        "client_addr": "10.0.0.5",
        "user_agent": None,
        "action": "session.step_started",
        "entity": "session",
        "entity_id": "12",
        "before_json": None,
        "after_json": canonical_json({"step": seq}),
        "reason": None,
        "request_id": None,
        "prev_hash": prev_hash,
    }
    fields.update(changes)
    return fields


def _chain(length: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        fields = _fields(seq, prev)
        fields["hash"] = prev = entry_hash(fields)
        entries.append(fields)
    return entries


def test_entry_hash_is_sha256_of_prev_hash_and_canonical_fields() -> None:
    # Spelled out by hand, so that a change of the canonical form cannot go unnoticed.
    expected_json = (
        '{"action":"session.step_started","actor_id":7,"actor_role":"nurse",'
        '"actor_username":"nurse1","after_json":"{\\"step\\":1}","before_json":null,'
        '"client_addr":"10.0.0.5","entity":"session","entity_id":"12",'
        '"occurred_at":"2026-11-21T09:00:01.000000Z","prev_hash":"' + GENESIS_HASH + '",'
        '"reason":null,"request_id":null,"seq":1,"user_agent":null}'
    )
    expected = hashlib.sha256((GENESIS_HASH + expected_json).encode("utf-8")).hexdigest()

    assert entry_hash(_fields(1, GENESIS_HASH)) == expected
    assert entry_hash({**_fields(1, GENESIS_HASH), "hash": "ignored"}) == expected


@pytest.mark.parametrize("name", [name for name in HASHED_FIELDS if name != "seq"])
def test_every_field_is_covered_by_the_hash(name: str) -> None:
    fields = _fields(1, GENESIS_HASH)
    changed = dict(fields)
    changed[name] = "1" * 64 if name == "prev_hash" else "changed"

    assert entry_hash(changed) != entry_hash(fields)


def test_entry_hash_needs_every_field() -> None:
    fields = _fields(1, GENESIS_HASH)
    del fields["reason"]
    with pytest.raises(ValueError, match="reason"):
        entry_hash(fields)


# --- the chain walk --------------------------------------------------------------------------


def _walk(entries: list[dict[str, Any]], head: tuple[int, str] | None = None):
    walker = ChainWalker()
    walker.feed_all(entries)
    if head is None:
        head = (entries[-1]["seq"], entries[-1]["hash"]) if entries else (0, GENESIS_HASH)
    return walker.finish(*head)


def test_an_intact_chain_verifies() -> None:
    report = _walk(_chain(5))

    assert report.ok
    assert (report.entries, report.last_seq, report.first_bad_seq, report.reason) == (
        5,
        5,
        None,
        None,
    )


def test_an_empty_chain_verifies() -> None:
    report = _walk([])

    assert report.ok
    assert (report.entries, report.last_seq) == (0, 0)


def test_changed_contents_are_found() -> None:
    entries = _chain(5)
    entries[2]["reason"] = "edited afterwards"

    report = _walk(entries)

    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.reason == "seq 3: hash does not match its contents"
    assert (report.entries, report.last_seq) == (2, 2)


def test_a_rehashed_entry_breaks_the_link_to_the_next() -> None:
    entries = _chain(5)
    entries[2]["after_json"] = canonical_json({"step": 99})
    entries[2]["hash"] = entry_hash(entries[2])

    report = _walk(entries)

    assert report.first_bad_seq == 4
    assert report.reason == "seq 4: prev_hash does not link to seq 3"


def test_a_wrong_genesis_link_is_found() -> None:
    entries = _chain(2)
    entries[0]["prev_hash"] = "1" * 64
    entries[0]["hash"] = entry_hash(entries[0])

    report = _walk(entries)

    assert report.first_bad_seq == 1
    assert report.reason == "seq 1: prev_hash is not the genesis value"


def test_a_gap_is_found() -> None:
    entries = _chain(6)
    del entries[2:4]

    report = _walk(entries)

    assert report.first_bad_seq == 3
    assert report.reason == "seq 3: entry missing (and up to seq 4)"


def test_a_duplicate_is_found() -> None:
    entries = _chain(3)
    entries.insert(2, dict(entries[1]))

    report = _walk(entries, head=(3, entries[-1]["hash"]))

    assert report.first_bad_seq == 2
    assert report.problem == "duplicate or out of order (follows seq 2)"


def test_missing_last_entries_are_found_through_the_head() -> None:
    entries = _chain(5)

    report = _walk(entries[:3], head=(5, entries[4]["hash"]))

    assert report.first_bad_seq == 4
    assert report.reason == "seq 4: entry missing (the chain head is at seq 5)"


def test_entries_beyond_the_head_are_found() -> None:
    entries = _chain(5)

    report = _walk(entries, head=(4, entries[3]["hash"]))

    assert report.first_bad_seq == 5
    assert report.problem == "not covered by the chain head (at seq 4)"


def test_a_head_with_another_hash_is_found() -> None:
    report = _walk(_chain(3), head=(3, "f" * 64))

    assert report.first_bad_seq == 3
    assert report.reason == "seq 3: hash does not match the chain head"


def test_the_walk_stops_at_the_first_break() -> None:
    entries = _chain(6)
    entries[1]["reason"] = "first"
    entries[4]["reason"] = "second"
    walker = ChainWalker()

    assert walker.feed(entries[0])
    assert not walker.feed(entries[1])
    assert not walker.feed_all(entries[2:])
    assert walker.finish(6, entries[-1]["hash"]).first_bad_seq == 2
