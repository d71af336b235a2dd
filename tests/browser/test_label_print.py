"""The bag labels' print page in Debian's Chromium: a pharmacist's Reprint through the page,
both sizes in print media photographed (test-artifacts/labels-*.png, for docs/screenshots/),
printed to PDF at the stock's page size, and every QR symbol in the photographs decoded back
to the code the API says scans now."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from app.labels.code import parse
from tests.browser.conftest import sign_in
from tests.browser.test_report_pdf import pdf_pages
from tests.labels.conftest import made_ready
from tests.labels.conftest import scanning_server as scanning_server
from tests.labels.conftest import ward as ward
from tests.session.conftest import SessionServer
from tests.support import Account, SignedInClient

pytestmark = pytest.mark.browser

A4_WIDTH_PX = 794  # 210 mm at 96 dpi
ROLL_WIDTH_PX = 235  # 62 mm at 96 dpi


def decoded(png: bytes) -> set[str]:
    image = Image.open(io.BytesIO(png))
    return {
        result.text
        for result in zxingcpp.read_barcodes(image)
        if result.format == zxingcpp.BarcodeFormat.QRCode
    }


def test_labels_print_on_both_stocks_and_their_codes_scan(
    scanning_server: SessionServer,
    ward: dict[str, SignedInClient],
    accounts: dict[str, Account],
    artifacts: Path,
    browser,
) -> None:
    b = made_ready(scanning_server, ward)
    first = b.labels()
    context = browser.new_context(viewport={"width": 1024, "height": 900}, device_scale_factor=2)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, scanning_server.base_url, accounts["pharmacist"])

    # From the bedside to the labels, and bag 2's label reprinted through the page
    page.goto(f"{scanning_server.base_url}/sessions/{b.sid}")
    page.click("#print-labels-link")
    page.wait_for_url(f"**/sessions/{b.sid}/labels/print")
    assert page.locator("article.bag-label").count() == 3
    assert page.locator("#label-bag-2").get_attribute("data-code") == first[2]["code"]
    with page.expect_navigation():
        page.click("#reprint-bag-2")
    labels = b.labels()
    assert labels[2]["copy"] == 2 and labels[2]["code"] != first[2]["code"]
    assert page.locator("#label-bag-2 .label-copy").inner_text() == "copy 2 (reprint)"
    codes = {label["code"] for label in labels.values()}

    for size, width in (("a4", A4_WIDTH_PX), ("62mm", ROLL_WIDTH_PX)):
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1024, "height": 900})
        page.goto(f"{scanning_server.base_url}/sessions/{b.sid}/labels/print?size={size}")
        assert page.locator("#print-labels").is_visible()
        page.emulate_media(media="print")  # the PDF as the Print button would make it
        pdf = page.pdf(print_background=True, prefer_css_page_size=True)
        # A4: the three labels on one sheet; the roll: one label per 62 x 100 mm page
        assert pdf_pages(pdf) == (1 if size == "a4" else 3), size
        (artifacts / f"labels-{size}.pdf").write_bytes(pdf)
        page.set_viewport_size({"width": width, "height": 300})  # the shot: the labels' height
        assert not page.locator("#print-labels").is_visible()
        assert not page.locator(".site-header").is_visible()
        assert not page.locator("[data-reprint]").first.is_visible()
        # Nothing cut off: each label's content fits its card, and nothing is wider than the
        # stock or the sheet
        assert page.evaluate("document.documentElement.scrollWidth") <= width, size
        overflow = page.evaluate(
            "Array.from(document.querySelectorAll('.bag-label')).filter("
            "c => c.scrollHeight > c.clientHeight + 1 || c.scrollWidth > c.clientWidth + 1"
            ").map(c => c.id)"
        )
        assert overflow == [], size
        shot = page.screenshot(path=str(artifacts / f"labels-{size}.png"), full_page=True)
        assert decoded(shot) == codes, size
        for code in decoded(shot):
            parsed = parse(code)
            assert parsed.session_id == b.sid and labels[parsed.bag]["code"] == code
    assert first[2]["code"] not in codes  # the voided copy is on no page
    assert errors == []
    context.close()
