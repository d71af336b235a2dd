"""A desensitization session as a FHIR R4 ``collection`` Bundle. Pure: plain data in, plain
JSON-ready dicts out; no I/O, no clock.

Input: the typed session view of ``app.session.view`` (status, plan, segments, reactions,
checklist, vitals, ...), the patient's fields, and the times the session started and ended.

Output (clinical-reference §f):

* ``Patient``: MRN, name, birth date, administrative gender.
* ``Procedure``: the desensitization. Coded as text only: no SNOMED CT code for "drug
  desensitization" was confirmed (§f, UNCONFIRMED). Status from the session status, the
  performed period from start to completion or abort, reactions as complications; the bag and
  patient checks (labels printed and reprinted, wristband and bag label scans with how each was
  read, wrong ones refused, overrides, double checks) as notes with their author and time.
* ``MedicationAdministration``: one per actual segment of the view (a stretch at one rate from
  one bag, or one dose given), with ``dosage.dose`` (the dose actually given in that segment),
  ``dosage.rateQuantity`` in mL/h for infusions, the effective period, and ``partOf`` the
  Procedure. Premedications and reaction treatments are administrations of their own, told apart
  by ``category`` (``desensitization-step``, ``premedication``, ``reaction-treatment``). A
  step's administration notes the bag scan and the double check that cleared its pump start.
* ``Observation``: one per measured vital sign of the current version of each reading (an
  amended reading has status ``amended``; superseded versions stay in the CSV export). Blood
  pressure is the 85354-9 panel with 8480-6/8462-4 components, as the FHIR R4 bp profile asks;
  heart rate 8867-4, respiratory rate 9279-1, temperature 8310-5, SpO2 2708-6 with 59408-5
  alongside; FEV1 20150-9 and peak flow 19935-6 as non-vital (category ``procedure``)
  observations. UCUM units. Values not measured (unable to obtain, refused) give no Observation,
  except a missing half of a blood pressure, which the panel carries as ``dataAbsentReason``.
* ``AdverseEvent``: one per reaction, severity mild/moderate/severe from Brown grade 1/2/3
  (our mapping, §f), ``suspectEntity`` the administration running at onset (or the last one
  before it), and the Observations of the readings from 15 minutes before onset until resolution
  through the ``resultingEffect`` extension of the HL7 AdverseEvent R4 backport IG
  (Reference(Condition|Observation)): R4's own ``resultingCondition`` only references
  Conditions, and ``contributingFactor`` exists only in R5.

Every resource has a ``urn:uuid:`` fullUrl (and the same id) made with uuid5 from the session id
and the resource's key, so exporting the same record twice gives the same document.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from app.review.check_words import CheckRecord
from app.review.fhir_values import (
    UCUM,
    dose_quantity,
    number,
    reference,
    stamp,
    text_concept,
    utc_time,
)
from app.session import machine as M
from app.session.record import Treatment
from app.session.view import Measure, SessionView, Step
from app.vitals.catalogue import VITAL_SIGNS, FhirCoding
from app.vitals.rules import symptom_words

NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:stepwise:fhir-export")
FHIR_VERSION: Final = "4.0.1"
MEDIA_TYPE: Final = "application/fhir+json"

LOINC: Final = "http://loinc.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
AE_SEVERITY: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
RESULTING_EFFECT: Final = (
    "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/resultingEffect"
)
PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/"

# Readings this long before a reaction's onset count as "around onset".
ONSET_WINDOW_BEFORE: Final = timedelta(minutes=15)

PROCEDURE_STATUS: Final[Mapping[str, str]] = {
    "planned": "preparation",
    "ready": "preparation",
    "running": "in-progress",
    "step_due": "in-progress",
    "observing": "in-progress",
    "paused": "on-hold",
    "completed": "completed",
    "aborted": "stopped",
}
# Brown grade -> reaction severity (clinical-reference §f: "a natural mapping", our choice).
BROWN_SEVERITY: Final[Mapping[int, str]] = {1: "mild", 2: "moderate", 3: "severe"}
# Why a value was not measured -> data-absent-reason.
ABSENT_REASON: Final[Mapping[str, str]] = {
    "refused": "asked-declined",
    "unable_to_obtain": "not-performed",
}


BP_PANEL: Final = ("85354-9", "Blood pressure panel with all children optional")
BP_COMPONENTS: Final = tuple(
    (sign.name, *sign.fhir.codes[0]) for sign in VITAL_SIGNS.values() if sign.fhir.profile == "bp"
)
# One Observation per field but blood pressure (the panel above).
VITALS: Final[Mapping[str, FhirCoding]] = {
    sign.name: sign.fhir for sign in VITAL_SIGNS.values() if sign.fhir.profile != "bp"
}


# --- small helpers ---------------------------------------------------------------------------


def resource_id(session_id: int, key: str, installation_id: str = "") -> str:
    """The deterministic UUID of one resource of one session's export."""
    prefix = f"{installation_id}/" if installation_id else ""
    return str(uuid.uuid5(NAMESPACE, f"{prefix}session/{session_id}/{key}"))


