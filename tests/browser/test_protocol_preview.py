"""The preview page in a real browser: typing updates the table, bad input is explained in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in
from tests.support import Account

pytestmark = pytest.mark.browser

TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


def open_preview(
    browser: Browser, base_url: str, viewport: dict[str, int], account: Account
) -> Page:
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Refused parameters answer 422 on purpose; Chromium logs every 4xx, so leave those out.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 422" not in msg.text
            else None
        ),
    )
    sign_in(page, base_url, account)
    page.goto(f"{base_url}/protocols/preview")
    page.wait_for_function("() => window.htmx !== undefined")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def last_row_cells(page: Page) -> list[str]:
    return page.locator("#steps-table tbody tr").last.locator("th, td").all_inner_texts()


def test_table_follows_typing_on_a_tablet(
    browser: Browser, live_server: str, accounts: dict[str, Account], artifacts: Path
) -> None:
    page = open_preview(browser, live_server, TABLET, accounts["nurse"])
    expect(page.locator("#steps-table tbody tr")).to_have_count(12)
    assert last_row_cells(page)[6] == "2000.000"

    page.fill("#input-dose", "1000")
    expect(page.locator("#total-minutes")).to_have_text("339.375 min")
    expect(page.locator("#steps-table tbody tr").last.locator("td").nth(5)).to_have_text("1000.000")
    assert "dose=1000" in page.url  # the address follows the form

    page.fill("#input-final_rate", "40")
    expect(page.locator("#steps-table tbody tr").last.locator("td").nth(1)).to_have_text("40.0")

    # Readable at arm's length: big touch targets, nothing wider than the screen.
    for selector in ("#input-dose", "#input-template", "#input-unit", "#input-final_rate"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["height"] >= 48, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    page.screenshot(path=str(artifacts / "protocol-preview-tablet.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_bad_input_is_explained_beside_the_field(
    browser: Browser, live_server: str, accounts: dict[str, Account], artifacts: Path
) -> None:
    page = open_preview(browser, live_server, TABLET, accounts["nurse"])
    page.fill("#input-dose", "-5")
    error = page.locator("#field-dose .field-error")
    expect(error).to_have_text("dose must be greater than 0, got -5")
    expect(page.locator("#steps-table")).to_have_count(0)
    expect(page.locator(".empty-result")).to_be_visible()
    page.screenshot(path=str(artifacts / "protocol-preview-error.png"), full_page=True)

    page.fill("#input-dose", "abc")
    expect(error).to_have_text("dose must be a number, got 'abc'")

    page.fill("#input-dose", "500")  # corrected: the reason goes away, the table comes back
    expect(error).to_have_text("")
    expect(page.locator("#steps-table tbody tr")).to_have_count(12)
    assert page.errors == []  # type: ignore[attr-defined]


def test_each_template_shows_only_its_own_parameters(
    browser: Browser, live_server: str, accounts: dict[str, Account]
) -> None:
    page = open_preview(browser, live_server, TABLET, accounts["nurse"])
    expect(page.locator("#input-final_rate")).to_be_visible()
    expect(page.locator("#input-doses")).to_be_hidden()

    page.select_option("#input-template", "doses")
    expect(page.locator("#input-final_rate")).to_be_hidden()
    page.fill("#input-doses", "100,200,400,800,1600")
    # the target 2000 mg still typed does not match the list: refused, and said where
    expect(page.locator("#field-dose .field-error")).to_have_text(
        "the doses add up to 3100, not the target 2000; leave the target out or correct the list"
    )
    page.fill("#input-dose", "")
    expect(page.locator("#steps-table tbody tr")).to_have_count(5)
    expect(page.locator("#target-dose")).to_have_text("3100 mg")

    page.select_option("#input-template", "doubling")
    expect(page.locator("#input-start_fraction")).to_be_visible()
    expect(page.locator("#field-dose .field-error")).to_have_text("dose is required")
    page.fill("#input-dose", "1000")
    expect(page.locator("#steps-table tbody tr")).to_have_count(12)
    expect(page.locator("#steps-table tbody tr").last.locator("td").nth(1)).to_have_text("795.300")


def test_phone_layout_does_not_overflow(
    browser: Browser, live_server: str, accounts: dict[str, Account], artifacts: Path
) -> None:
    page = open_preview(browser, live_server, PHONE, accounts["pharmacist"])
    expect(page.locator("#steps-table tbody tr")).to_have_count(12)
    # the wide table scrolls inside its box; the page itself does not
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(artifacts / "protocol-preview-phone.png"), full_page=True)
