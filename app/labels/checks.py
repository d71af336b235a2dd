"""Is this the right bag, is this the right patient: a scan checked against what was printed
and what is due, with what was scanned and what was expected in words. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal

from app.labels.code import CodeError, LabelCode

ScanKind = Literal["bag", "wristband"]
ScanMethod = Literal["scanner", "camera", "manual"]
SCAN_METHODS: tuple[ScanMethod, ...] = ("scanner", "camera", "manual")
# A wristband's barcode holds the MRN; a site whose bands hold more names the MRN's part with a
# named group "mrn" (STEPWISE_WRISTBAND_PATTERN).
DEFAULT_WRISTBAND_PATTERN = r"(?P<mrn>[A-Za-z0-9][A-Za-z0-9/-]{0,39})"


@dataclass(frozen=True)
class IssuedLabel:
    """A label as printed (app.labels.models.BagLabel)."""

    code: str
    session_id: int
    bag: int
    copy: int
    expires_at: datetime
    voided_at: datetime | None


@dataclass(frozen=True)
class Verdict:
    kind: ScanKind
    ok: bool
    scanned: str  # what was scanned, in words
    expected: str  # what was due, in words
    bag: int | None = None  # the bag the label names (bag scans)

    @property
    def alarm(self) -> str:
        """The alarm condition a wrong scan of this kind raises (and a right one clears)."""
        return "wrong_bag" if self.kind == "bag" else "wrong_patient"

    @property
    def condition(self) -> str | None:
        """The alarm this scan raises: none when it is right."""
        return None if self.ok else self.alarm

    @property
    def message(self) -> str:
        if self.ok:
            return f"{self.scanned}: checked"
        what = "Wrong bag" if self.kind == "bag" else "Wrong patient"
        return f"{what}: scanned {self.scanned}; expected {self.expected}"


def bag_words(session_id: int, bag: int, bags: int | None = None) -> str:
    of = f" of {bags}" if bags else ""
    return f"bag {bag}{of} of session {session_id}"


def check_bag(
    code: LabelCode,
    issued: IssuedLabel | None,
    session_id: int,
    due_bag: int,
    bags: int,
    now: datetime,
    where: tzinfo = UTC,
) -> Verdict:
    """The scanned code against the label on record and the bag due now; times are told in
    the facility's zone `where`."""
    expected = bag_words(session_id, due_bag, bags)

    def wrong(scanned: str) -> Verdict:
        return Verdict("bag", False, scanned, expected, code.bag)

    named = bag_words(code.session_id, code.bag)
    if code.session_id != session_id:
        return wrong(f"{named} (another patient's session)")
    if issued is None or issued.code != code.text:
        return wrong(f"a label for {named} that Stepwise did not print")
    if issued.voided_at is not None:
        return wrong(f"{named}, label copy {issued.copy}, voided by a reprint")
    if now >= issued.expires_at:
        expired = issued.expires_at.astimezone(where).strftime("%d %b %H:%M %Z")
        return wrong(f"{named}, expired at {expired}")
    if code.bag != due_bag:
        return wrong(bag_words(code.session_id, code.bag, bags))
    return Verdict("bag", True, bag_words(code.session_id, code.bag, bags), expected, code.bag)


def normal_mrn(text: str) -> str:
    """MRNs compare without spaces and case: "mrn 0042" is "MRN0042"."""
    return "".join(text.split()).upper()


def wristband_mrn(scanned: str, pattern: str = DEFAULT_WRISTBAND_PATTERN) -> str:
    """The MRN a wristband's barcode carries, or a CodeError when it carries none."""
    match = re.fullmatch(pattern, scanned.strip())
    if match is None:
        raise CodeError("this is not a patient wristband (no MRN in the form this site prints)")
    mrn = match.groupdict().get("mrn") or match.group(0)
    return normal_mrn(mrn)


def check_wristband(mrn: str, patient_mrn: str, patient_name: str) -> Verdict:
    expected = f"MRN {patient_mrn} ({patient_name})"
    if normal_mrn(mrn) != normal_mrn(patient_mrn):
        return Verdict("wristband", False, f"MRN {mrn}", expected)
    return Verdict("wristband", True, f"MRN {mrn}", expected)