def _reaction_text(reaction: M.Reaction) -> str:
    """Its findings in words, then its symptoms by name: never a code."""
    findings = list(reaction.findings)
    symptoms = [symptom_words(code) for code in reaction.symptoms]
    return "; ".join([*findings, ", ".join(symptoms)] if symptoms else findings) or (
        "no symptoms recorded"
    )


OUTCOME_DISPLAY = {
    "resolved": "Resolved",
    "recovering": "Recovering",
    "ongoing": "Ongoing",
    "resolvedWithSequelae": "Resolved with Sequelae",
    "fatal": "Fatal",
    "unknown": "Unknown",
}


def _origin(step: Step) -> str:
    """How a step added by a resume relates to the approved ladder, for the dosage text."""
    origin = step.origin or "plan"
    if origin == "plan" or step.of_step is None:
        return ""
    return f" ({origin.replace('_', ' ')} of approved step {step.of_step + 1})"


def _check_note(check: CheckRecord) -> dict[str, Any]:
    """A bag or patient check as an Annotation: who, when, and what in words."""
    return {"authorString": check.who, "time": stamp(check.at), "text": check.text}


def _clears(
    check: CheckRecord,
    step: int,
    bag: int | None,
    after: datetime | None,
    start: datetime,
) -> bool:
    """The bag scan or the double check that let this administration's pump start: made
    after the administration before it started and by its start, naming its bag or step."""
    if (after is not None and check.at <= after) or check.at > start:
        return False
    if check.kind == "scan_checked":
        return bag is not None and check.bag == bag
    return check.kind == "double_checked" and check.step == step


# --- the bundle ------------------------------------------------------------------------------


