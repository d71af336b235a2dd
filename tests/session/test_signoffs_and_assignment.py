"""What is being signed is shown beside the button that signs it, the state after signing is
said in words, and where the patient sits and who nurses them travels to the board — through
the real HTTP API on both databases."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from bs4 import BeautifulSoup

from app.audit import AuditEvent
from tests.review.test_exports import audit_entries
from tests.session.conftest import SessionServer, new_patient, session_body
from tests.session.test_api_walk import Bedside
from tests.support import SignedInClient


def page_text(client: SignedInClient, path: str) -> BeautifulSoup:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return BeautifulSoup(response.text, "html.parser")


def drafted(team: dict[str, SignedInClient], **extra: object) -> dict:
    patient = new_patient(team["nurse"])
    created = team["nurse"].post("/api/v1/sessions", json={**session_body(patient), **extra})
    assert created.status_code == 201, created.text
    return created.json()


def test_the_physician_sees_the_step_table_before_approving_and_who_approved_after(
    session_server: SessionServer, team: dict[str, SignedInClient], accounts
) -> None:
    session = drafted(team)
    sid = session["id"]
    page = page_text(team["physician"], f"/sessions/{sid}")
    table = page.find(id="plan-table")
    assert table is not None, "the plan to approve is shown as a table"
    rows = table.find("tbody").find_all("tr")
    assert len(rows) == len(session["plan"]["steps"]) == 12
    # The last row's cumulative dose is the target: the table adds up.
    cells = [td.get_text(" ", strip=True) for td in rows[-1].find_all("td")]
    assert any(
        Decimal(c.split()[0]) == Decimal(session["target_dose"]) for c in cells if c[:1].isdigit()
    )
    assert page.find(id="approve-plan") is not None
    assert page.find(id="approved-by") is None

    b = Bedside(session_server, team, sid)
    view = b.post("physician", "approve")
    approved = view["signoffs"]["approved"]
    assert approved["by"]["username"] == accounts["physician"].username
    assert approved["at"] is not None

    after = page_text(team["physician"], f"/sessions/{sid}")
    assert after.find(id="approve-plan") is None, "nothing offered that cannot be done"
    said = after.find(id="approved-by").get_text(" ", strip=True)
    assert said.startswith("Approved by ") and " at " in said


def test_the_pharmacist_sees_each_bag_recipe_and_is_offered_verification_only_after_approval(
    session_server: SessionServer, team: dict[str, SignedInClient]
) -> None:
    session = drafted(team)
    sid = session["id"]
    before = page_text(team["pharmacist"], f"/sessions/{sid}")
    assert before.find(id="verify-bags") is None
    assert "once the plan is approved" in before.find(id="verify-later").get_text()

    refused = team["pharmacist"].post(f"/api/v1/sessions/{sid}/verify-bags", json={})
    assert refused.status_code == 409
    # The refusal names the real reason, and the session is unchanged (no race to report).
    assert "approved by a physician" in refused.json()["detail"]
    assert refused.json()["current"]["version"] == session["version"]

    Bedside(session_server, team, sid).post("physician", "approve")
    page = page_text(team["pharmacist"], f"/sessions/{sid}")
    recipes = page.find(id="recipe-table").find_all("tbody", class_="recipe")
    assert len(recipes) == len(session["plan"]["bags"]) == 3
    for row, bag in zip(recipes, session["plan"]["bags"], strict=True):
        text = row.get_text(" ", strip=True)
        volume = Decimal(bag["volume_ml"])
        concentration = Decimal(bag["concentration"])
        assert "0.9 % sodium chloride" in text
        # The drug amount in the bag is concentration × volume, and the arithmetic says so.
        assert f"× {volume.normalize():f} mL =" in text
        in_bag = re.search(r"= ([0-9.]+) mg in the bag", text)
        assert in_bag is not None, text
        assert abs(Decimal(in_bag.group(1)) - concentration * volume) < Decimal("0.01")
    assert page.find(id="verify-bags") is not None

    view = Bedside(session_server, team, sid).post("pharmacist", "verify-bags")
    assert view["signoffs"]["bags_verified"]["by"]["name"]
    done = page_text(team["pharmacist"], f"/sessions/{sid}")
    assert done.find(id="verify-bags") is None
    signed = done.find(id="signoffs-done").get_text(" ", strip=True)
    assert "Plan approved by " in signed and "bags verified by " in signed


def test_a_chair_and_a_nurse_are_set_audited_and_shown_on_the_board(
    session_server: SessionServer, team: dict[str, SignedInClient], accounts, database_url: str
) -> None:
    nurse = accounts["nurse"].username
    session = drafted(team, location="Bay 2, chair 4", assigned_nurse=nurse, diluent="5 % glucose")
    assert session["location"] == "Bay 2, chair 4"
    assert session["assigned_nurse"]["username"] == nurse
    assert session["diluent"] == "5 % glucose"
    sid = session["id"]

    moved = team["nurse"].post(
        f"/api/v1/sessions/{sid}/assignment", json={"location": "Bay 3, chair 1"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["location"] == "Bay 3, chair 1"
    assert moved.json()["assigned_nurse"] is None, "an omitted nurse clears the assignment"
    again = team["nurse"].post(
        f"/api/v1/sessions/{sid}/assignment",
        json={"location": "Bay 3, chair 1", "assigned_nurse": nurse},
    )
    assert again.status_code == 200, again.text

    entries = [
        e
        for e in audit_entries(database_url, AuditEvent.action == "session.assign")
        if e["entity_id"] == str(sid)
    ]
    assert [json.loads(e["after_json"])["location"] for e in entries] == [
        "Bay 3, chair 1",
        "Bay 3, chair 1",
    ]
    assert json.loads(entries[0]["before_json"])["location"] == "Bay 2, chair 4"

    Bedside(session_server, team, sid).post("physician", "approve")
    Bedside(session_server, team, sid).post("pharmacist", "verify-bags")
    board = page_text(team["physician"], "/board")
    tile = board.find(id=f"tile-{sid}")
    assert tile is not None
    where = tile.find(class_="tile-where").get_text(" ", strip=True)
    assert "Bay 3, chair 1" in where and "nurse" in where


def test_bad_assignments_change_nothing(
    session_server: SessionServer, team: dict[str, SignedInClient], accounts
) -> None:
    session = drafted(team, location="Chair 1")
    sid = session["id"]
    for body, field in (
        ({"assigned_nurse": accounts["physician"].username}, "assigned_nurse"),
        ({"assigned_nurse": "nobody-by-this-name"}, "assigned_nurse"),
        ({"location": "x" * 61}, "location"),
        ({"location": "Chair 2", "bed": 3}, "bed"),
    ):
        refused = team["nurse"].post(f"/api/v1/sessions/{sid}/assignment", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.text
    assert (
        team["auditor"]
        .post(f"/api/v1/sessions/{sid}/assignment", json={"location": "Chair 9"})
        .status_code
        == 403
    )
    view = team["nurse"].get(f"/api/v1/sessions/{sid}").json()
    assert view["location"] == "Chair 1" and view["version"] == session["version"]
    assert (
        team["nurse"]
        .post(
            "/api/v1/sessions",
            json={**session_body(new_patient(team["nurse"])), "assigned_nurse": "no-such-nurse"},
        )
        .status_code
        == 422
    )
