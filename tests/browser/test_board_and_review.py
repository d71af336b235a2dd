"""The attending's board, the sign-off views and the review pages in Debian's Chromium: a board
whose sign-in ended asks for a sign-in and comes back live (no reconnect loop); the physician
and the pharmacist see what they sign; every status badge and alarm reads at 4.5:1 or better;
axe-core finds no serious or critical violation on any page type; and `make demo` shows a
moving ward within a minute.

SQLite only, as the tablet tests (the API tests cover PostgreSQL)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from app.live.present import STATUS_TITLES
from tests.browser import test_tablet
from tests.browser.conftest import sign_in
from tests.browser.test_tablet import LIVE, Ward, tablet
from tests.support import SignedInClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WALL = {"width": 1920, "height": 1080}
# The tablet tests' wards (SQLite, a manual clock), as fixtures of this module too.
tablet_db = test_tablet.tablet_db
ward = test_tablet.ward

# WCAG 2 contrast of an element's text against the first opaque background behind it.
CONTRAST = """
(el) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] >= 0.99)) { bg = c.slice(0, 3); break; }
    node = node.parentElement;
  }
  bg = bg || [255, 255, 255];
  const fg = rgb(getComputedStyle(el).color).slice(0, 3);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def test_a_board_whose_sign_in_ended_asks_for_it_and_comes_back_live(ward: Ward, browser) -> None:
    b = ward.running()
    page, errors = tablet(browser, ward, "physician", "/board", WALL)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    ward.server.advance(hours=11)  # past the idle timeout (600 minutes in these wards)
    started = time.monotonic()
    page.wait_for_selector("#signed-out:not([hidden])", timeout=10_000)
    assert time.monotonic() - started < 10
    assert page.evaluate("() => document.body.dataset.live") == "signed-out"
    assert not page.is_visible("#board-tiles")  # no patient data on an unattended wall
    page.wait_for_timeout(4000)
    assert sockets == [], "a signed-out board does not keep knocking"

    page.fill("#signed-out-password", ward.accounts["physician"].password)
    page.click("#signed-out-form button[type=submit]")
    page.wait_for_selector("#signed-out", state="hidden")
    page.wait_for_function(LIVE, timeout=5000)
    # Live again, from a fresh snapshot: a change made now reaches the tile (entered by a
    # nurse who signs in afresh: the test's own sign-ins idled out too).
    ward.server.advance(minutes=1)
    b.team = {**b.team, "nurse": SignedInClient(ward.base, ward.accounts["nurse"])}
    b.post(
        "nurse",
        "vitals",
        {
            "systolic_bp": 131,
            "diastolic_bp": 80,
            "heart_rate": 88,
            "spo2": 97,
            "respiratory_rate": 15,
            "temperature_c": "36.9",
        },
    )
    page.wait_for_function(
        f"() => document.querySelector('#tile-{b.sid} .tile-vitals').innerText.includes('131')",
        timeout=3000,
    )
    page.wait_for_timeout(3000)
    assert len(sockets) == 1, sockets  # one reconnect, no loop
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    b.team["nurse"].close()
    assert not errors, errors


