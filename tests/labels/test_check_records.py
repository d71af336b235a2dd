"""The bag and patient checks in the record, over real HTTP: the timeline says each in words
(how a code was read, a typed one flagged, both clinicians of a double check by name), the
printed report lists them in "Bag and patient checks", and the FHIR export notes them on the
Procedure and the scan and double check that cleared a pump start on its administration (the
Bundle still valid)."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup

from tests.labels.conftest import HIGH_ALERT, Scanning, made_ready
from tests.review.test_fhir import export, of_type, validated
from tests.session.conftest import SessionServer
from tests.support import Account, SignedInClient

OTHER_MRN = "MRN-SOMEONE-ELSE"


def checked_session(
    server: SessionServer,
    ward: dict[str, SignedInClient],
    cosigner: Account,
) -> Scanning:
    """Labels printed and one reprinted, a wrong wristband refused and the scan overridden by a
    physician, a wrong bag read by the camera refused, the right one typed by hand, and the
    start of a high-alert drug double-checked by a second nurse."""
    b = made_ready(server, ward, drug=HIGH_ALERT)
    b.post("pharmacist", "bags/1/labels")
    b.scan("wristband", OTHER_MRN, expect=409)
    b.post("physician", "scans/override", {"kind": "wristband", "reason": "band unreadable"})
    labels = b.labels()
    b.scan("bag", labels[2]["code"], expect=409, method="camera")
    b.scan("bag", labels[1]["printed"], method="manual")
    b.post(
        "nurse",
        "start",
        {"cosigner_username": cosigner.username, "cosigner_password": cosigner.password},
    )
    return b


def _text(node: Any) -> str:
    return " ".join(node.get_text(" ", strip=True).split())


def test_the_checks_in_the_timeline_the_report_and_the_fhir_bundle(
    scanning_server: SessionServer,
    ward: dict[str, SignedInClient],
    accounts: dict[str, Account],
    second_nurse: Account,
) -> None:
    b = checked_session(scanning_server, ward, second_nurse)
    sid = b.sid
    nurse, pharmacist, physician = (
        accounts[r].username for r in ("nurse", "pharmacist", "physician")
    )
    bag1 = f"bag 1 of 3 of session {sid}"
    expected = [
        ("labels_printed", "Labels printed: labels of bags 1, 2 and 3"),
        (
            "label_reprinted",
            "Label reprinted: bag 1: copy 2 printed; copy 1 void (no longer scans)",
        ),
        (
            "scan_refused",
            f"Wrong patient refused: MRN {OTHER_MRN} (scanned); expected MRN {b.mrn} (Jane Doe)",
        ),
        (
            "scan_overridden",
            "Wristband scan overridden: went on without the scan. Reason: band unreadable",
        ),
        (
            "scan_refused",
            f"Wrong bag refused: bag 2 of 3 of session {sid} (read by the tablet's camera); "
            f"expected {bag1}",
        ),
        ("scan_checked", f"Bag label checked: {bag1} (typed by hand, not scanned)"),
        ("double_checked", "Double check: step 1, bag 1, "),
    ]

    # The timeline: each check in words in its details
    page = BeautifulSoup(ward["auditor"].get(f"/sessions/{sid}/timeline").text, "html.parser")
    rows = [
        (_text(tr.select("td")[3]).replace(" ", "_"), _text(tr.select_one("td.details")))
        for tr in page.select("table.timeline-table tbody tr")
    ]
    checks = [(kind, details) for kind, details in rows if kind in dict(expected)]
    assert len(checks) == len(expected), checks
    for (kind, details), (want_kind, want) in zip(checks, expected, strict=True):
        assert kind == want_kind and details.startswith(want), (details, want)
    double = checks[-1][1]
    assert nurse in double.split("checked and")[0]  # the nurse who set the pump
    assert second_nurse.username in double.split("co-signed by")[1]
    who = {
        _text(tr.select("td")[3]).replace(" ", "_"): _text(tr.select("td")[2])
        for tr in page.select("table.timeline-table tbody tr")
    }
    assert who["label_reprinted"].startswith(pharmacist)
    assert who["scan_overridden"].startswith(physician)

    # The bedside's own timeline (its newest events), briefly
    bedside = BeautifulSoup(ward["nurse"].get(f"/sessions/{sid}").text, "html.parser")
    lines = [_text(li) for li in bedside.select("#timeline li")]
    assert any(f"scan checked · {bag1} (typed by hand)" in t for t in lines), lines
    assert any(f"scan refused · bag 2 of 3 of session {sid}, expected {bag1} (camera)" in t
               for t in lines), lines  # fmt: skip
    assert any("double checked · step 1 · bag 1 at" in t and "co-signed" in t for t in lines)

    # The report: "Bag and patient checks", the refusals marked
    report = BeautifulSoup(ward["auditor"].get(f"/sessions/{sid}/report").text, "html.parser")
    section = report.select_one("#checks")
    assert section is not None and _text(section.select_one("h2")) == "Bag and patient checks"
    lines = section.select("#checks-table tbody tr")
    assert [_text(tr.select("td")[1]) for tr in lines] == [
        "Labels printed",
        "Label reprinted",
        "Wrong patient refused",
        "Wristband scan overridden",
        "Wrong bag refused",
        "Bag label checked",
        "Double check",
    ]
    assert [("alert-text" in tr["class"]) for tr in lines] == [
        False, False, True, False, True, False, False,
    ]  # fmt: skip
    assert "refused (2)" in _text(section)
    assert "typed by hand" in _text(lines[5]) and bag1 in _text(lines[5])
    assert nurse in _text(lines[6].select("td")[2])
    assert second_nurse.username in _text(lines[6].select("td")[3])
    assert physician in _text(lines[3].select("td")[2])

    # FHIR: the notes of the Procedure, the first administration's pump start cleared
    bundle = export(ward["auditor"], sid)
    validated(bundle)
    [procedure] = of_type(bundle, "Procedure")
    notes = procedure["note"][1:]
    assert len(notes) == len(expected)
    for note, (_, want) in zip(notes, expected, strict=True):
        assert note["text"].startswith(want), (note["text"], want)
    assert all(n["time"] and n["authorString"] for n in notes)
    assert notes[1]["authorString"].startswith(pharmacist)
    first = of_type(bundle, "MedicationAdministration")[0]
    assert first["category"]["text"] == "desensitization-step"
    assert [n["text"].split(":")[0] for n in first["note"]] == ["Bag label checked", "Double check"]
    assert second_nurse.username in first["note"][1]["text"]
