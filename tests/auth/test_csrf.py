"""Cross-site request forgery: refused, and nothing changes."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest

from tests.support import SignedInClient, login_form_token


def new_user_body() -> dict[str, str]:
    return {
        "username": f"csrf{secrets.token_hex(4)}",
        "role": "nurse",
        "password": "long-enough-password",
    }


def user_exists(admin: SignedInClient, username: str) -> bool:
    return any(u["username"] == username for u in admin.get("/api/v1/users").json())


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({"sec-fetch-site": "same-site"}, "Sec-Fetch-Site: same-site"),
        ({"origin": "http://evil.example"}, "origin http://evil.example is not this site"),
        ({"origin": "null"}, "is not this site"),
        ({"origin": None}, "no Origin header"),
    ],
)
def test_cross_site_requests_are_refused_before_anything_runs(
    signed_in: Callable[[str], SignedInClient], headers: dict[str, str | None], reason: str
) -> None:
    admin = signed_in("admin")
    body = new_user_body()
    request = admin.build_request("POST", "/api/v1/users", json=body)
    for name, value in headers.items():
        if value is None:
            del request.headers[name]
        else:
            request.headers[name] = value
    response = admin.send(request)
    assert response.status_code == 403
    assert reason in response.json()["detail"]
    assert not user_exists(admin, body["username"])


@pytest.mark.parametrize("token", [None, "", "forged-token-value"])
def test_same_origin_without_the_session_token_is_refused(
    signed_in: Callable[[str], SignedInClient], token: str | None
) -> None:
    admin = signed_in("admin")
    body = new_user_body()
    request = admin.build_request("POST", "/api/v1/users", json=body)
    request.headers["sec-fetch-site"] = "same-origin"
    if token is None:
        del request.headers["x-csrf-token"]
    else:
        request.headers["x-csrf-token"] = token
    response = admin.send(request)
    assert response.status_code == 403
    assert "CSRF token" in response.json()["detail"]
    assert not user_exists(admin, body["username"])


def test_another_sessions_token_does_not_work(signed_in: Callable[[str], SignedInClient]) -> None:
    admin, other_admin = signed_in("admin"), signed_in("admin")
    assert admin.csrf_token != other_admin.csrf_token
    body = new_user_body()
    response = admin.post(
        "/api/v1/users", json=body, headers={"x-csrf-token": other_admin.csrf_token}
    )
    assert response.status_code == 403
    assert not user_exists(admin, body["username"])


def test_with_origin_and_token_the_request_goes_through(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    admin = signed_in("admin")
    body = new_user_body()
    response = admin.post("/api/v1/users", json=body, headers={"sec-fetch-site": "same-origin"})
    assert response.status_code == 201, response.text
    assert user_exists(admin, body["username"])


def test_plain_forms_carry_the_token_as_a_field(signed_in: Callable[[str], SignedInClient]) -> None:
    admin = signed_in("admin")
    body = new_user_body()
    del admin.headers["x-csrf-token"]
    without = admin.post("/admin/users", data=body)
    assert without.status_code == 403 and not user_exists(admin, body["username"])
    with_field = admin.post("/admin/users", data={**body, "csrf_token": admin.csrf_token})
    assert with_field.status_code == 200, with_field.text
    assert user_exists(admin, body["username"])


def test_login_form_is_protected_too(live_server: str, accounts) -> None:
    account = accounts["nurse"]
    with httpx.Client(base_url=live_server, timeout=15) as client:
        token = login_form_token(client)
        form = {"username": account.username, "password": account.password, "login_token": token}
        cross = client.post("/login", data=form, headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
        forged = client.post(
            "/login", data={**form, "login_token": "0" * 64}, headers={"origin": live_server}
        )
        assert forged.status_code == 403 and "form expired" in forged.text
        assert "stepwise_session" not in client.cookies
        form["login_token"] = login_form_token(client)  # each form has its own token
        ok = client.post("/login", data=form, headers={"origin": live_server})
        assert ok.status_code == 303 and "stepwise_session" in client.cookies