class _Builder:
    def __init__(
        self,
        view: SessionView,
        patient: Mapping[str, Any],
        started_at: str | datetime | None,
        ended_at: str | datetime | None,
        installation_id: str,
        checks: Sequence[CheckRecord] = (),
    ) -> None:
        self.view = view
        self.checks = tuple(checks)
        self.patient = patient
        self.session_id = view.id
        self.installation_id = installation_id
        self.started_at = started_at
        self.ended_at = ended_at
        self.entries: list[dict[str, Any]] = []
        self.patient_url = self.url("patient")
        self.procedure_url = self.url("procedure")
        self.segment_urls: list[str] = []
        # per reading: when it was measured, and the fullUrls of its Observations
        self.readings: list[tuple[datetime, list[str]]] = []

    def url(self, key: str) -> str:
        return f"urn:uuid:{resource_id(self.session_id, key, self.installation_id)}"

    def add(self, key: str, resource: dict[str, Any]) -> str:
        full_url = self.url(key)
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": {
                    "resourceType": resource["resourceType"],
                    "id": full_url.removeprefix("urn:uuid:"),
                    **resource,
                },
            }
        )
        return full_url

    # Patient -----------------------------------------------------------------------------

    def add_patient(self) -> None:
        p = self.patient
        resource: dict[str, Any] = {"resourceType": "Patient"}
        if p.get("mrn"):
            resource["identifier"] = [
                {
                    "use": "usual",
                    "type": {
                        "coding": [{"system": IDENTIFIER_TYPE, "code": "MR"}],
                        "text": "Medical record number",
                    },
                    "value": p["mrn"],
                }
            ]
        name: dict[str, Any] = {"use": "official"}
        if p.get("family_name"):
            name["family"] = p["family_name"]
        if p.get("given_name"):
            name["given"] = [p["given_name"]]
        if len(name) > 1:
            resource["name"] = [name]
        if p.get("sex") in ("female", "male", "other", "unknown"):
            resource["gender"] = p["sex"]
        birth = p.get("birth_date")
        if birth:
            resource["birthDate"] = birth.isoformat() if isinstance(birth, date) else str(birth)
        self.add("patient", resource)

    # Procedure ---------------------------------------------------------------------------

    def add_procedure(self) -> None:
        v = self.view
        drug = v.drug
        status = PROCEDURE_STATUS.get(v.status, "unknown")
        resource: dict[str, Any] = {
            "resourceType": "Procedure",
            "status": status,
            "code": text_concept(f"Rapid drug desensitization to {drug} ({v.template})"),
            "subject": reference(self.patient_url),
            "reasonCode": [text_concept(f"Hypersensitivity to {drug}")],
        }
        segments = v.segments
        start = self.started_at or (segments[0].started_at if segments else None)
        if start is not None:
            period = {"start": stamp(start)}
            if status in ("completed", "stopped") and self.ended_at is not None:
                period["end"] = stamp(self.ended_at)
            resource["performedPeriod"] = period
        unit = v.unit
        delivered = f"{number(v.delivered_dose)} {unit} of {number(v.target_dose)} {unit}"
        if v.status == "completed":
            resource["outcome"] = text_concept(f"Completed: {delivered} given")
        elif v.status == "aborted":
            reason = v.abort_reason or "no reason recorded"
            resource["outcome"] = text_concept(f"Stopped ({reason}): {delivered} given")
        reactions = v.reactions
        if reactions:
            resource["complication"] = [
                text_concept(
                    f"Breakthrough reaction {r.number}: {_reaction_text(r)}"
                    + (f" (Brown grade {r.brown_grade})" if r.brown_grade else "")
                )
                for r in reactions
            ]
        resource["note"] = [{"text": f"Delivered {delivered} (the target dose)."}] + [
            _check_note(check) for check in self.checks
        ]
        self.add("procedure", resource)

    # MedicationAdministrations ----------------------------------------------------------

    def _bag_label(self, solution: int | None) -> str | None:
        if solution is None:
            return None
        for bag in self.view.plan.bags:
            if bag.number == solution:
                label = bag.label
                return f"bag {solution} ({label})" if label else f"bag {solution}"
        return f"bag {solution}"

    def _segment_status(self, index: int, stopped_at: datetime | None) -> str:
        stopped = utc_time(stopped_at)
        if stopped is None:
            return "in-progress"
        onsets = {utc_time(r.onset_at) for r in self.view.reactions}
        last = index == len(self.view.segments) - 1
        if stopped in onsets or (last and self.view.status == "aborted"):
            return "stopped"  # cut short by a reaction, or by the abort
        return "completed"

    def add_segments(self) -> None:
        v = self.view
        steps = v.plan.steps
        for index, segment in enumerate(v.segments):
            step = segment.step
            words = [f"Step {step + 1} of {len(steps)}{_origin(steps[step])}"]
            bag = self._bag_label(segment.solution)
            if segment.volume_ml is not None:
                words.append(f"{number(segment.volume_ml)} mL" + (f" of {bag}" if bag else ""))
            if segment.rate_ml_h is not None:
                words.append(f"at {number(segment.rate_ml_h)} mL/h")
            dosage: dict[str, Any] = {
                "text": ", ".join(words),
                "route": text_concept(v.route),
            }
            dose = dose_quantity(segment.dose, v.unit)
            if dose is not None:
                dosage["dose"] = dose
            if segment.rate_ml_h is not None:
                dosage["rateQuantity"] = {
                    "value": number(segment.rate_ml_h),
                    "unit": "mL/h",
                    "system": UCUM,
                    "code": "mL/h",
                }
            period = {"start": stamp(segment.started_at)}
            if segment.stopped_at:
                period["end"] = stamp(segment.stopped_at)
            resource = {
                "resourceType": "MedicationAdministration",
                "status": self._segment_status(index, segment.stopped_at),
                "category": text_concept("desensitization-step"),
                "medicationCodeableConcept": text_concept(v.drug),
                "subject": reference(self.patient_url),
                "partOf": [reference(self.procedure_url)],
                "effectivePeriod": period,
                "dosage": dosage,
            }
            previous = v.segments[index - 1].started_at if index else None
            cleared = [
                _check_note(check)
                for check in self.checks
                if _clears(check, segment.step, segment.solution, previous, segment.started_at)
            ]
            if cleared:
                resource["note"] = cleared
            self.segment_urls.append(self.add(f"segment/{index}", resource))

    def _given(
        self, key: str, category: str, given: M.Premedication | Treatment, reason: str
    ) -> None:
        self.add(
            key,
            {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "category": text_concept(category),
                "medicationCodeableConcept": text_concept(given.drug),
                "subject": reference(self.patient_url),
                "partOf": [reference(self.procedure_url)],
                "effectiveDateTime": stamp(given.given_at),
                "reasonCode": [text_concept(reason)],
                "dosage": {
                    "text": f"{given.dose} {given.route}".strip(),
                    "route": text_concept(given.route),
                },
            },
        )

    def add_premedications_and_treatments(self) -> None:
        for index, premed in enumerate(self.view.checklist.premedications):
            self._given(f"premedication/{index}", "premedication", premed, "Premedication")
        for reaction in self.view.reactions:
            for index, treatment in enumerate(reaction.treatments):
                self._given(
                    f"reaction/{reaction.number}/treatment/{index}",
                    "reaction-treatment",
                    treatment,
                    f"Treatment of breakthrough reaction {reaction.number}",
                )

    # Observations ------------------------------------------------------------------------

    def _observation(
        self,
        *,
        vital: bool,
        profile: str | None,
        status: str,
        effective: str | None,
        issued: str | None,
        baseline: bool,
    ) -> dict[str, Any]:
        category = "vital-signs" if vital else "procedure"
        display = "Vital Signs" if vital else "Procedure"
        resource: dict[str, Any] = {"resourceType": "Observation"}
        if profile is not None:
            resource["meta"] = {"profile": [f"{PROFILE}{profile}"]}
        resource |= {
            "status": status,
            "category": [
                {"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": display}]}
            ],
            "subject": reference(self.patient_url),
            "partOf": [reference(self.procedure_url)],
            "effectiveDateTime": effective,
            "issued": issued,
        }
        if baseline:
            resource["note"] = [{"text": "Baseline reading, before the first step"}]
        return resource

    def add_observations(self) -> None:
        rows = self.view.vitals
        first_time = {r.reading_id: r.recorded_at for r in rows if r.id == r.reading_id}
        for row in rows:
            if not row.current:
                continue  # superseded by an amendment: the Observation shows the newest version
            reading = row.reading_id
            measured_at = first_time.get(reading, row.recorded_at)
            common: dict[str, Any] = {
                "status": "amended" if row.version > 1 else "final",
                "effective": stamp(measured_at),
                "issued": stamp(row.recorded_at),
                "baseline": row.baseline,
            }
            measures = row.measures
            urls: list[str] = []
            bp = self._blood_pressure(measures)
            if bp is not None:
                resource = self._observation(vital=True, profile="bp", **common) | bp
                urls.append(self.add(f"vitals/{reading}/blood_pressure", resource))
            for name, vital in VITALS.items():
                measure = measures.get(name)
                if measure is None or measure.status != "measured":
                    continue
                coding = [
                    {"system": LOINC, "code": code, **({"display": shown} if shown else {})}
                    for code, shown in vital.codes
                ]
                resource = self._observation(
                    vital=vital.vital_sign, profile=vital.profile, **common
                ) | {
                    "code": {"coding": coding, "text": vital.text},
                    "valueQuantity": {
                        "value": number(measure.value),
                        "unit": vital.unit,
                        "system": UCUM,
                        "code": vital.ucum,
                    },
                }
                urls.append(self.add(f"vitals/{reading}/{name}", resource))
            moment = utc_time(measured_at)
            if urls and moment is not None:
                self.readings.append((moment, urls))

    def _blood_pressure(self, measures: Mapping[str, Measure]) -> dict[str, Any] | None:
        entries = {name: measures.get(name) for name, _, _ in BP_COMPONENTS}
        if not any(e is not None and e.status == "measured" for e in entries.values()):
            return None
        components = []
        for name, code, shown in BP_COMPONENTS:
            entry = entries[name]
            component: dict[str, Any] = {
                "code": {"coding": [{"system": LOINC, "code": code, "display": shown}]}
            }
            if entry is not None and entry.status == "measured":
                component["valueQuantity"] = {
                    "value": number(entry.value),
                    "unit": "mmHg",
                    "system": UCUM,
                    "code": "mm[Hg]",
                }
            else:
                status = entry.status if entry is not None else None
                reason = ABSENT_REASON.get(status or "", "unknown")
                absent: dict[str, Any] = {"coding": [{"system": DATA_ABSENT, "code": reason}]}
                if entry is not None and entry.reason:
                    absent["text"] = entry.reason
                component["dataAbsentReason"] = absent
            components.append(component)
        code, shown = BP_PANEL
        return {
            "code": {
                "coding": [{"system": LOINC, "code": code, "display": shown}],
                "text": "Blood pressure",
            },
            "component": components,
        }

    # AdverseEvents -----------------------------------------------------------------------

    def _segment_at(self, onset: datetime) -> str | None:
        """The administration running at onset, else the last one started before it."""
        best: str | None = None
        for index, segment in enumerate(self.view.segments):
            started = utc_time(segment.started_at)
            assert started is not None
            if started > onset:
                break
            best = self.segment_urls[index]
            stopped = utc_time(segment.stopped_at)
            if stopped is None or stopped >= onset:
                return best
        return best

    def add_adverse_events(self) -> None:
        for reaction in self.view.reactions:
            onset = utc_time(reaction.onset_at)
            assert onset is not None
            resolved = utc_time(reaction.resolved_at)
            symptoms = _reaction_text(reaction)
            outcome = reaction.outcome or ("resolved" if resolved else "ongoing")
            graded = (("Brown", reaction.brown_grade), ("CTCAE", reaction.ctcae_grade))
            grades = [f"{name} grade {grade}" for name, grade in graded if grade is not None]
            text = f"Breakthrough hypersensitivity reaction during desensitization: {symptoms}"
            if grades:
                text += f" ({', '.join(grades)})"
            resource: dict[str, Any] = {
                "resourceType": "AdverseEvent",
                "actuality": "actual",
                "event": text_concept(text),
                "subject": reference(self.patient_url),
                "date": stamp(onset),
                "detected": stamp(onset),
                "outcome": {
                    "coding": [
                        {
                            "system": AE_OUTCOME,
                            "code": outcome,
                            "display": OUTCOME_DISPLAY.get(outcome, outcome),
                        }
                    ]
                },
            }
            severity = BROWN_SEVERITY.get(reaction.brown_grade or 0)
            if severity is not None:
                resource["severity"] = {
                    "coding": [
                        {"system": AE_SEVERITY, "code": severity, "display": severity.title()}
                    ]
                }
            suspect = self._segment_at(onset)
            if suspect is not None:
                resource["suspectEntity"] = [{"instance": reference(suspect)}]
            start = onset - ONSET_WINDOW_BEFORE
            effects = [
                url
                for moment, urls in self.readings
                if start <= moment and (resolved is None or moment <= resolved)
                for url in urls
            ]
            if effects:
                resource["extension"] = [
                    {"url": RESULTING_EFFECT, "valueReference": reference(url)} for url in effects
                ]
            self.add(f"reaction/{reaction.number}", resource)


