"""The landing page and the base template, over real HTTP."""

from __future__ import annotations

import re

import httpx

from app.config import Settings


def test_home_page(signed_in) -> None:  # type: ignore[no-untyped-def]
    response = signed_in("nurse").get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert 'href="/protocols/preview"' in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in html
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
