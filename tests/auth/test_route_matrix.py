"""Every route of the app, from its own router table, against every kind of caller.

New routes are covered automatically: a route without a permission (and not on the short public
list) fails this test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy import select
from starlette.routing import Mount, WebSocketRoute

from app.audit import AuditEvent
from app.auth.dependencies import RequirePermission
from app.config import Settings
from app.db import create_engine, session_factory
from app.main import create_app
from app.permissions import PERMISSIONS, ROLES, WRITE_ACTIONS
from tests.support import SignedInClient, run_async

PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
PUBLIC_MOUNTS = {"/static"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    action: str | None

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    def url(self) -> str:
        # Any value will do: authorization is decided before the object is looked up.
        # An int-converted segment only matches digits.
        path = re.sub(r"\{[^}]+:int\}", "1", self.path)
        return re.sub(r"\{[^}]+\}", "zz-test", path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


WEBSOCKETS = frozenset({"/ws/sessions/{session_id:int}", "/ws/board"})


def _permission_of(context: RouteContext) -> str | None:
    found: list[str] = []

    def walk(dependant) -> None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, RequirePermission):
                found.append(sub.call.action)
            walk(sub)

    walk(context.dependant)  # the effective one: router-level dependencies included
    assert len(set(found)) <= 1, f"{context.path} requires several permissions: {found}"
    return found[0] if found else None


def endpoints() -> list[Endpoint]:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db", env="test"))
    result = []
    # Included routers stay nested in app.routes; iter_route_contexts flattens them.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert context.path in PUBLIC_MOUNTS, f"unexpected mount {context.path}"
            continue
        if isinstance(route, WebSocketRoute):
            # Their handshakes (origin, sign-in, role) are tested in tests/live/.
            assert context.path in WEBSOCKETS, f"websocket {context.path}: add it to those tests"
            continue
        assert isinstance(route, APIRoute), f"{context.path}: not an APIRoute, cannot check it"
        for method in sorted(context.methods or ()):
            if method == "HEAD":
                continue
            result.append(Endpoint(method, context.path, _permission_of(context)))
    return result


ENDPOINTS = endpoints()
PROTECTED = [e for e in ENDPOINTS if (e.method, e.path) not in PUBLIC]


# POSTs that change nothing but write their own audit entry: the chain check is a POST (with
# CSRF) so that no cross-site link can make it append to the log.
RECORDING_READS = {("POST", "/audit/verify")}


def test_every_route_is_public_on_purpose_or_requires_a_known_permission() -> None:
    assert len(ENDPOINTS) >= 12
    for endpoint in ENDPOINTS:
        if (endpoint.method, endpoint.path) in PUBLIC:
            assert endpoint.action is None, endpoint
            continue
        assert endpoint.action is not None, f"{endpoint} has no require_permission"
        assert endpoint.action in PERMISSIONS, f"{endpoint}: unknown action {endpoint.action}"
        if endpoint.method != "GET" and (endpoint.method, endpoint.path) not in RECORDING_READS:
            assert endpoint.action in WRITE_ACTIONS | {"account.use"}, endpoint


@pytest.fixture
def anonymous(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=15, headers={"origin": live_server}) as client:
        yield client


def send(client: httpx.Client, endpoint: Endpoint) -> httpx.Response:
    return client.request(endpoint.method, endpoint.url(), follow_redirects=False)


@pytest.mark.parametrize("endpoint", PROTECTED, ids=str)
def test_without_a_session(anonymous: httpx.Client, endpoint: Endpoint) -> None:
    response = send(anonymous, endpoint)
    if endpoint.is_api:
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": "sign in required"}
    elif endpoint.method == "GET":
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    else:
        # An unsafe page request without a session still needs sign-in first.
        assert response.status_code == 303, response.text


def denied_count(database_url: str, username: str, endpoint: Endpoint) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                rows = await db.scalars(
                    select(AuditEvent).where(
                        AuditEvent.action == "access.denied",
                        AuditEvent.actor_username == username,
                        AuditEvent.entity_id == f"{endpoint.method} {endpoint.url()}",
                    )
                )
                return len(list(rows))
        finally:
            await engine.dispose()

    return run_async(count)


WRONG_ROLE = [
    (e, role) for e in PROTECTED if e.action for role in ROLES if role not in PERMISSIONS[e.action]
]
RIGHT_ROLE = [(e, sorted(PERMISSIONS[e.action])[0]) for e in PROTECTED if e.action]


@pytest.mark.parametrize(("endpoint", "role"), WRONG_ROLE, ids=lambda v: str(v))
def test_wrong_role_is_refused_and_audited(
    signed_in: Callable[[str], SignedInClient], database_url: str, endpoint: Endpoint, role: str
) -> None:
    client = signed_in(role)
    before = denied_count(database_url, client.account.username, endpoint)
    response = send(client, endpoint)
    assert response.status_code == 403, response.text
    if endpoint.is_api:
        assert "may not" in response.json()["detail"]
    else:
        assert "may not" in response.text and "This refusal has been recorded" in response.text
    assert denied_count(database_url, client.account.username, endpoint) == before + 1


@pytest.mark.parametrize(("endpoint", "role"), RIGHT_ROLE, ids=lambda v: str(v))
def test_right_role_gets_through(
    signed_in: Callable[[str], SignedInClient], endpoint: Endpoint, role: str
) -> None:
    response = send(signed_in(role), endpoint)
    assert response.status_code not in (401, 403), response.text


def test_a_refused_request_with_a_very_long_path_is_still_a_clean_403(
    signed_in: Callable[[str], SignedInClient],
) -> None:
    response = signed_in("nurse").post("/admin/users/" + "x" * 2000 + "/disable")
    assert response.status_code == 403
