"""The patients API over real HTTP, on every database under test: what it answers, and what it
writes (the patient row and its audit row) or refuses to write."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.patients import rules
from tests.patients.support import Rows, future_date, new_mrn, patient_body, today_utc
from tests.support import SignedInClient

SignIn = Callable[[str], SignedInClient]


@pytest.fixture
def rows(database_url: str) -> Rows:
    return Rows(database_url)


def create(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/patients", json=patient_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def send_json(client: httpx.Client, method: str, url: str, body: object) -> httpx.Response:
    """Like ``json=``, but with ASCII escapes, so bodies that are valid JSON yet hold
    characters UTF-8 cannot encode (a lone surrogate) still reach the server."""
    return client.request(
        method, url, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def names_field(response: httpx.Response, field: str) -> bool:
    """Whether a 422 answer points at ``field``: our own refusals say it in ``field`` and in
    the message; shape errors from the request model carry it in ``loc``."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return response.json()["field"] == field and field in detail
    return any(field in error["loc"] for error in detail)


# --- creating and reading ----------------------------------------------------------------------


def test_a_nurse_registers_a_patient_and_the_audit_log_records_it(
    signed_in: SignIn, rows: Rows
) -> None:
    nurse = signed_in("nurse")
    body = patient_body()
    response = nurse.post("/api/v1/patients", json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: created[k] for k in ("mrn", "family_name", "given_name", "sex", "asthma")} == {
        k: body[k] for k in ("mrn", "family_name", "given_name", "sex", "asthma")
    }
    assert created["birth_date"] == "1985-12-10"
    assert created["weight_kg"] == "61.50"
    assert created["allergy_history"] == body["allergy_history"]
    assert created["age_years"] == rules.age_in_years(
        datetime.fromisoformat("1985-12-10").date(), today_utc()
    )
    assert created["created_at"] == created["updated_at"]

    (event,) = rows.audit_of(created["id"])
    assert event.action == "patient.create"
    assert (event.entity, event.entity_id) == ("patient", str(created["id"]))
    assert (event.actor_username, event.actor_role) == (nurse.account.username, "nurse")
    assert event.actor_id == created["created_by"]
    assert event.client_addr == "127.0.0.1"
    assert event.request_id
    assert event.before is None
    assert event.after == {
        "mrn": body["mrn"],
        "family_name": "Lovelace",
        "given_name": "Ada",
        "birth_date": "1985-12-10",
        "sex": "female",
        "weight_kg": "61.50",
        "asthma": True,
        "allergy_history": body["allergy_history"],
    }


def test_get_returns_what_was_registered(signed_in: SignIn) -> None:
    created = create(signed_in("physician"), sex=None, allergy_history=None, asthma=False)
    for role in ("nurse", "physician", "pharmacist", "auditor"):
        response = signed_in(role).get(f"/api/v1/patients/{created['id']}")
        assert response.status_code == 200, (role, response.text)
        assert response.json() == created
    assert created["sex"] is None and created["allergy_history"] is None


def test_the_mrn_is_kept_without_spaces(signed_in: SignIn) -> None:
    mrn = new_mrn()
    created = create(signed_in("nurse"), mrn=f"  {mrn[:4]} {mrn[4:]} ")
    assert created["mrn"] == mrn