def test_the_physician_approves_a_table_and_the_pharmacist_verifies_recipes(
    ward: Ward, browser, artifacts: Path
) -> None:
    b = ward.session()
    page, errors = tablet(browser, ward, "physician", f"/sessions/{b.sid}")
    table = page.locator("#plan-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == 12
    head = table.locator("thead").inner_text().lower()
    for column in ("rate", "minutes", "dose", "total"):  # total: the cumulative dose
        assert column in head, head
    page.screenshot(path=str(artifacts / "signoff-approve.png"), full_page=True)
    page.click("#approve-plan")
    page.wait_for_selector("#approved-by")
    assert page.locator("#approve-plan").count() == 0
    assert re.match(r"Approved by .+ at \d\d:\d\d", page.inner_text("#approved-by"))

    pharmacist, more_errors = tablet(browser, ward, "pharmacist", f"/sessions/{b.sid}")
    recipes = pharmacist.locator("#recipe-table tbody.recipe")
    assert recipes.count() >= 2
    first = recipes.first.inner_text()
    assert "mg" in first and "mL" in first and "sodium chloride" in first
    assert "=" in first  # the arithmetic is shown, not only the answer
    assert pharmacist.is_visible("#verify-bags")
    pharmacist.screenshot(path=str(artifacts / "signoff-verify.png"), full_page=True)
    assert not errors and not more_errors, errors + more_errors


def test_every_status_badge_and_alarm_reads_at_4_5_to_1(ward: Ward, browser) -> None:
    ward.running()  # a real tile on the board, beside the swatches
    page, errors = tablet(browser, ward, "physician", "/board", WALL)
    # Every status and priority the board and bedside can show, styled by the real sheets.
    page.evaluate(
        """([statuses]) => {
          const host = document.createElement('div');
          host.id = 'swatches';
          for (const s of statuses) {
            const tile = document.createElement('article');
            tile.className = 'tile tile-' + s;
            tile.innerHTML = '<span class="badge badge-' + s + '">' + s + '</span>';
            host.appendChild(tile);
          }
          for (const p of ['high', 'medium', 'low']) {
            const row = document.createElement('div');
            row.className = 'tile-alarm alarm-' + p;
            row.textContent = p + ' alarm';
            host.appendChild(row);
            const done = document.createElement('div');
            done.className = 'alarm alarm-' + p + ' acknowledged';
            done.textContent = p + ' acknowledged';
            host.appendChild(done);
          }
          document.querySelector('#board-tiles').appendChild(host);
        }""",
        [list(STATUS_TITLES)],
    )
    ratios = {}
    for element in page.query_selector_all("#swatches .badge, #swatches [class*=alarm-]"):
        ratios[element.get_attribute("class")] = element.evaluate(CONTRAST)
    assert len(ratios) == len(STATUS_TITLES) + 6
    low = {name: round(r, 2) for name, r in ratios.items() if r < 4.5}
    assert low == {}, low
    assert not errors, errors


def _axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ['violations']});
          return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_axe_finds_nothing_serious_on_any_page_type(ward: Ward, browser) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: make test installs it from the lockfile")
    reacting = ward.reacting()
    context = browser.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    found: dict[str, list[dict]] = {}
    page.goto(ward.base + "/login")
    found["login"] = _axe(page)
    sign_in(page, ward.base, ward.accounts["physician"])
    pages = {
        "home": "/",
        "patients": "/patients",
        "new session": "/sessions/new",
        "bedside": f"/sessions/{reacting.sid}",
        "board": "/board",
        "timeline": f"/sessions/{reacting.sid}/timeline",
        "report": f"/sessions/{reacting.sid}/report",
        "audit": "/audit",
        "sessions": "/sessions",
    }
    for name, path in pages.items():
        page.goto(ward.base + path)
        if name in ("bedside", "board"):
            page.wait_for_function(LIVE, timeout=5000)
        found[name] = _axe(page)
    context.close()
    bad = {name: v for name, v in found.items() if v}
    assert bad == {}, bad


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_make_demo_shows_three_live_sessions_within_a_minute(
    tablet_db: str, browser, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEPWISE_", "MAKE"))}
    started = time.monotonic()
    demo = subprocess.Popen(
        ["make", "--no-print-directory", "demo", f"DEMO_DB={tmp_path / 'demo.db'}"],
        cwd=PROJECT_ROOT,
        env={**env, "STEPWISE_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            printed.append(line)
            if line.startswith("Open "):
                break
            assert time.monotonic() - started < 60, "".join(printed)
        text = "".join(printed)
        assert "physician-demo-pass" in text and "nurse-demo-pass" in text, text
        assert f"http://127.0.0.1:{port}/board" in text
        base = f"http://127.0.0.1:{port}"
        page = browser.new_page(viewport=WALL)
        deadline = time.monotonic() + 30
        while True:
            try:
                page.goto(base + "/login")
                break
            except Exception:
                assert time.monotonic() < deadline, "".join(printed)
                time.sleep(0.3)
        page.fill("#username", "physician")
        page.fill("#password", "physician-demo-pass")
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.goto(base + "/board")
        page.wait_for_function(LIVE, timeout=10_000)
        states = set(
            page.eval_on_selector_all("#board-tiles .tile", "ts => ts.map(t => t.className)")
        )
        live = {
            s for s in ("running", "step_due", "paused") if any(f"tile-{s}" in c for c in states)
        }
        assert live == {"running", "step_due", "paused"}, states
        elapsed = time.monotonic() - started
        assert elapsed < 60, f"{elapsed:.1f} s"
        # And it moves: the running session's countdown changes on the training clock.
        countdown = "#board-tiles .tile-running .countdown"
        first = page.inner_text(countdown)
        page.wait_for_function(
            f"() => document.querySelector('{countdown}').innerText !== '{first}'", timeout=5000
        )
        page.close()
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
