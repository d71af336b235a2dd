"""The pure checks: a scan against the labels on record and the bag due, a wristband's MRN,
the site's policy, and the machine's gates (scans before a pump start that hangs a new bag, a
physician's override, a second clinician's double check)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.labels.checks import IssuedLabel, check_bag, check_wristband, wristband_mrn
from app.labels.code import CodeError, LabelCode
from app.labels.policy import LabelPolicy, drug_names, parse_stability, wristband_pattern
from app.session import machine as M
from tests.session.walk import PHYSICIAN, Walker

NOW = datetime(2031, 5, 6, 8, 0, tzinfo=UTC)
CODE = LabelCode(14, 3, "K7Q2M9XA")
ON_RECORD = IssuedLabel(CODE.text, 14, 3, 1, NOW + timedelta(hours=24), None)


def test_the_bag_due_scans_and_everything_else_is_a_wrong_bag() -> None:
    right = check_bag(CODE, ON_RECORD, 14, 3, 3, NOW)
    assert right.ok and right.bag == 3 and right.message == "bag 3 of 3 of session 14: checked"
    cases = {
        "other bag": (
            check_bag(CODE, ON_RECORD, 14, 2, 3, NOW),
            "scanned bag 3 of 3 of session 14",
        ),
        "other session": (check_bag(CODE, ON_RECORD, 15, 3, 3, NOW), "another patient's"),
        "not printed": (check_bag(CODE, None, 14, 3, 3, NOW), "did not print"),
        "voided": (
            check_bag(CODE, replace(ON_RECORD, voided_at=NOW), 14, 3, 3, NOW),
            "label copy 1, voided by a reprint",
        ),
        "expired": (
            check_bag(CODE, ON_RECORD, 14, 3, 3, NOW + timedelta(hours=24)),
            "expired at 07 May 08:00 UTC",
        ),
    }
    for name, (verdict, words) in cases.items():
        assert not verdict.ok and verdict.condition == "wrong_bag", name
        assert verdict.message.startswith("Wrong bag: scanned "), name
        assert words in verdict.message, name
    late = check_bag(CODE, ON_RECORD, 14, 3, 3, NOW + timedelta(days=2), ZoneInfo("Asia/Tokyo"))
    assert "expired at 07 May 17:00 JST" in late.message  # in the facility's zone


def test_a_wristband_holds_the_mrn_in_the_sites_pattern() -> None:
    assert wristband_mrn(" mrn-0042 ") == "MRN-0042"
    pattern = wristband_pattern(r"PID\|(?P<mrn>\d{6})\|.*")
    assert wristband_mrn("PID|004213|DOE^JANE", pattern) == "004213"
    with pytest.raises(CodeError, match="not a patient wristband"):
        wristband_mrn("SW 0000", pattern)
    with pytest.raises(ValueError, match="names the MRN"):
        wristband_pattern(r"(\d+)")
    with pytest.raises(ValueError, match="does not compile"):
        wristband_pattern(r"(?P<mrn>")
    assert check_wristband("mrn0042", "MRN 0042", "Jane Doe").ok
    wrong = check_wristband("MRN0043", "MRN0042", "Jane Doe")
    assert wrong.condition == "wrong_patient"
    assert wrong.message == "Wrong patient: scanned MRN MRN0043; expected MRN MRN0042 (Jane Doe)"


def test_the_policy_names_high_alert_drugs_as_words_of_the_drug() -> None:
    policy = LabelPolicy()
    assert policy.is_high_alert("Carboplatin AUC 5") and policy.is_high_alert("rituximab")
    assert not policy.is_high_alert("ceftazidime") and not policy.is_high_alert("carbo")
    assert not LabelPolicy(high_alert=drug_names("")).is_high_alert("carboplatin")
    assert parse_stability("Paclitaxel = 27, docetaxel=4") == {
        "paclitaxel": Decimal(27),
        "docetaxel": Decimal(4),
    }
    for bad in ("paclitaxel", "paclitaxel=0", "paclitaxel=x", "=3"):
        with pytest.raises(ValueError):
            parse_stability(bad)


def scanning_walker(double_check: bool = False) -> Walker:
    w = Walker()
    w.state = replace(w.state, scan_required=True, double_check_required=double_check)
    w.make_ready()
    return w


def scan(bag: int | None = None, ok: bool = True) -> M.RecordScan:
    kind = "bag" if bag is not None else "wristband"
    return M.RecordScan(kind, ok, "scanner", "scanned", "expected", bag)


def test_the_start_needs_the_wristband_and_bag_1_and_a_wrong_scan_undoes_a_right_one() -> None:
    w = scanning_walker()
    assert w.refuse(M.Start()).reason == (
        "scan the patient's wristband and the label of bag 1 before the pump starts"
    )
    w.do(scan())
    w.do(scan(1))
    assert w.state.bag_checked == 1
    w.do(scan(2, ok=False))  # recorded; the shell raises the alarm and refuses
    assert w.state.bag_checked is None and w.events[-1].kind == "scan_refused"
    assert "bag 1" in w.refuse(M.Start()).reason
    assert w.refuse(scan(2)).reason == "bag 1 is due, not bag 2"
    w.do(scan(1))
    w.do(M.Start())
    assert w.state.status == "running" and w.state.bag_checked is None
    assert "running" in w.refuse(scan(1)).reason  # no scan between pump starts


def test_only_a_change_of_bag_needs_a_scan_and_a_physician_may_stand_in() -> None:
    w = scanning_walker()
    w.do(scan())
    w.do(scan(1))
    w.do(M.Start())
    for _ in range(3):  # steps 2 to 4 run from bag 1
        w.step_through()
    w.wait(minutes=10)
    w.do(M.RecordVitals(within_limits=True))
    w.until_deadline()
    assert w.state.status == "step_due" and w.state.next_step == 4
    assert w.refuse(M.ConfirmStep()).reason == "scan the label of bag 2 before the pump starts"
    override = M.OverrideScan("bag", "scanner broken")
    assert w.refuse(override).reason == "override-scan is for the physician, not the nurse"
    w.do(override, PHYSICIAN)
    assert [e.kind for e in w.events[-2:]] == ["safety_override", "scan_overridden"]
    w.do(M.ConfirmStep())
    assert w.state.current == 4


def test_a_high_alert_drug_needs_a_second_clinician_at_the_start_bag_changes_and_resumes() -> None:
    w = scanning_walker(double_check=True)
    w.do(scan())
    w.do(scan(1))
    assert "second clinician" in w.refuse(M.Start()).reason
    same = w.refuse(M.Start(cosigner=1))  # the Walker's user is 1
    assert same.kind == "forbidden" and "another clinician" in same.reason
    w.do(M.Start(cosigner=2))
    checked = next(e for e in w.events if e.kind == "double_checked")
    assert checked.data["cosigner"] == 2 and Decimal(checked.data["rate_ml_h"]) == 2
    w.step_through()  # step 2, same bag: no second check needed
    assert w.state.current == 1
    w.wait(minutes=5)
    w.do(M.ReportReaction(("urticaria",)))
    w.wait(minutes=20)
    w.do(M.ResolveReaction(brown_grade=1), PHYSICIAN)
    w.wait(minutes=1)
    w.do(M.RecordVitals(within_limits=True))
    w.do(M.Resume("repeat"), PHYSICIAN)
    assert w.state.double_check_due
    w.wait(minutes=1)
    assert "second clinician" in w.refuse(M.ConfirmStep()).reason  # same bag, after a resume
    w.do(M.ConfirmStep(cosigner=3))
    assert not w.state.double_check_due
