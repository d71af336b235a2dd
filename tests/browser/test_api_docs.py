"""/docs: the OpenAPI page works under the strict Content-Security-Policy, behind sign-in."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.support import Account

pytestmark = pytest.mark.browser


def test_api_page_lists_the_operations_without_console_errors(
    browser: Browser, live_server: str, accounts: dict[str, Account]
) -> None:
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server}/docs")
    expect(page).to_have_url(f"{live_server}/login?next=%2Fdocs")  # sign in first
    sign_in(page, live_server, accounts["physician"])
    page.goto(f"{live_server}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/sessions/{session_id}/resume" in paths
    assert "/api/v1/patients" in paths
    assert errors == []  # no CSP violation, no script error
