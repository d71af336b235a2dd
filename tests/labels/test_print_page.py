"""The bag labels' print page over real HTTP: one label per bag that scans now with the
patient, the bag's contents, who prepared it, its expiry, its copy and its code (as a QR symbol
and in groups); a reprint shows copy 2 and leaves the voided code out; who may read it; the
two sizes and a refused unknown size."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
from bs4 import BeautifulSoup

from app import localtime
from app.live.present import amount, trimmed
from tests.labels.conftest import Scanning, made_ready
from tests.session.conftest import SessionServer
from tests.support import Account, SignedInClient


def _page(client: SignedInClient, sid: int, size: str | None = None) -> BeautifulSoup:
    params = {"size": size} if size else {}
    answer = client.get(f"/sessions/{sid}/labels/print", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return BeautifulSoup(answer.text, "html.parser")


def _text(node) -> str:
    return " ".join(node.get_text(" ", strip=True).split())


def _local(iso: str) -> str:
    return localtime.local(datetime.fromisoformat(iso), "%Y-%m-%d %H:%M %Z")


def test_the_print_page_shows_every_bag_with_its_facts_and_code(
    scanning_server: SessionServer, ward: dict[str, SignedInClient], accounts: dict[str, Account]
) -> None:
    b = made_ready(scanning_server, ward)
    view = b.get()
    patient = ward["nurse"].get(f"/api/v1/patients/{view['patient_id']}").json()
    labels = b.labels()
    bags = view["plan"]["bags"]
    page = _page(ward["nurse"], b.sid)
    cards = page.select("article.bag-label")
    assert [int(c["data-bag"]) for c in cards] == sorted(labels) == [b["number"] for b in bags]
    for bag in bags:
        label = labels[bag["number"]]
        card = page.select_one(f"#label-bag-{bag['number']}")
        assert card is not None and card["data-code"] == label["code"]
        text = _text(card)
        volume, concentration = Decimal(bag["volume_ml"]), Decimal(bag["concentration"])
        assert f"{patient['family_name']}, {patient['given_name']}" in text
        assert f"MRN {patient['mrn']}" in text and f"born {patient['birth_date']}" in text
        assert view["drug"] in text
        assert f"Bag {bag['number']} of {len(bags)}" in text
        drug_in_bag = _text(card.select_one(".label-amount"))
        assert drug_in_bag == f"{amount(concentration * volume, 4)} mg"
        assert f"Volume {trimmed(volume)} mL" in text
        assert f"Diluent {view['diluent']}" in text
        assert f"Concentration {amount(concentration, 4)} mg/mL" in text
        pharmacist = view["signoffs"]["bags_verified"]["by"]["name"]
        assert f"Prepared {pharmacist}, {_local(label['prepared_at'])}" in text
        assert accounts["pharmacist"].username in pharmacist
        assert f"Expires {_local(label['expires_at'])}" in text
        assert _text(card.select_one(".label-copy")) == "copy 1"
        assert _text(card.select_one(".label-printed")) == label["printed"]
        svg = card.select_one("svg.qr")
        assert svg is not None and svg.get("viewbox") and svg.select_one("path")
        assert not card.select("[data-reprint]")  # a nurse does not reprint
    assert page.select_one("#print-labels") is not None
    assert page.select_one('link[href*="labels-a4.css"]') is not None


def test_a_reprint_shows_copy_2_and_no_longer_the_voided_code(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    old = b.labels()[2]
    page = _page(ward["pharmacist"], b.sid)
    button = page.select_one("#reprint-bag-2")
    assert button is not None
    assert button["data-reprint"] == f"/api/v1/sessions/{b.sid}/bags/2/labels"
    b.post("pharmacist", "bags/2/labels")
    new = b.labels()[2]
    answer = ward["nurse"].get(f"/sessions/{b.sid}/labels/print")
    assert old["code"] not in answer.text and old["printed"] not in answer.text
    page = BeautifulSoup(answer.text, "html.parser")
    card = page.select_one("#label-bag-2")
    assert card is not None and card["data-code"] == new["code"] and card["data-copy"] == "2"
    assert _text(card.select_one(".label-copy")) == "copy 2 (reprint)"
    assert _text(card.select_one(".label-printed")) == new["printed"]
    assert len(page.select("article.bag-label")) == 3  # one per bag, the void copy left out
    assert _text(page.select_one("#label-bag-1 .label-copy")) == "copy 1"


def test_who_may_open_the_print_page(
    scanning_server: SessionServer, ward: dict[str, SignedInClient], accounts: dict[str, Account]
) -> None:
    b = made_ready(scanning_server, ward)
    for role in ("nurse", "physician", "pharmacist", "auditor"):
        page = _page(ward[role], b.sid)
        assert len(page.select("article.bag-label")) == 3, role
        assert bool(page.select("[data-reprint]")) == (role == "pharmacist"), role
    admin = SignedInClient(scanning_server.base_url, accounts["admin"])
    try:
        refused = admin.get(f"/sessions/{b.sid}/labels/print")
    finally:
        admin.close()
    assert refused.status_code == 403 and "may not" in refused.text
    missing = ward["auditor"].get("/sessions/999999/labels/print")
    assert missing.status_code == 404 and "There is no session 999999." in missing.text
    anonymous = httpx.get(f"{scanning_server.base_url}/sessions/{b.sid}/labels/print")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


def test_the_two_sizes_and_an_unknown_one(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b = made_ready(scanning_server, ward)
    roll = _page(ward["nurse"], b.sid, "62mm")
    assert roll.select_one('link[href*="labels-62mm.css"]') is not None
    assert roll.select_one('link[href*="labels-a4.css"]') is None
    assert roll.select_one("#label-page")["data-size"] == "62mm"
    assert len(roll.select("article.bag-label")) == 3
    sheet = _page(ward["nurse"], b.sid, "a4")
    assert sheet.select_one("#label-page")["data-size"] == "a4"
    css = ward["nurse"].get(roll.select_one('link[href*="labels-62mm.css"]')["href"])
    assert css.status_code == 200 and "size: 62mm 100mm" in css.text
    for size in ("letter", "A5", ""):
        refused = ward["nurse"].get(f"/sessions/{b.sid}/labels/print", params={"size": size})
        assert refused.status_code == 422, size
        assert refused.json()["detail"][0]["loc"] == ["query", "size"]


def test_the_bedside_links_to_the_labels_once_the_bags_are_verified(
    scanning_server: SessionServer, ward: dict[str, SignedInClient]
) -> None:
    b: Scanning = made_ready(scanning_server, ward)
    page = BeautifulSoup(ward["pharmacist"].get(f"/sessions/{b.sid}").text, "html.parser")
    link = page.select_one("#bag-labels-link")
    assert link is not None and link["href"] == f"/sessions/{b.sid}/labels/print"
    panel_link = page.select_one("#print-labels-link")
    assert panel_link is not None and "reprint" in _text(panel_link)
