"""Escalations POSTed to a webhook: retried against a receiver that fails at first, and never
holding up the session."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from app.config import Settings
from app.main import create_app
from tests.conftest import run_server
from tests.session.conftest import SessionServer, wait_for
from tests.session.test_alarms_api import low_pressure_reaction
from tests.support import SignedInClient


class Receiver:
    """A local HTTP receiver that answers 503 to the first `failures` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                status = 503 if len(receiver.statuses) < receiver.failures else 200
                receiver.statuses.append(status)
                receiver.bodies.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/escalations"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


@pytest.fixture
def server_with_webhook(database_url: str, receiver: Receiver) -> Iterator[SessionServer]:
    settings = Settings(
        database_url=database_url,
        env="test",
        clock_mode="manual",
        session_idle_minutes=24 * 60,
        escalation_webhook=receiver.url,
        webhook_backoff_seconds=0.05,
    )
    app = create_app(settings)
    with run_server(app) as base_url:
        yield SessionServer(base_url, app)


@pytest.fixture
def webhook_team(server_with_webhook: SessionServer, accounts) -> Iterator[dict]:
    clients = {
        role: SignedInClient(server_with_webhook.base_url, accounts[role])
        for role in ("nurse", "physician", "pharmacist")
    }
    yield clients
    for client in clients.values():
        client.close()


def test_escalations_reach_the_webhook_after_retries_without_blocking(
    server_with_webhook: SessionServer, webhook_team: dict, receiver: Receiver
) -> None:
    b = low_pressure_reaction(server_with_webhook, webhook_team)
    server_with_webhook.clock.advance(timedelta(seconds=30))
    # the escalation is recorded at once, whatever the receiver does
    view = wait_for(b.get, lambda v: any(a["escalated_at"] for a in v["alarms"]["items"]))
    escalated = [a for a in view["alarms"]["items"] if a["escalated_at"]]
    deadline = time.monotonic() + 10
    while sum(s == 200 for s in receiver.statuses) < len(escalated):
        assert time.monotonic() < deadline, receiver.statuses
        time.sleep(0.05)
    assert receiver.statuses[:2] == [503, 503]  # refused twice, then delivered
    delivered = {
        b["alarm_id"] for b, s in zip(receiver.bodies, receiver.statuses, strict=True) if s == 200
    }
    assert delivered == {a["id"] for a in escalated}
    body = receiver.bodies[-1]
    assert body["event"] == "alarm.escalated" and body["session_id"] == b.sid
    assert "patient" not in json.dumps(body)  # no patient identifiers leave the building