def test_optional_fields_may_be_left_out(signed_in: SignIn) -> None:
    body = patient_body()
    del body["sex"], body["allergy_history"]
    response = signed_in("nurse").post("/api/v1/patients", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["sex"] is None


def test_an_unknown_patient_is_a_clear_404(signed_in: SignIn, rows: Rows) -> None:
    nurse = signed_in("nurse")
    before = rows.snapshot()
    missing = 2_000_000_000
    response = nurse.get(f"/api/v1/patients/{missing}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"no patient with id {missing}"
    response = nurse.patch(f"/api/v1/patients/{missing}", json={"weight_kg": 70})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no patient with id {missing}"
    assert rows.snapshot() == before


@pytest.mark.parametrize("patient_id", ["abc", "0", "-1", "99999999999999999999"])
def test_an_id_that_cannot_exist_is_refused_not_a_server_error(
    signed_in: SignIn, patient_id: str
) -> None:
    response = signed_in("auditor").get(f"/api/v1/patients/{patient_id}")
    assert response.status_code == 422, response.text
    assert names_field(response, "patient_id")


# --- listing and searching ---------------------------------------------------------------------


def test_search_by_name_or_mrn_prefix_ignoring_case_ordered_by_family_name(
    signed_in: SignIn,
) -> None:
    nurse = signed_in("nurse")
    tag = secrets.token_hex(3)
    zed = create(nurse, family_name=f"Zed{tag}", given_name="Anna")
    abel = create(nurse, family_name=f"abel{tag}", given_name="Bea")
    moss = create(nurse, family_name="Moss", given_name=f"Carl{tag}")
    other = create(nurse, family_name="Unrelated", given_name="Person")

    def search(q: str) -> list[int]:
        response = signed_in("pharmacist").get("/api/v1/patients", params={"q": q})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()]

    assert search(tag.upper()) == [abel["id"], moss["id"], zed["id"]]
    assert search(f"  {tag}  ") == [abel["id"], moss["id"], zed["id"]]
    assert search(f"bea abel{tag}") == [abel["id"]]  # given and family name together
    assert search(zed["mrn"].lower()[:9]) == [zed["id"]]  # a prefix of the MRN
    assert search(other["mrn"][3:]) == []  # the MRN matches by prefix only
    assert search(f"%{tag}") == []  # wildcards are plain characters
    assert search(f"_bel{tag}") == []


def test_listing_without_a_query_returns_at_most_fifty_ordered_by_family_name(
    signed_in: SignIn,
) -> None:
    nurse = signed_in("nurse")
    tag = secrets.token_hex(3)
    for i in range(52):
        create(nurse, family_name=f"Many{tag}-{i:02d}")
    everyone = signed_in("auditor").get("/api/v1/patients")
    assert everyone.status_code == 200
    assert len(everyone.json()) == 50
    families = [p["family_name"].lower() for p in everyone.json()]
    assert families == sorted(families)

    mine = signed_in("auditor").get("/api/v1/patients", params={"q": f"many{tag}"}).json()
    assert [p["family_name"] for p in mine] == [f"Many{tag}-{i:02d}" for i in range(50)]


def test_a_search_for_characters_no_record_can_hold_finds_nothing(signed_in: SignIn) -> None:
    response = signed_in("nurse").get("/api/v1/patients", params={"q": "Love\x00lace"})
    assert response.status_code == 200
    assert response.json() == []


def test_a_search_longer_than_the_limit_is_refused(signed_in: SignIn) -> None:
    response = signed_in("nurse").get("/api/v1/patients", params={"q": "x" * 101})
    assert response.status_code == 422
    assert names_field(response, "q")


# --- correcting --------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_audits_before_and_after(
    signed_in: SignIn, rows: Rows
) -> None:
    created = create(signed_in("nurse"))
    physician = signed_in("physician")
    response = physician.patch(
        f"/api/v1/patients/{created['id']}",
        json={"weight_kg": "58.2", "allergy_history": None, "family_name": "Byron"},
    )

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["weight_kg"] == "58.20"
    assert updated["allergy_history"] is None
    assert updated["family_name"] == "Byron"
    unchanged = ("mrn", "given_name", "birth_date", "sex", "asthma", "created_at", "created_by")
    assert {k: updated[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )
    assert physician.get(f"/api/v1/patients/{created['id']}").json() == updated

    create_event, update_event = rows.audit_of(created["id"])
    assert create_event.action == "patient.create"
    assert update_event.action == "patient.update"
    assert (update_event.actor_username, update_event.actor_role) == (
        physician.account.username,
        "physician",
    )
    assert update_event.before == {
        "weight_kg": "61.50",
        "allergy_history": created["allergy_history"],
        "family_name": "Lovelace",
    }
    assert update_event.after == {
        "weight_kg": "58.20",
        "allergy_history": None,
        "family_name": "Byron",
    }


def test_patch_with_the_values_already_recorded_writes_nothing(
    signed_in: SignIn, rows: Rows
) -> None:
    created = create(signed_in("nurse"))
    before = rows.snapshot()
    response = signed_in("nurse").patch(
        f"/api/v1/patients/{created['id']}",
        json={"weight_kg": 61.5, "mrn": created["mrn"], "sex": "female"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == created
    assert rows.snapshot() == before


def test_an_empty_patch_is_refused(signed_in: SignIn, rows: Rows) -> None:
    created = create(signed_in("nurse"))
    before = rows.snapshot()
    response = signed_in("nurse").patch(f"/api/v1/patients/{created['id']}", json={})
    assert response.status_code == 422
    assert "nothing to change" in response.json()["detail"]
    assert rows.snapshot() == before


# --- duplicates --------------------------------------------------------------------------------


def test_a_duplicate_mrn_is_refused_with_409_and_nothing_is_written(
    signed_in: SignIn, rows: Rows
) -> None:
    nurse = signed_in("nurse")
    first = create(nurse)
    before = rows.snapshot()
    for mrn in (first["mrn"], first["mrn"].lower(), f" {first['mrn']} "):
        response = nurse.post("/api/v1/patients", json=patient_body(mrn=mrn, family_name="Twin"))
        assert response.status_code == 409, response.text
        assert response.json()["field"] == "mrn"
        assert "already registered" in response.json()["detail"]
        assert str(first["id"]) in response.json()["detail"]
    assert rows.snapshot() == before
    assert rows.patient_count(first["mrn"]) == 1


def test_changing_an_mrn_to_one_in_use_is_refused_with_409(signed_in: SignIn, rows: Rows) -> None:
    nurse = signed_in("nurse")
    first = create(nurse)
    second = create(nurse)
    before = rows.snapshot()
    response = nurse.patch(f"/api/v1/patients/{second['id']}", json={"mrn": first["mrn"].lower()})
    assert response.status_code == 409, response.text
    assert rows.snapshot() == before
    assert nurse.get(f"/api/v1/patients/{second['id']}").json() == second


# --- bad input ---------------------------------------------------------------------------------

BAD_INPUT = [
    ("birth_date", future_date()),
    ("birth_date", "1850-01-01"),
    ("birth_date", "10/12/1985"),
    ("birth_date", 19851210),
    ("birth_date", None),
    ("weight_kg", 400.01),
    ("weight_kg", 0.2),
    ("weight_kg", -70),
    ("weight_kg", "seventy"),
    ("weight_kg", "NaN"),
    ("weight_kg", 70.555),
    ("weight_kg", True),
    ("mrn", "AB/123"),
    ("mrn", "-123"),
    ("mrn", "   "),
    ("mrn", "X" * 33),
    ("mrn", "ÄB123"),
    ("mrn", 12345),
    ("sex", "alien"),
    ("sex", 1),
    ("family_name", ""),
    ("given_name", "Ada\nDROP"),
    ("family_name", "L" * 101),
    ("asthma", "yes"),
    ("asthma", 1),
    ("asthma", None),
    ("allergy_history", "x" * 4001),
    ("allergy_history", "nul\x00byte"),
    ("family_name", "lone \ud800 surrogate"),
    ("allergy_history", "lone \udfff surrogate"),
    ("shoe_size", 42),
]


@pytest.mark.parametrize(("field", "value"), BAD_INPUT, ids=lambda v: repr(v)[:20])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    signed_in: SignIn, rows: Rows, field: str, value: object
) -> None:
    before = rows.snapshot()
    response = send_json(
        signed_in("nurse"), "POST", "/api/v1/patients", patient_body(**{field: value})
    )
    assert response.status_code == 422, response.text
    assert names_field(response, field), response.text
    assert rows.snapshot() == before


@pytest.mark.parametrize("field", sorted(rules.REQUIRED))
def test_a_missing_required_field_is_refused(signed_in: SignIn, rows: Rows, field: str) -> None:
    body = patient_body()
    del body[field]
    before = rows.snapshot()
    response = signed_in("nurse").post("/api/v1/patients", json=body)
    assert response.status_code == 422, response.text
    assert names_field(response, field), response.text
    assert rows.snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [*BAD_INPUT, ("mrn", None), ("family_name", None), ("weight_kg", None)],
    ids=lambda v: repr(v)[:20],
)
def test_a_bad_correction_is_refused_and_the_record_is_unchanged(
    signed_in: SignIn, rows: Rows, field: str, value: object
) -> None:
    nurse = signed_in("nurse")
    created = create(nurse)
    before = rows.snapshot()
    response = send_json(nurse, "PATCH", f"/api/v1/patients/{created['id']}", {field: value})
    assert response.status_code == 422, response.text
    assert names_field(response, field), response.text
    assert rows.snapshot() == before
    assert nurse.get(f"/api/v1/patients/{created['id']}").json() == created


def test_a_body_that_is_not_json_is_a_422(signed_in: SignIn, rows: Rows) -> None:
    before = rows.snapshot()
    response = signed_in("nurse").post(
        "/api/v1/patients", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert rows.snapshot() == before


# --- who may ------------------------------------------------------------------------------------


def test_a_physician_may_register_too(signed_in: SignIn) -> None:
    create(signed_in("physician"))


@pytest.mark.parametrize("role", ["pharmacist", "auditor", "admin"])
def test_roles_without_write_permission_get_403_on_post_and_patch(
    signed_in: SignIn, rows: Rows, role: str
) -> None:
    created = create(signed_in("nurse"))
    client = signed_in(role)
    before = rows.snapshot()
    response = client.post("/api/v1/patients", json=patient_body())
    assert response.status_code == 403
    assert "may not register and edit patients" in response.json()["detail"]
    response = client.patch(f"/api/v1/patients/{created['id']}", json={"weight_kg": 80})
    assert response.status_code == 403
    assert rows.snapshot() == before


def test_an_admin_may_not_see_patients(signed_in: SignIn) -> None:
    created = create(signed_in("nurse"))
    admin = signed_in("admin")
    for path in ("/api/v1/patients", f"/api/v1/patients/{created['id']}"):
        response = admin.get(path)
        assert response.status_code == 403, path
        detail = response.json()["detail"]
        assert "may not see patients" in detail
        assert "auditor, nurse, pharmacist, physician" in detail


def test_a_write_without_the_csrf_token_is_refused(signed_in: SignIn, rows: Rows) -> None:
    nurse = signed_in("nurse")
    before = rows.snapshot()
    response = nurse.post(
        "/api/v1/patients", json=patient_body(), headers={"x-csrf-token": "forged"}
    )
    assert response.status_code == 403
    assert rows.snapshot() == before
