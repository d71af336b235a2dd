"""The new-session page over real HTTP on a real database: the form, its live preview fragment,
creating a session ("Submit for approval"), refusals beside the field with nothing written, a
copy of an earlier plan, and who may use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from bs4 import BeautifulSoup

from app.protocol.form import FIELDS_WITH_ERROR_SLOT
from app.protocol.screening import REACTION_LABELS
from tests.session.conftest import SessionServer, new_patient
from tests.session.test_history_api import patient_of, reaction_at_step_3
from tests.support import SignedInClient


def page(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def text_of(soup: BeautifulSoup, selector: str) -> str:
    found = soup.select_one(selector)
    assert found is not None, f"nothing matches {selector}"
    return found.get_text(" ", strip=True)


def session_form(patient_id: int, **overrides: Any) -> dict[str, Any]:
    """What the browser posts for a new plan from scratch."""
    values: dict[str, Any] = {
        "patient_id": str(patient_id),
        "drug": "ceftazidime",
        "route": "IV",
        "reactions": ["urticaria"],
        "fev1_percent_predicted": "",
        "template": "brigham-12",
        "dose": "2000",
        "unit": "mg",
        "final_rate": "",
        "bag_volume": "",
        "step_minutes": "",
        "bags": "",
        "start_fraction": "",
        "factor": "",
        "steps": "",
        "interval": "",
        "doses": "",
        "observation_minutes": "30",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sessions_of(client: SignedInClient, patient_id: int) -> list[dict]:
    history = client.get(f"/api/v1/patients/{patient_id}/history").json()
    return [s for drug in history["drugs"] for s in drug["sessions"]]


def steps_rows(soup: BeautifulSoup) -> list[list[str]]:
    return [
        [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])]
        for tr in soup.select("#steps-table tbody tr")
    ]


def test_the_form_asks_the_screening_questions_and_wires_the_live_preview(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    patient = new_patient(nurse, asthma=True)
    response = nurse.get(f"/sessions/new?patient_id={patient}")
    assert response.status_code == 200
    soup = page(response)

    assert "Doe, Jane" in text_of(soup, "#session-patient")
    assert soup.select_one("input[name=patient_id]")["value"] == str(patient)
    assert soup.select("input[name=copy_from]") == []
    codes = {box["value"] for box in soup.select("input[name=reactions]")}
    assert codes == set(REACTION_LABELS)
    for flag in ("hypotension", "desaturation", "beta_blocker", "cardiac_disease"):
        assert soup.select_one(f"input[type=checkbox][name={flag}]") is not None
    assert soup.select_one("#input-fev1_percent_predicted") is not None
    # Asthma: spirometry comes ticked.
    assert soup.select_one("#input-spirometry_required").has_attr("checked")
    assert soup.select_one("#input-observation_minutes")["value"] == "30"

    live = soup.select_one("#protocol-fields")
    assert live["hx-get"] == "/sessions/new/preview"
    assert live["hx-trigger"] == "input changed delay:300ms"
    assert live["hx-target"] == "#protocol-result"
    # Every error slot the preview fragment fills out of band is on the page.
    for name in FIELDS_WITH_ERROR_SLOT:
        assert soup.select_one(f"#error-{name}") is not None, name
        assert live.select_one(f"[name={name}]") is not None, name
    # No dose is assumed for the drug: the table waits for one.
    assert soup.select_one("#input-dose")["value"] == ""
    assert "Enter the target dose" in text_of(soup, "#preview-placeholder")
    assert text_of(soup, "#submit-session") == "Submit for approval"
    assert soup.select_one("#session-form input[name=csrf_token]")["value"] == nurse.csrf_token
    assert all(script.get("src") for script in soup.find_all("script"))
    assert soup.select("[style]") == [] and "onclick" not in response.text


def test_without_a_patient_the_page_asks_which(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    patient = new_patient(nurse)
    mrn = nurse.get(f"/api/v1/patients/{patient}").json()["mrn"]
    soup = page(nurse.get("/sessions/new", params={"q": mrn}))
    (choice,) = soup.select("#patient-choices a")
    assert choice["href"] == f"/sessions/new?patient_id={patient}"
    assert soup.select("#session-form") == []
    unknown = nurse.get("/sessions/new?patient_id=999999")
    assert unknown.status_code == 404
    assert "no patient with id 999999" in text_of(page(unknown), "#error-general")


def test_the_preview_fragment_follows_the_parameters(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("pharmacist")
    params = {name: "" for name in FIELDS_WITH_ERROR_SLOT}
    params |= {"template": "brigham-12", "dose": "1000", "unit": "mg"}
    response = nurse.get("/sessions/new/preview", params=params)
    assert response.status_code == 200
    assert "hx-replace-url" not in response.headers  # the address stays /sessions/new
    soup = page(response)
    rows = steps_rows(soup)
    assert len(rows) == 12 and rows[-1][6] == "1000.000"
    assert text_of(soup, "#total-minutes") == "339.375 min"
    for name in FIELDS_WITH_ERROR_SLOT:
        slot = soup.find(id=f"error-{name}")
        assert slot["hx-swap-oob"] == "true" and slot.get_text(strip=True) == ""

    refused = nurse.get("/sessions/new/preview", params={**params, "dose": "-5"})
    assert refused.status_code == 422
    soup = page(refused)
    assert soup.find(id="error-dose").get_text(strip=True) == "dose must be greater than 0, got -5"
    assert soup.select("#steps-table") == []


def test_submitting_creates_the_session_as_the_api_would(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    patient = new_patient(nurse)
    values = session_form(
        patient,
        drug="  Carboplatin ",
        template="brigham-8",
        dose="500",
        final_rate="60",
        reactions=["urticaria", "bronchospasm"],
        cardiac_disease="on",
        spirometry_required="on",
        observation_minutes="45",
    )
    response = nurse.post("/sessions/new", data=values)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    session_id = int(location.removeprefix("/sessions/"))
    assert location == f"/sessions/{session_id}"

    created = nurse.get(f"/api/v1/sessions/{session_id}").json()
    assert created["patient_id"] == patient and created["drug"] == "Carboplatin"
    assert (created["template"], created["target_dose"], created["unit"]) == (
        "brigham-8",
        "500",
        "mg",
    )
    assert created["status"] == "planned" and created["route"] == "IV"
    assert len(created["plan"]["steps"]) == 8
    assert created["plan"]["steps"][-1]["rate_ml_h"] == "60"
    assert created["checklist"]["spirometry_required"] is True
    assert created["risk_tier"] == "high"  # cardiac disease
    assert created["screening"]["suggested_template"] == "brigham-16"
    assert created["screening"]["tolerance"]["needs_full_desensitization"] is True


def test_bad_input_is_refused_beside_its_field_and_nothing_is_created(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    patient = new_patient(nurse)
    cases = [
        ({"dose": "-5"}, "dose", "dose must be greater than 0, got -5"),
        ({"dose": ""}, "dose", "dose is required"),
        ({"final_rate": "fast"}, "final_rate", "final rate must be a number"),
        ({"template": "brigham-99"}, "template", "unknown template"),
        ({"reactions": []}, "reactions", "describe the index reaction"),
        ({"reactions": ["nonsense"]}, "reactions", "unknown index reaction 'nonsense'"),
        ({"reactions": ["urticaria", "sjs"]}, "index_reaction", "Do not desensitize"),
        ({"fev1_percent_predicted": "lots"}, "fev1_percent_predicted", "FEV1 must be a number"),
        ({"fev1_percent_predicted": "NaN"}, "fev1_percent_predicted", "FEV1 must be a number"),
        ({"fev1_percent_predicted": "250"}, "fev1_percent_predicted", "between 0 and 200"),
        ({"observation_minutes": "NaN"}, "observation_minutes", "0 to 1440"),
        ({"drug": "   "}, "drug", "drug is required"),
        ({"drug": "x" * 121}, "drug", "at most 120 characters"),
        ({"route": "IT"}, "route", "route must be one of"),
        ({"observation_minutes": "-1"}, "observation_minutes", "0 to 1440"),
    ]
    for overrides, field, reason in cases:
        response = nurse.post("/sessions/new", data=session_form(patient, **overrides))
        assert response.status_code == 422, (overrides, response.status_code)
        soup = page(response)
        assert reason in text_of(soup, f"#error-{field}"), (overrides, field)
        # The form comes back as typed.
        assert soup.select_one("input[name=patient_id]")["value"] == str(patient)
        for code in overrides.get("reactions", ["urticaria"]):
            box = soup.select_one(f"#reaction-{code}")
            assert box is None or box.has_attr("checked"), code
    assert sessions_of(nurse, patient) == []

    # A refused dose shows the reason in the preview too; the rest of the page still works.
    soup = page(nurse.post("/sessions/new", data=session_form(patient, dose="abc")))
    assert soup.select_one("#input-dose")["value"] == "abc"
    assert soup.select_one("#protocol-result .empty-result") is not None

    gone = nurse.post("/sessions/new", data=session_form(999999))
    assert gone.status_code == 422
    assert "no patient" in gone.text


def test_copying_the_previous_plan(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    b = reaction_at_step_3(session_server, team)
    patient = patient_of(b)
    nurse = team["nurse"]

    response = nurse.get(f"/sessions/new?patient_id={patient}&copy_from={b.sid}")
    assert response.status_code == 200
    soup = page(response)
    assert text_of(soup, "#copy-title") == f"Copying the plan of session {b.sid}"
    assert "Brigham 12 steps" in text_of(soup, "#copy-source")
    assert "urticaria" in text_of(soup, "#copy-source")  # the copied index reaction
    assert soup.select_one("input[name=copy_from]")["value"] == str(b.sid)
    drug = soup.select_one("#input-drug")
    assert drug["value"] == "ceftazidime" and drug.has_attr("readonly")
    # No protocol fields or screening questions: they are copied.
    assert soup.select("#input-dose") == [] and soup.select("input[name=reactions]") == []
    # The drug's history: the verdict and what the reaction suggests.
    # an aborted session leaves no tolerance behind
    assert text_of(soup, "#drug-history .verdict-title") == (
        "Not desensitized: a full desensitization is needed"
    )
    suggestions = text_of(soup, "#drug-history .suggestions")
    assert "between steps 2 and 3" in suggestions and "brigham-16" in suggestions

    copy = {
        "patient_id": str(patient),
        "copy_from": str(b.sid),
        "drug": "ceftazidime",
        "route": "IV",
        "observation_minutes": "60",
    }
    posted = nurse.post("/sessions/new", data=copy)
    assert posted.status_code == 303, posted.text
    new_id = int(posted.headers["location"].removeprefix("/sessions/"))
    new = nurse.get(f"/api/v1/sessions/{new_id}").json()
    old = b.get()
    assert new["screening"]["copied_from"] == b.sid
    assert new["template"] == old["template"] and new["target_dose"] == old["target_dose"]
    assert [s["rate_ml_h"] for s in new["plan"]["steps"]] == [
        s["rate_ml_h"] for s in old["plan"]["steps"]
    ]
    assert [s["code"] for s in new["screening"]["suggestions"]][:2] == ["insert_step", "template"]

    # Another patient's session, or another drug, is refused beside copy_from; nothing created.
    other = new_patient(nurse)
    wrong = nurse.get(f"/sessions/new?patient_id={other}&copy_from={b.sid}")
    assert "belongs to another patient" in text_of(page(wrong), "#error-copy_from")
    assert page(wrong).select("#session-form") == []
    refused = nurse.post(
        "/sessions/new",
        data={**copy, "patient_id": str(other)},
    )
    assert refused.status_code == 422
    assert "belongs to another patient" in text_of(page(refused), "#error-copy_from")
    other_drug = nurse.post(
        "/sessions/new",
        data={**copy, "drug": "cefepime"},
    )
    assert other_drug.status_code == 422
    assert "copy a plan of the same drug" in text_of(page(other_drug), "#error-copy_from")
    assert sessions_of(nurse, other) == []
    assert {s["id"] for s in sessions_of(nurse, patient)} == {b.sid, new_id}


def test_only_those_who_may_draft_a_plan_are_offered_it(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    patient = new_patient(nurse)
    auditor = signed_in("auditor")
    history = page(auditor.get(f"/patients/{patient}"))
    assert history.select("#new-session") == []
    assert auditor.get(f"/sessions/new?patient_id={patient}").status_code == 403
    refused = auditor.post("/sessions/new", data=session_form(patient))
    assert refused.status_code == 403
    assert "may not draft a desensitization plan" in text_of(page(refused), "#refusal-reason")
    assert sessions_of(nurse, patient) == []

    pharmacist = signed_in("pharmacist")  # drafts plans, does not register patients
    assert page(pharmacist.get(f"/patients/{patient}")).select_one("#new-session") is not None
    assert pharmacist.get(f"/sessions/new?patient_id={patient}").status_code == 200