def session_bundle(
    view: SessionView,
    patient: Mapping[str, Any],
    *,
    started_at: str | datetime | None = None,
    ended_at: str | datetime | None = None,
    installation_id: str = "",
    checks: Sequence[CheckRecord] = (),
) -> dict[str, Any]:
    """The FHIR R4 ``collection`` Bundle of one session (see the module docstring).

    ``patient``: mrn, family_name, given_name, birth_date (a date or ``YYYY-MM-DD``), sex.
    ``started_at``/``ended_at``: when the session started and when it was completed or aborted
    (the Procedure's performed period). ``installation_id`` keeps the UUIDs of two installations
    apart; the same inputs always give the same Bundle. ``checks``: the session's bag and
    patient checks in words (app.review.check_words), noted on the Procedure, and each bag scan
    and double check also on the administration whose pump start it cleared.
    """
    builder = _Builder(view, patient, started_at, ended_at, installation_id, checks)
    builder.add_patient()
    builder.add_procedure()
    builder.add_segments()
    builder.add_premedications_and_treatments()
    builder.add_observations()
    builder.add_adverse_events()
    return {
        "resourceType": "Bundle",
        "id": resource_id(builder.session_id, "bundle", installation_id),
        "type": "collection",
        "entry": builder.entries,
    }
