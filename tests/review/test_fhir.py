"""The FHIR R4 Bundle of a session: valid against the FHIR models (fhir.resources, R4B), one
MedicationAdministration per actual segment, LOINC-coded vital signs, an AdverseEvent per
reaction that points at what was running and at what was measured. Real server, real
database."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from app.audit import AuditEvent
from app.review import fhir
from app.session import view as V
from tests.review.test_exports import audit_entries, last_seq, reaction_walk
from tests.review.views import session_view, vitals_set
from tests.session import conftest as session_fixtures
from tests.session.conftest import SessionServer, new_patient, session_body, wait_for
from tests.session.test_api_walk import Bedside
from tests.support import SignedInClient

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

session_server = session_fixtures.session_server
team = session_fixtures.team


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# The models check structure, cardinality and types, not required code values: these are the
# FHIR R4 (4.0.1) required value sets of the status elements this export fills.
R4_STATUS = {
    "Observation": {
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown",
    },
    "MedicationAdministration": {
        "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped",
        "unknown",
    },
    "Procedure": {
        "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
        "entered-in-error", "unknown",
    },
}  # fmt: skip


def validated(bundle: dict[str, Any]) -> None:
    """Parse the Bundle, and each entry's resource into its own model: raises when invalid."""
    parsed = Bundle.parse_obj(bundle)
    assert parsed.type == "collection"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        get_fhir_model_class(kind).parse_obj(resource)
        if kind in R4_STATUS:
            assert resource["status"] in R4_STATUS[kind], resource
        if kind == "AdverseEvent":
            assert resource["actuality"] in ("actual", "potential")


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def of_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"] if c["system"] == LOINC}


def category(resource: dict[str, Any]) -> str:
    return resource["category"][0]["coding"][0]["code"]


def export(client: SignedInClient, sid: int) -> dict[str, Any]:
    response = client.get(f"/sessions/{sid}/fhir")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return response.json()


