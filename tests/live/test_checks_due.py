"""What the bedside's checks panel says is due before the pump: the wristband first, then the
label of the bag the coming start hangs, and the second clinician's signature."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.live.present import checks_due
from app.session.view import BedsideChecks


def view(status: str, **checks: Any) -> Any:
    return SimpleNamespace(status=status, checks=BedsideChecks(**checks))


def test_at_the_start_the_wristband_comes_first_then_the_first_bag() -> None:
    due = checks_due(view("ready", scan_required=True, wristband_due=True, bag_due=1))
    assert due.shown and due.scan_kind == "wristband" and due.bag == 1
    assert due.prompt == "Scan the patient's wristband"
    assert [(i.text, i.done) for i in due.items] == [
        ("Scan the patient's wristband", False),
        ("Scan the label of bag 1", False),
    ]
    due = checks_due(view("ready", scan_required=True, bag_due=1))
    assert due.scan_kind == "bag" and due.prompt == "Scan the label of bag 1"
    assert due.items[0].done and due.items[0].text == "Patient's wristband checked"


def test_a_scanned_bag_leaves_only_the_double_check_and_then_nothing() -> None:
    scanned = {"scan_required": True, "bag_due": 3, "bag_checked": 3}
    due = checks_due(view("step_due", **scanned, double_check_required=True, double_check_due=True))
    assert due.shown and due.scan_kind == "" and due.double_check
    assert [i.done for i in due.items] == [True, False]
    assert not checks_due(view("step_due", **scanned)).shown


def test_nothing_shows_while_running_or_when_the_site_does_not_scan() -> None:
    assert not checks_due(view("running", scan_required=True, bag_due=None)).shown
    assert not checks_due(view("ready", scan_required=False, bag_due=1)).shown
    assert checks_due(view("ready", double_check_required=True, double_check_due=True)).shown
