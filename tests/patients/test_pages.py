"""The patient pages over real HTTP on a real database: the list and its search, registering a
patient through the form (and refusals beside the field, nothing written), and the history page
with a reaction, the tolerance verdict and the suggestions."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
from bs4 import BeautifulSoup

from tests.patients.support import Rows, future_date, new_mrn
from tests.session.conftest import SessionServer, new_patient

# The manual-clock server and its signed-in team, fixtures of tests/session/conftest.py.
from tests.session.conftest import session_server as session_server
from tests.session.conftest import team as team
from tests.session.test_history_api import completed_session, patient_of, reaction_at_step_3
from tests.support import SignedInClient


def page(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def text_of(soup: BeautifulSoup, selector: str) -> str:
    found = soup.select_one(selector)
    assert found is not None, f"nothing matches {selector}"
    return found.get_text(" ", strip=True)


def form(**overrides: Any) -> dict[str, str]:
    values = {
        "mrn": new_mrn("P"),
        "family_name": f"Form{secrets.token_hex(3)}",
        "given_name": "Grace",
        "birth_date": "1979-06-30",
        "sex": "female",
        "weight_kg": "70.5",
        "asthma": "yes",
        "allergy_history": "Urticaria with ceftriaxone, 2024",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def register(client: SignedInClient, **overrides: Any) -> httpx.Response:
    return client.post("/patients/new", data=form(**overrides))


def test_the_list_searches_and_links_each_patient(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    family = f"Search{secrets.token_hex(4)}"
    first = nurse.post(
        "/api/v1/patients",
        json={
            "mrn": new_mrn("L"),
            "family_name": family,
            "given_name": "Alan",
            "birth_date": "1960-01-02",
            "weight_kg": 80,
            "asthma": False,
        },
    )
    assert first.status_code == 201, first.text
    patient = first.json()

    everyone = page(nurse.get("/patients"))
    assert everyone.select_one("#new-patient")["href"] == "/patients/new"

    found = nurse.get("/patients", params={"q": family.lower()})
    assert found.status_code == 200
    soup = page(found)
    rows = soup.select("#patients-table tbody tr")
    assert len(rows) == 1
    link = rows[0].select_one("a.row-link")
    assert link["href"] == f"/patients/{patient['id']}"
    assert link.get_text(strip=True) == f"{family}, Alan"
    assert patient["mrn"] in rows[0].get_text()
    assert soup.select_one("#search-q")["value"] == family.lower()

    by_mrn = page(nurse.get("/patients", params={"q": patient["mrn"][:6]}))
    assert f"/patients/{patient['id']}" in [a["href"] for a in by_mrn.select("a.row-link")]

    nothing = page(nurse.get("/patients", params={"q": "no-such-" + secrets.token_hex(4)}))
    assert nothing.select("#patients-table") == []
    assert "No patient matches" in text_of(nothing, "#no-match")


def test_registering_a_patient_through_the_form(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    nurse = signed_in("nurse")
    values = form(mrn="ab 12-34" + secrets.token_hex(2), asthma="no", weight_kg="70.5")
    response = nurse.post("/patients/new", data=values)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/patients/")
    patient_id = int(location.rsplit("/", 1)[1])

    stored = nurse.get(f"/api/v1/patients/{patient_id}").json()
    assert stored["mrn"] == values["mrn"].replace(" ", "")
    assert (stored["family_name"], stored["given_name"]) == (values["family_name"], "Grace")
    assert (stored["weight_kg"], stored["asthma"], stored["sex"]) == ("70.50", False, "female")
    assert stored["allergy_history"] == values["allergy_history"]

    shown = page(nurse.get(location))
    assert text_of(shown, "#patient-name") == f"{values['family_name']}, Grace"
    assert "No desensitization recorded" in text_of(shown, "#no-history")
    assert shown.select_one("#new-session")["href"] == f"/sessions/new?patient_id={patient_id}"


def test_a_refused_form_says_why_beside_the_field_and_saves_nothing(
    signed_in: Callable[[str], SignedInClient], database_url: str
) -> None:
    nurse = signed_in("nurse")
    rows = Rows(database_url)
    before = rows.snapshot()

    cases = [
        ({"weight_kg": "heavy"}, "weight_kg", "weight_kg must be a number of kilograms"),
        ({"weight_kg": "401"}, "weight_kg", "outside the accepted range"),
        ({"birth_date": future_date()}, "birth_date", "is in the future"),
        ({"mrn": "bad/mrn"}, "mrn", "may hold only letters, digits and '-'"),
        ({"family_name": "  "}, "family_name", "family_name is required"),
        ({"asthma": None}, "asthma", "answer yes or no"),
        ({"sex": "robot"}, "sex", "is not one of"),
    ]
    for overrides, field, reason in cases:
        values = form(**overrides)
        response = nurse.post("/patients/new", data=values)
        assert response.status_code == 422, (overrides, response.status_code)
        soup = page(response)
        assert reason in text_of(soup, f"#error-{field}"), overrides
        assert "Not saved" in text_of(soup, "#form-error")
        # What was typed is kept, so the nurse corrects one field rather than starting over.
        assert soup.select_one("#input-given_name")["value"] == "Grace"
        assert soup.select_one("#input-allergy_history").get_text() == values["allergy_history"]
        if field != "mrn":
            assert soup.select_one("#input-mrn")["value"] == values["mrn"]
        other_errors = [
            e.get_text(strip=True)
            for e in soup.select(".field-error")
            if e["id"] != f"error-{field}"
        ]
        assert not any(other_errors), other_errors
    assert rows.snapshot() == before  # no patient row, no audit row

    taken = register(nurse)
    assert taken.status_code == 303
    mrn = nurse.get(taken.headers["location"].replace("/patients/", "/api/v1/patients/")).json()[
        "mrn"
    ]
    again = register(nurse, mrn=mrn.lower())
    assert again.status_code == 409
    assert "already registered" in text_of(page(again), "#error-mrn")
    assert rows.patient_count(mrn) == 1


def test_who_sees_and_may_use_the_create_button(
    signed_in: Callable[[str], SignedInClient], database_url: str
) -> None:
    rows = Rows(database_url)
    for role in ("pharmacist", "auditor"):
        client = signed_in(role)
        listing = client.get("/patients")
        assert listing.status_code == 200
        assert page(listing).select("#new-patient") == []
        assert client.get("/patients/new").status_code == 403
        before = rows.snapshot()
        refused = client.post("/patients/new", data=form())
        assert refused.status_code == 403
        assert "may not register and edit patients" in text_of(page(refused), "#refusal-reason")
        assert rows.snapshot() == before
    admin = signed_in("admin")
    assert admin.get("/patients").status_code == 403  # no clinical powers
    physician = signed_in("physician")
    assert page(physician.get("/patients")).select_one("#new-patient") is not None
    assert physician.get("/patients/new").status_code == 200


def test_an_unknown_patient_is_a_clear_404(signed_in: Callable[[str], SignedInClient]) -> None:
    response = signed_in("nurse").get("/patients/999999")
    assert response.status_code == 404
    assert "no patient with id 999999" in response.text


def test_the_history_shows_reactions_the_tolerance_verdict_and_suggestions(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
) -> None:
    b = reaction_at_step_3(session_server, team)
    patient = patient_of(b)
    response = team["physician"].get(f"/patients/{patient}")
    assert response.status_code == 200
    soup = page(response)

    (drug,) = soup.select("section.drug")
    assert text_of(drug, ".drug-name") == "ceftazidime"
    # Minutes after an aborted session: not desensitized, said in large type.
    assert text_of(drug, ".verdict-title") == "Not desensitized: a full desensitization is needed"
    assert drug.select_one(".verdict-full") is not None
    assert "aborted or incomplete one does not count" in text_of(drug, ".verdict-message")

    (session_row,) = drug.select(".sessions-table tbody tr")
    cells = [td.get_text(" ", strip=True) for td in session_row.select("td")]
    assert cells[0] == f"#{b.sid}" and cells[2] == "aborted"
    assert session_row.select_one("a")["href"] == f"/sessions/{b.sid}"
    assert "2000 mg" in cells[4]

    (reaction,) = drug.select(".reactions-table tbody tr")
    cells = [td.get_text(" ", strip=True) for td in reaction.select("td")]
    assert cells[2] == "step 3"
    assert cells[3] == "Brown 2"
    assert cells[5] == "Flushing, Wheeze"

    suggestions = [li.get_text(" ", strip=True) for li in drug.select(".suggestions li")]
    assert any("insert an intermediate step between steps 2 and 3" in s for s in suggestions)
    assert any("16-step protocol (brigham-16)" in s for s in suggestions)
    assert any("aspirin 325 mg and montelukast 10 mg" in s for s in suggestions)
    assert any("Respiratory symptoms" in s for s in suggestions)

    copy = drug.select_one("a.copy-plan")
    assert copy["href"] == f"/sessions/new?patient_id={patient}&copy_from={b.sid}"
    assert soup.select_one("#new-session")["href"] == f"/sessions/new?patient_id={patient}"

    # The auditor reads the same history but is offered nothing to create.
    audit_view = page(team["auditor"].get(f"/patients/{patient}"))
    assert text_of(audit_view, ".verdict-title").startswith("Not desensitized")
    assert audit_view.select("a.copy-plan") == [] and audit_view.select("#new-session") == []

    # A session that reaches its target dose: tolerance may persist, then the bands follow.
    completed_session(session_server, team, patient)
    done = page(team["nurse"].get(f"/patients/{patient}"))
    assert text_of(done, ".verdict-title") == "Tolerance may persist: allergist to confirm"
    assert done.select_one(".verdict-within") is not None
    # A day and more later it is uncertain. (Steps, so nobody idles out meanwhile.)
    session_server.advance(hours=13)
    assert team["nurse"].get(f"/patients/{patient}").status_code == 200
    session_server.advance(hours=12)
    later = page(team["nurse"].get(f"/patients/{patient}"))
    assert text_of(later, ".verdict-title") == (
        "Tolerance uncertain: a full desensitization is recommended"
    )
    assert later.select_one(".verdict-uncertain") is not None
    session_server.advance(hours=12)
    assert team["nurse"].get(f"/patients/{patient}").status_code == 200
    session_server.advance(hours=12)
    lost = page(team["nurse"].get(f"/patients/{patient}"))
    assert text_of(lost, ".verdict-title") == "Tolerance lost: a full desensitization is needed"
    assert "more than 48 h: tolerance is lost" in text_of(lost, ".verdict-message")


def test_a_patient_with_two_drugs_gets_a_section_per_drug(
    session_server: SessionServer,
    team: dict[str, SignedInClient],
) -> None:
    nurse = team["nurse"]
    patient = new_patient(nurse)
    for drug, dose in (("carboplatin", "500"), ("ceftazidime", "2000")):
        created = nurse.post(
            "/api/v1/sessions",
            json={
                "patient_id": patient,
                "drug": drug,
                "protocol": {"template": "brigham-12", "dose": dose, "unit": "mg"},
                "index_reaction": {"reactions": ["urticaria"]},
            },
        )
        assert created.status_code == 201, created.text
    soup = page(nurse.get(f"/patients/{patient}"))
    names = sorted(text_of(section, ".drug-name") for section in soup.select("section.drug"))
    assert names == ["carboplatin", "ceftazidime"]
    # Never given: a full desensitization is needed for both.
    assert [text_of(s, ".verdict-title") for s in soup.select("section.drug")] == [
        "Not desensitized: a full desensitization is needed"
    ] * 2
    assert "No reactions recorded" in soup.get_text()
