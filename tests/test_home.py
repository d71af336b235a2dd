"""The landing page and the base template, over real HTTP."""

from __future__ import annotations

import re

import httpx

from app.config import Settings
from app.static_assets import STATIC_DIR


def test_home_page(signed_in) -> None:  # type: ignore[no-untyped-def]
    response = signed_in("nurse").get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert 'href="/protocols/preview"' in html
    assert re.search(r'<link rel="stylesheet" href="/static/css/app.css\?v=[0-9a-f]{12}">', html)
    assert re.search(
        r'<script src="/static/vendor/htmx.min.js\?v=[0-9a-f]{12}" defer></script>', html
    )
    assert re.search(
        r'<time id="server-clock" datetime="[^"]+\+00:00" data-speed="1" data-zone="[^"]+">', html
    )
    # A later Content-Security-Policy will forbid inline scripts: every <script> has a src.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert "Training mode" not in html


def test_stylesheet_is_served(live_server: str) -> None:
    response = httpx.get(f"{live_server}/static/css/app.css", timeout=15)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_static_files_are_versioned_cached_for_a_year_and_compressed(
    signed_in, live_server
) -> None:  # type: ignore[no-untyped-def]
    client = signed_in("nurse")
    page = client.get("/")
    assert page.headers["cache-control"] == "no-store"  # patient data stays off the tablet
    assert page.headers["content-encoding"] == "gzip"
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert urls and all(re.search(r"\?v=[0-9a-f]{12}$", u) for u in urls), urls
    for url in urls:
        answer = httpx.get(live_server + url, headers={"accept-encoding": "gzip"}, timeout=15)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        path = url.split("?")[0].removeprefix("/static/")
        on_disk = (STATIC_DIR / path).read_bytes()
        assert answer.content == on_disk  # httpx decodes: the same bytes, whatever the wire
        if path.endswith((".js", ".css")) and len(on_disk) > 1024:
            assert answer.headers["content-encoding"] == "gzip"
            assert int(answer.headers["content-length"]) < len(on_disk) / 2
    # An old or hand-made version is served, but must be revalidated: it may have changed.
    stale = httpx.get(f"{live_server}/static/css/app.css?v=000000000000", timeout=15)
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    plain = httpx.get(f"{live_server}/static/css/app.css", timeout=15)
    assert plain.headers["cache-control"] == "no-cache"
    missing = httpx.get(f"{live_server}/static/css/none.css?v=1", timeout=15)
    assert missing.status_code == 404
    assert httpx.get(f"{live_server}/static/../app/main.py", timeout=15).status_code == 404


def test_training_clock_banner(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'training.db'}",
        env="test",
        clock_mode="accelerated",
        clock_speed=60,
    )
    base_url = start_server(settings)

    # Every screen says so, the sign-in page included.
    html = httpx.get(f"{base_url}/login", timeout=15).text

    assert "Training mode: the clock runs 60 times faster than real time." in html
