"""Signing in and out through the pages, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Account, SignedInClient, login_form_token


def sign_in_form(
    client: httpx.Client, account: Account, password: str | None = None, next_path: str = "/"
) -> httpx.Response:
    token = login_form_token(client, next_path)
    return client.post(
        "/login",
        data={
            "username": account.username,
            "password": password or account.password,
            "login_token": token,
            "next": next_path,
        },
    )


@pytest.fixture
def browser_like(live_server: str):
    with httpx.Client(base_url=live_server, timeout=15, headers={"origin": live_server}) as c:
        yield c


def test_sign_in_sets_a_safe_cookie_and_goes_where_asked(browser_like, accounts) -> None:
    response = sign_in_form(browser_like, accounts["physician"], next_path="/protocols/preview")
    assert response.status_code == 303
    assert response.headers["location"] == "/protocols/preview"
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("stepwise_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert browser_like.get("/protocols/preview").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_sign_in_never_sends_you_to_another_site(browser_like, accounts, target) -> None:
    response = sign_in_form(browser_like, accounts["nurse"], next_path=target)
    assert response.headers["location"] == "/"


def test_wrong_password_is_explained_without_saying_which_part(browser_like, accounts) -> None:
    response = sign_in_form(browser_like, accounts["nurse"], password="not-my-password")
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    assert "not-my-password" not in response.text
    assert "stepwise_session" not in browser_like.cookies


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    signed_in,
    live_server: str,
) -> None:
    client: SignedInClient = signed_in("pharmacist")
    stolen = dict(client.cookies)
    assert client.post("/logout").status_code == 303
    with httpx.Client(base_url=live_server, cookies=stolen, timeout=15) as replay:
        assert replay.get("/api/v1/me").status_code == 401


def test_home_page_shows_what_each_role_may_do(signed_in) -> None:
    nurse_home = signed_in("nurse").get("/").text
    admin_home = signed_in("admin").get("/").text
    assert 'href="/protocols/preview"' in nurse_home and 'href="/admin/users"' not in nurse_home
    assert 'href="/admin/users"' in admin_home and 'href="/protocols/preview"' not in admin_home
    auditor_home = signed_in("auditor").get("/").text
    assert 'href="/admin/users"' in auditor_home and 'href="/protocols/preview"' in auditor_home


def test_auditor_sees_accounts_but_no_controls(signed_in) -> None:
    page = signed_in("auditor").get("/admin/users")
    assert page.status_code == 200
    assert "New account" not in page.text and "/disable" not in page.text


def test_admin_disables_a_user_through_the_page(
    signed_in, accounts, live_server, database_url
) -> None:
    from tests.support import create_account

    victim = create_account(database_url, "nurse", prefix="leaver")
    victim_client = SignedInClient(live_server, victim)
    admin = signed_in("admin")
    no_reason = admin.post(f"/admin/users/{victim.username}/disable", data={"reason": " "})
    assert no_reason.status_code == 422 and "give a reason" in no_reason.text
    assert victim_client.get("/api/v1/me").status_code == 200
    response = admin.post(f"/admin/users/{victim.username}/disable", data={"reason": "left"})
    assert response.status_code == 200 and f"{victim.username}: disabled" in response.text
    assert victim_client.get("/api/v1/me").status_code == 401
    victim_client.close()
