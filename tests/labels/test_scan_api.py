"""Right bag, right patient, over real HTTP on a real database: the labels printed at the
bags' verification, the scans a start and a bag change need, a wrong bag refused with a HIGH
alarm, a voided or foreign label refused, a physician's override, and the double check of a
high-alert drug by a second clinician."""

from __future__ import annotations

import json
from datetime import datetime

from app.labels.code import LabelCode, parse
from tests.labels.conftest import HIGH_ALERT, Scanning, made_ready
from tests.session.conftest import SessionServer, wait_for
from tests.support import Account, SignedInClient


def run_to_due(b: Scanning) -> dict:
    """Vitals, the clock to the step's deadline, and the step due."""
    b.server.advance(minutes=5)
    b.vitals()
    view = b.get()
    gap = datetime.fromisoformat(view["deadline"]) - b.server.clock.now()
    b.server.clock.advance(gap)
    return wait_for(b.get, lambda v: v["status"] == "step_due")


def test_labels_then_scans_gate_the_start_and_each_new_bag(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    labels = b.labels()
    assert sorted(labels) == [1, 2, 3] and {lab["copy"] for lab in labels.values()} == {1}
    view = b.get()
    assert view["checks"] == {
        "scan_required": True,
        "wristband_due": True,
        "bag_due": 1,
        "bag_checked": None,
        "double_check_required": False,
        "double_check_due": False,
    }
    refused = b.post("nurse", "start", expect=409)
    assert "wristband" in refused["detail"] and "bag 1" in refused["detail"]

    b.scan("wristband", b.mrn.lower())  # MRNs compare without case
    view = b.scan("bag", labels[1]["printed"], method="manual")
    assert view["checks"]["bag_checked"] == 1 and not view["checks"]["wristband_due"]
    b.post("nurse", "start")

    for _ in range(3):  # steps 2-4 stay on bag 1: no scan
        run_to_due(b)
        b.server.advance(minutes=1)
        assert b.get()["checks"]["bag_due"] is None
        b.post("nurse", "confirm-step")
    view = run_to_due(b)  # step 5 hangs bag 2
    assert view["checks"]["bag_due"] == 2
    refused = b.post("nurse", "confirm-step", expect=409)
    assert "bag 2" in refused["detail"]
    b.scan("bag", labels[2]["code"], method="camera")
    view = b.post("nurse", "confirm-step")
    assert view["current_step"] == 4 and view["segments"][-1]["solution"] == 2


def test_a_wrong_bag_is_refused_with_a_high_alarm_naming_both_bags(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    labels = b.labels()
    b.scan("wristband", b.mrn)
    wrong = b.scan("bag", labels[2]["code"], expect=409)  # bag 1 is due
    assert wrong["detail"] == (
        f"Wrong bag: scanned bag 2 of 3 of session {b.sid}; expected bag 1 of 3 of session {b.sid}"
    )
    view = b.get()
    alarm = next(a for a in view["alarms"]["items"] if a["condition"] == "wrong_bag")
    assert alarm["priority"] == "HIGH" and alarm["value"] == f"bag 2 of 3 of session {b.sid}"
    assert view["checks"]["bag_checked"] is None
    b.post("nurse", "start", expect=409)  # still no start

    # A code with one character changed is unreadable, not a wrong bag: 422, nothing written
    code = labels[1]["code"]
    slip = code[:5] + ("7" if code[5] != "7" else "8") + code[6:]
    before = b.get()["version"]
    answer = ward["nurse"].post(
        f"/api/v1/sessions/{b.sid}/scans", json={"kind": "bag", "code": slip}
    )
    assert answer.status_code == 422 and "check character" in answer.json()["detail"]
    assert b.get()["version"] == before

    b.scan("bag", code)
    b.post("nurse", "start")


def test_a_voided_label_and_another_sessions_label_are_refused(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    other = made_ready(scanning_server, ward)
    old = b.labels()[1]
    b.post("pharmacist", "bags/1/labels")  # a reprint voids copy 1
    new = b.labels()[1]
    assert new["copy"] == 2 and new["code"] != old["code"]
    b.scan("wristband", b.mrn)
    refused = b.scan("bag", old["code"], expect=409)
    assert "voided by a reprint" in refused["detail"]
    refused = b.scan("bag", other.labels()[1]["code"], expect=409)
    assert "another patient's session" in refused["detail"]
    forged = LabelCode(b.sid, 1, "AAAAAAAA").text
    refused = b.scan("bag", forged, expect=409)
    assert "did not print" in refused["detail"]
    b.scan("bag", new["code"])
    b.post("nurse", "start")


def test_an_expired_label_is_refused(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    label = b.labels()[1]
    b.scan("wristband", b.mrn)
    for hours in (12, 12):  # a prepared bag keeps 24 h by default
        scanning_server.advance(hours=hours)
        b.get()  # the nurse's sign-in stays in use
    scanning_server.advance(minutes=1)
    refused = b.scan("bag", label["code"], expect=409)
    assert "expired at" in refused["detail"] and refused["detail"].startswith("Wrong bag")


def test_a_wrong_patient_is_refused_and_a_physician_may_stand_in_for_a_scan(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    refused = b.scan("wristband", "MRN-SOMEONE-ELSE", expect=409)
    assert refused["detail"].startswith("Wrong patient: scanned MRN MRN-SOMEONE-ELSE")
    assert any(
        a["condition"] == "wrong_patient" and a["priority"] == "HIGH"
        for a in b.get()["alarms"]["items"]
    )
    b.post("nurse", "scans/override", {"kind": "wristband", "reason": "scanner broken"}, 403)
    b.post("physician", "scans/override", {"kind": "wristband", "reason": "scanner broken"})
    b.post("physician", "scans/override", {"kind": "bag", "reason": "scanner broken"})
    view = b.post("nurse", "start")
    assert view["status"] == "running"


def test_the_double_check_of_a_high_alert_drug_needs_another_clinician(
    scanning_server: SessionServer,
    ward: dict[str, SignedInClient],
    accounts: dict[str, Account],
    second_nurse: Account,
) -> None:
    b = made_ready(scanning_server, ward, drug=HIGH_ALERT)
    assert b.get()["checks"]["double_check_due"] is True
    b.scan("wristband", b.mrn)
    b.scan("bag", b.labels()[1]["code"])
    refused = b.post("nurse", "start", expect=409)
    assert "second clinician" in refused["detail"]
    me = accounts["nurse"]
    same = {"cosigner_username": me.username, "cosigner_password": me.password}
    refused = b.post("nurse", "start", same, expect=403)
    assert "another clinician" in refused["detail"]
    wrong = {"cosigner_username": second_nurse.username, "cosigner_password": "not it"}
    b.post("nurse", "start", wrong, expect=403)
    pharmacist = accounts["pharmacist"]
    not_clinician = {
        "cosigner_username": pharmacist.username,
        "cosigner_password": pharmacist.password,
    }
    b.post("nurse", "start", not_clinician, expect=403)
    cosigned = {
        "cosigner_username": second_nurse.username,
        "cosigner_password": second_nurse.password,
    }
    view = b.post("nurse", "start", cosigned)
    assert view["status"] == "running" and view["checks"]["double_check_due"] is False
    audit = ward["auditor"].get("/audit/export.jsonl")
    assert audit.status_code == 200, audit.text
    entries = [json.loads(line) for line in audit.text.splitlines() if line.strip()]
    # the audit log is the whole database's: this session's entries
    checked = [
        e
        for e in entries
        if e["action"] == "session.double_checked" and e["entity_id"] == str(b.sid)
    ]
    confirmed = [
        e
        for e in entries
        if e["action"] == "auth.identity_confirmed" and e["reason"].endswith(f"session {b.sid}")
    ]
    assert len(checked) == 1
    assert json.loads(checked[0]["after_json"])["rate_ml_h"] is not None
    # each co-signer whose password was right is on record, refused or not; the wrong one failed
    assert [e["actor_username"] for e in confirmed] == [
        me.username,
        pharmacist.username,
        second_nurse.username,
    ]
    failed = [e for e in entries if e["action"] == "auth.login_failed"]
    assert any(e["actor_username"] == second_nurse.username for e in failed)
    run_to_due(b)  # step 2, same bag: no double check
    b.server.advance(minutes=1)
    b.post("nurse", "confirm-step")


def test_the_code_printed_is_the_code_scanned(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    for bag, label in b.labels().items():
        code = parse(label["printed"])
        assert code == parse(label["code"]) and code.bag == bag and code.session_id == b.sid
