"""/protocols/preview over real HTTP: the page, and the htmx fragment it fetches as you type."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from bs4 import BeautifulSoup

from app.protocol.form import FIELDS_WITH_ERROR_SLOT
from tests.support import SignedInClient


@pytest.fixture
def nurse(signed_in: Callable[[str], SignedInClient]) -> SignedInClient:
    return signed_in("nurse")


def get(client: httpx.Client, path: str, **params: str) -> httpx.Response:
    return client.get(path, params=params)


def rows(soup: BeautifulSoup, table_id: str) -> list[list[str]]:
    table = soup.find(id=table_id)
    assert table is not None, f"no #{table_id}"
    return [
        [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])]
        for tr in table.find("tbody").find_all("tr")
    ]


def test_page_opens_with_the_ceftazidime_example(nurse: SignedInClient) -> None:
    response = get(nurse, "/protocols/preview")
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.find(id="input-dose")["value"] == "2000"
    assert rows(soup, "solutions-table")[2][:4] == ["3", "final", "250.000", "7.937"]
    steps = rows(soup, "steps-table")
    assert len(steps) == 12
    assert steps[11][:8] == [
        "12",
        "3",
        "80.0",
        "174.375",
        "232.500",
        "1845.362",
        "2000.000",
        "100.00",
    ]
    assert soup.find(id="total-minutes").get_text(strip=True) == "339.375 min"
    # CSP will forbid inline script: every script must come from a file.
    assert all(script.get("src") for script in soup.find_all("script"))
    form = soup.find(id="protocol-form")
    assert form["hx-get"] == "/protocols/preview/result"


def test_fragment_follows_the_parameters(nurse: SignedInClient) -> None:
    response = get(
        nurse,
        "/protocols/preview/result",
        template="brigham-8",
        dose="50",
        unit="g",
        final_rate="60",
        bag_volume="100",
        step_minutes="20",
    )
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    steps = rows(soup, "steps-table")
    assert len(steps) == 8
    assert steps[-1][6] == "50.000"  # cumulative
    assert "not confirmed" in soup.get_text()  # unconfirmed rates are said on screen
    # every error slot comes back empty out of band, clearing an earlier reason
    for name in FIELDS_WITH_ERROR_SLOT:
        slot = soup.find(id=f"error-{name}")
        assert (
            slot is not None and slot["hx-swap-oob"] == "true" and slot.get_text(strip=True) == ""
        )
    assert response.headers["HX-Replace-Url"].startswith("/protocols/preview?template=brigham-8")


def test_dose_ladder_on_the_page(nurse: SignedInClient) -> None:
    response = get(
        nurse,
        "/protocols/preview/result",
        template="doses",
        unit="units",
        doses="100,200,400,800",
        interval="30",
    )
    assert response.status_code == 200
    steps = rows(BeautifulSoup(response.text, "html.parser"), "steps-table")
    # step, interval, dose, cumulative, % of target, starts at
    assert [row[3] for row in steps] == ["100.000", "300.000", "700.000", "1500.000"]
    assert [row[5] for row in steps] == ["0", "30", "60", "90"]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"dose": "-5"}, "dose", "dose must be greater than 0"),
        ({"dose": "0"}, "dose", "dose must be greater than 0"),
        ({"dose": "two grams"}, "dose", "dose must be a number"),
        ({"bag_volume": "0"}, "bag_volume", "bag volume must be greater than 0"),
        ({"final_rate": "abc"}, "final_rate", "final rate must be a number"),
        ({"template": "brigham-99"}, "template", "unknown template"),
        ({"unit": "ml"}, "unit", "unknown unit"),
        ({"bags": "4:volume=50"}, "bags", "bag 4 does not exist"),
        ({"bags": "1:volume=1"}, "bag_volume", "bag 1 holds 1.000 mL"),
        ({"template": "doubling", "steps": "many"}, "steps", "steps must be a number"),
        ({"template": "doses", "doses": "1,x"}, "doses", "dose 2 must be a number"),
    ],
)
def test_bad_input_shows_the_reason_beside_the_field(
    nurse: SignedInClient, params: dict[str, str], field: str, reason: str
) -> None:
    query = {"template": "brigham-12", "dose": "2000", "unit": "mg", **params}
    fragment = get(nurse, "/protocols/preview/result", **query)
    assert fragment.status_code == 422
    soup = BeautifulSoup(fragment.text, "html.parser")
    assert reason in soup.find(id=f"error-{field}").get_text()
    assert soup.find(id="steps-table") is None
    others = [n for n in FIELDS_WITH_ERROR_SLOT if n != field]
    assert all(soup.find(id=f"error-{n}").get_text(strip=True) == "" for n in others)
    assert "Traceback" not in fragment.text

    page = get(nurse, "/protocols/preview", **query)  # without htmx: the whole page
    assert page.status_code == 422
    soup = BeautifulSoup(page.text, "html.parser")
    assert reason in soup.find(id=f"field-{field}").find(class_="field-error").get_text()
