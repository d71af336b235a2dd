"""The bag and patient checks in words (app.review.check_words): each kind, how a code was
read, and the two clinicians of a double check by name. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from app.review.check_words import CHECK_EVENTS, check_records, check_words, user_ids
from app.review.report_model import EventRecord

NAMES = {7: "Ana Ruiz (ana)", 9: "Ben Ode (ben)"}


def name(user_id: int | None) -> str:
    return NAMES.get(user_id, f"user {user_id}") if user_id is not None else "someone"


def test_each_check_in_words() -> None:
    assert check_words("labels_printed", {"bags": [1]}, name) == (
        "Labels printed",
        "label of bag 1",
    )
    assert check_words("labels_printed", {"bags": [1, 2, 3]}, name) == (
        "Labels printed",
        "labels of bags 1, 2 and 3",
    )
    scanned = {"kind": "bag", "scanned": "bag 2 of 3 of session 4", "expected": "bag 2"}
    assert check_words("scan_checked", scanned | {"method": "scanner"}, name) == (
        "Bag label checked",
        "bag 2 of 3 of session 4 (scanned)",
    )
    typed = check_words("scan_checked", scanned | {"method": "manual"}, name)
    assert typed is not None and "typed by hand" in typed[1]
    band = {"kind": "wristband", "scanned": "MRN X1", "expected": "MRN X2 (Jane Doe)"}
    assert check_words("scan_refused", band | {"method": "camera"}, name) == (
        "Wrong patient refused",
        "MRN X1 (read by the tablet's camera); expected MRN X2 (Jane Doe)",
    )
    assert check_words("scan_overridden", {"kind": "bag", "reason": "torn label"}, name) == (
        "Bag label scan overridden",
        "went on without the scan. Reason: torn label",
    )
    double = {"step": 0, "solution": 1, "rate_ml_h": "2.500", "by": 7, "cosigner": 9}
    assert check_words("double_checked", double, name) == (
        "Double check",
        "step 1, bag 1, 2.5 mL/h: set by Ana Ruiz (ana), checked and co-signed by Ben Ode (ben)",
    )
    assert user_ids("double_checked", double) == {7, 9}
    assert user_ids("scan_checked", scanned) == set()
    assert check_words("started", {}, name) is None
    assert len(CHECK_EVENTS) == 6


def test_check_records_keep_the_order_and_mark_refusals() -> None:
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    refused = {"kind": "bag", "bag": 2, "method": "scanner"}
    double = {"step": 0, "solution": 1, "by": 7, "cosigner": 9}
    events = [
        EventRecord(1, at, "started", {}, 7, "nurse"),
        EventRecord(2, at, "scan_refused", refused, 7, "nurse"),
        EventRecord(3, at, "double_checked", double, 7, "nurse"),
    ]
    records = check_records(((e, e.data) for e in events), name)
    assert [r.kind for r in records] == ["scan_refused", "double_checked"]
    assert records[0].refused and records[0].bag == 2 and records[0].who == "Ana Ruiz (ana)"
    assert records[1].step == 0 and records[1].bag == 1 and not records[1].refused
    assert records[1].text.startswith("Double check: step 1, bag 1: set by Ana Ruiz")