def test_the_bundle_of_a_session_with_a_reaction_and_a_resume(
    session_server: SessionServer, team: dict[str, SignedInClient], database_url: str
) -> None:
    b = reaction_walk(session_server, team)
    view = b.get()
    before = last_seq(database_url)
    bundle = export(team["auditor"], b.sid)
    validated(bundle)

    # Every fullUrl is a urn:uuid, unique, the resource's own id; every reference resolves.
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls)
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    assert set(references(bundle)) <= set(urls)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}

    [patient] = of_type(bundle, "Patient")
    assert patient["name"][0]["family"] == "Doe" and patient["birthDate"] == "1970-04-02"
    [procedure] = of_type(bundle, "Procedure")
    assert procedure["status"] == "in-progress"
    assert "ceftazidime" in procedure["code"]["text"] and "coding" not in procedure["code"]
    assert by_url[procedure["subject"]["reference"]] is patient
    first = view["segments"][0]["started_at"]
    assert utc(procedure["performedPeriod"]["start"]) == utc(first)
    assert "end" not in procedure["performedPeriod"]

    # One administration per actual segment, in order, as the ledger has it.
    administrations = of_type(bundle, "MedicationAdministration")
    steps = [m for m in administrations if m["category"]["text"] == "desensitization-step"]
    assert len(steps) == len(view["segments"]) >= 6
    for given, segment in zip(steps, view["segments"], strict=True):
        assert by_url[given["partOf"][0]["reference"]] is procedure
        assert given["medicationCodeableConcept"]["text"] == "ceftazidime"
        period = given["effectivePeriod"]
        assert utc(period["start"]) == utc(segment["started_at"])
        if segment["stopped_at"]:
            assert utc(period["end"]) == utc(segment["stopped_at"])
        else:
            assert "end" not in period and given["status"] == "in-progress"
        dose = given["dosage"]["dose"]
        assert (dose["unit"], dose["system"], dose["code"]) == ("mg", UCUM, "mg")
        assert abs(Decimal(str(dose["value"])) - Decimal(segment["dose"])) < Decimal("1e-9")
        rate = given["dosage"]["rateQuantity"]
        assert (rate["code"], rate["system"]) == ("mL/h", UCUM)
        assert Decimal(str(rate["value"])) == Decimal(segment["rate_ml_h"])
    assert [m["status"] for m in steps].count("stopped") == 1  # the step the reaction cut
    assert "repeat of approved step 3" in steps[3]["dosage"]["text"]
    [treatment] = [m for m in administrations if m["category"]["text"] == "reaction-treatment"]
    assert treatment["medicationCodeableConcept"]["text"] == "diphenhydramine"
    assert treatment["dosage"]["text"] == "25 mg IV"

    # Vital signs: LOINC codes, UCUM units, one Observation per measured value of the newest
    # version of each reading (blood pressure as one panel).
    observations = of_type(bundle, "Observation")
    current = [v for v in view["vitals"] if v["current"]]
    expected = 0
    for reading in current:
        measured = {k for k, e in reading["values"].items() if isinstance(e, dict) and "value" in e}
        expected += len(measured - {"systolic_bp", "diastolic_bp"})
        expected += bool(measured & {"systolic_bp", "diastolic_bp"})
    assert len(observations) == expected
    found = Counter(code for o in observations for code in codes(o))
    assert found["85354-9"] == len(current)  # a blood pressure in every reading
    assert found["8867-4"] == found["9279-1"] == found["2708-6"] == found["59408-5"]
    assert found["8867-4"] == len(current)
    assert found["8310-5"] == len(current) - 1  # refused once
    assert found["20150-9"] == found["19935-6"] == 1
    units = {tuple(sorted(codes(o))): o.get("valueQuantity", {}).get("code") for o in observations}
    assert units == {
        ("85354-9",): None,
        ("8867-4",): "/min",
        ("2708-6", "59408-5"): "%",
        ("9279-1",): "/min",
        ("8310-5",): "Cel",
        ("20150-9",): "L",
        ("19935-6",): "L/min",
    }
    for o in observations:
        assert by_url[o["subject"]["reference"]] is patient
        assert by_url[o["partOf"][0]["reference"]] is procedure
        vital = not codes(o) & {"20150-9", "19935-6"}
        assert category(o) == ("vital-signs" if vital else "procedure")
        if "85354-9" in codes(o):
            parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in o["component"]}
            assert set(parts) == {"8480-6", "8462-4"}
            assert {q["code"] for q in parts.values()} == {"mm[Hg]"}
            assert (parts["8480-6"]["value"], parts["8462-4"]["value"]) == (124, 78)
    # The amendment: the reading's Observation shows the corrected value, status amended,
    # measured when the reading was first taken.
    amended = [o for o in observations if o["status"] == "amended"]
    assert amended and all(o["issued"] > o["effectiveDateTime"] for o in amended)
    [heart] = [o for o in amended if "8867-4" in codes(o)]
    assert heart["valueQuantity"]["value"] == 75

    # The reaction: severity from the Brown grade, the administration running at onset, and
    # the Observations measured around onset (including those taken during the reaction).
    [event] = of_type(bundle, "AdverseEvent")
    [reaction] = view["reactions"]
    assert event["actuality"] == "actual" and utc(event["date"]) == utc(reaction["onset_at"])
    assert by_url[event["subject"]["reference"]] is patient
    assert event["severity"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
        "code": "mild",
        "display": "Mild",
    }
    assert event["outcome"]["coding"][0]["code"] == "resolved"
    assert "Hives (urticaria)" in event["event"]["text"]
    suspect = by_url[event["suspectEntity"][0]["instance"]["reference"]]
    assert suspect["resourceType"] == "MedicationAdministration" and suspect["status"] == "stopped"
    onset = utc(reaction["onset_at"])
    period = suspect["effectivePeriod"]
    assert utc(period["start"]) <= onset <= utc(period["end"])
    effects = [x for x in event["extension"] if x["url"] == fhir.RESULTING_EFFECT]
    shown = [by_url[x["valueReference"]["reference"]] for x in effects]
    assert shown and {o["resourceType"] for o in shown} == {"Observation"}
    times = {utc(o["effectiveDateTime"]) for o in shown}
    assert all(onset - timedelta(minutes=15) <= t <= utc(reaction["resolved_at"]) for t in times)
    during = [o for o in shown if "8867-4" in codes(o) and o["valueQuantity"]["value"] == 104]
    assert during, "the heart rate taken during the reaction is referenced"

    # Reproducible: the same record gives the same document. And the export was audited.
    assert export(team["nurse"], b.sid) == bundle
    entries = audit_entries(
        database_url, AuditEvent.seq > before, AuditEvent.action == "export.fhir"
    )
    assert [(e["entity"], e["entity_id"], e["actor_role"]) for e in entries] == [
        ("session", str(b.sid), "auditor"),
        ("session", str(b.sid), "nurse"),
    ]
    after = json.loads(entries[0]["after_json"])
    assert after["bundle"] == bundle["id"]
    assert after["resources"] == dict(
        Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    )


