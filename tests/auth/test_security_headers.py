"""Security headers on every kind of answer; HSTS and __Host- cookies over HTTPS."""

from __future__ import annotations

import httpx
import pytest

from tests.support import login_form_token


@pytest.mark.parametrize(
    "path", ["/login", "/healthz", "/metrics", "/static/css/app.css", "/nowhere", "/"]
)
def test_every_answer_carries_the_headers(live_server: str, path: str) -> None:
    response = httpx.get(f"{live_server}{path}", timeout=15)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert len(response.headers["x-request-id"]) == 32
    assert "strict-transport-security" not in response.headers  # plain http


def test_over_https_hsts_and_a_host_prefixed_cookie(live_server: str, accounts) -> None:
    # The server trusts X-Forwarded-Proto from the local proxy (uvicorn's default for 127.0.0.1).
    https = {"x-forwarded-proto": "https", "origin": live_server.replace("http://", "https://")}
    with httpx.Client(base_url=live_server, timeout=15, headers=https) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = login_form_token(client)
        nonce = client.cookies.get("__Host-stepwise_login_nonce")
        assert nonce, "the login form's nonce cookie must be __Host- prefixed over https"
        account = accounts["nurse"]
        response = client.post(
            "/login",
            data={"username": account.username, "password": account.password, "login_token": token},
            # httpx keeps Secure cookies for https only; hand this one over as a browser would
            headers={"cookie": f"__Host-stepwise_login_nonce={nonce}"},
        )
        assert response.status_code == 303, response.text
        set_cookie = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in set_cookie if c.startswith("__Host-stepwise_session="))
        assert "Secure" in session_cookie and "Path=/" in session_cookie
        assert "Domain" not in session_cookie


def test_pages_have_no_inline_script(signed_in) -> None:
    import re

    for path in ("/", "/protocols/preview", "/login"):
        html = signed_in("nurse").get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (path, tag)
        assert " style=" not in html, path