def test_a_completed_oral_ladder_with_a_premedication(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    nurse = team["nurse"]
    body = session_body(new_patient(nurse), template="doses", doses="100,400,1500", dose="2000")
    created = nurse.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    b = Bedside(session_server, team, created.json()["id"])
    b.post("physician", "approve")
    b.post("pharmacist", "verify-bags")
    for item in ("consent", "rescue_kit"):
        b.post("nurse", "checklist", {"item": item})
    premedication = {
        "drug": "cetirizine",
        "dose": "10 mg",
        "route": "PO",
        "given_at": session_server.clock.now().isoformat(),
    }
    b.post("nurse", "checklist", {"item": "premedications", "premedications": [premedication]})
    b.vitals()
    b.post("nurse", "start")
    view = b.get()
    while view["status"] in ("running", "step_due"):
        view = b.finish_step()
    assert view["status"] == "observing"
    session_server.advance(minutes=31)
    b.vitals()
    wait_for(b.get, lambda v: v["observation_done"])
    view = b.post("nurse", "complete")
    assert view["status"] == "completed"

    bundle = export(team["physician"], b.sid)
    validated(bundle)
    [procedure] = of_type(bundle, "Procedure")
    assert procedure["status"] == "completed"
    period = procedure["performedPeriod"]
    assert utc(period["start"]) == utc(view["segments"][0]["started_at"])
    assert utc(period["end"]) == session_server.clock.now()
    assert "2000" in procedure["outcome"]["text"]
    administrations = of_type(bundle, "MedicationAdministration")
    steps = [m for m in administrations if m["category"]["text"] == "desensitization-step"]
    assert len(steps) == len(view["segments"]) == 3
    assert [m["dosage"]["dose"]["value"] for m in steps] == [100, 400, 1500]
    assert all("rateQuantity" not in m["dosage"] for m in steps)  # doses, not infusions
    assert {m["status"] for m in steps} == {"completed"}
    [premed] = [m for m in administrations if m["category"]["text"] == "premedication"]
    assert premed["medicationCodeableConcept"]["text"] == "cetirizine"
    assert utc(premed["effectiveDateTime"]) == utc(premedication["given_at"])
    assert of_type(bundle, "AdverseEvent") == []
    assert export(team["pharmacist"], b.sid) == bundle


# --- the pure builder ------------------------------------------------------------------------


T0 = datetime.fromisoformat("2026-11-21T09:00:00+00:00")


def _view(status: str, reactions: list[V.Reaction], vitals: list[V.VitalsSet]) -> V.SessionView:
    return session_view(
        drug="carboplatin",
        status=status,
        target_dose=Decimal(600),
        delivered_dose=Decimal("12.5"),
        abort_reason="anaphylaxis" if status == "aborted" else None,
        plan=V.PlanView(
            "infusion",
            (V.Bag(1, "1/100", Decimal(250), Decimal("0.024")),),
            (V.Step(0, 1, None, None, None, "plan", None),),
        ),
        segments=(
            V.Segment(
                step=0,
                solution=1,
                rate_ml_h=Decimal("2.0"),
                started_at=T0,
                stopped_at=T0 + timedelta(minutes=10),
                volume_ml=Decimal("0.333333333333333333333333333333"),
                dose=Decimal("0.00799999999999999999999999999999"),
            ),
        ),
        reactions=tuple(reactions),
        vitals=tuple(vitals),
    )


def _reaction(grade: int | None, resolved: datetime | None) -> V.Reaction:
    return V.Reaction(
        number=1,
        onset_at=T0 + timedelta(minutes=10),
        symptoms=("wheeze", "hypotension_collapse"),
        at_step=0,
        treatments=(),
        brown_grade=grade,
        ctcae_grade=None,
        resolved_at=resolved,
    )


def test_brown_grades_map_to_severity_and_an_open_reaction_is_ongoing() -> None:
    patient = {"mrn": "A1", "family_name": "Roe", "given_name": "Ann", "birth_date": "1980-01-01"}
    for grade, severity in ((1, "mild"), (2, "moderate"), (3, "severe")):
        resolved = T0 + timedelta(minutes=40)
        bundle = fhir.session_bundle(_view("aborted", [_reaction(grade, resolved)], []), patient)
        validated(bundle)
        [event] = of_type(bundle, "AdverseEvent")
        assert event["severity"]["coding"][0]["code"] == severity
    # Unresolved: no grade yet, so no severity; the outcome is ongoing. A reading with a
    # refused diastolic pressure gives a blood pressure panel whose component says why.
    values = {
        "systolic_bp": {"status": "measured", "value": "82"},
        "diastolic_bp": {"status": "refused", "reason": "cuff hurts"},
        "spo2": {"status": "unable_to_obtain", "reason": "cold hands"},
    }
    reading = vitals_set(T0 + timedelta(minutes=12), values)
    view = _view("paused", [_reaction(None, None)], [reading])
    bundle = fhir.session_bundle(view, patient, installation_id="site-a")
    validated(bundle)
    [event] = of_type(bundle, "AdverseEvent")
    assert "severity" not in event and event["outcome"]["coding"][0]["code"] == "ongoing"
    [panel] = of_type(bundle, "Observation")  # SpO2 was not measured: no Observation
    diastolic = panel["component"][1]
    assert diastolic["dataAbsentReason"]["coding"][0]["code"] == "asked-declined"
    assert diastolic["dataAbsentReason"]["text"] == "cuff hurts"
    assert event["extension"][0]["valueReference"]["reference"] == bundle["entry"][-2]["fullUrl"]
    [procedure] = of_type(bundle, "Procedure")
    assert procedure["status"] == "on-hold"
    [given] = of_type(bundle, "MedicationAdministration")
    assert given["status"] == "stopped"  # cut by the reaction at 09:10
    assert given["dosage"]["dose"]["value"] == 0.008  # 60-digit ledger decimals, rounded
    # Another installation's export of "session 7" does not collide with this one.
    other = fhir.session_bundle(view, patient, installation_id="site-b")
    assert {e["fullUrl"] for e in other["entry"]}.isdisjoint(e["fullUrl"] for e in bundle["entry"])
    assert fhir.session_bundle(view, patient, installation_id="site-a") == bundle
