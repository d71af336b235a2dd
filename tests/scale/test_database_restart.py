"""PostgreSQL restarted under a running process with screens open (pg_ctlcluster restart, the
way an operator or a failover does it): while the database is away every request is answered
503 with Retry-After, never 500 and never left hanging; the vitals resent with their key are
saved once the database is back; and every open screen then shows them, without a reload."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import httpx
import pytest
import websockets

from tests.scale import test_multi_process as multi
from tests.scale.test_multi_process import OK, cookie, prepared_session, start, until_seen
from tests.support import SignedInClient

postgres_url = multi.postgres_url  # PostgreSQL only (a restart of SQLite is a process restart)

SCREENS = 12


def restart_postgres() -> None:
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    if shutil.which("pg_ctlcluster") is None or clusters.returncode != 0:
        pytest.skip("no PostgreSQL cluster this test may restart")
    version, name = clusters.stdout.split()[:2]
    subprocess.run(
        ["pg_ctlcluster", version, name, "restart", "-m", "fast"], check=True, timeout=60
    )


def test_a_database_restart_answers_503_then_every_screen_shows_what_was_resent(
    postgres_url: str, accounts
) -> None:
    process = start("restarted", postgres_url)
    team = {role: SignedInClient(process.base, accounts[role]) for role in accounts}
    statuses: list[int | str] = []
    try:
        sid = prepared_session({"A": team}, "A")

        async def run() -> None:
            screens = [
                await websockets.connect(
                    f"{process.ws}/ws/sessions/{sid}",
                    origin=process.base,
                    additional_headers=cookie(team["nurse" if n % 2 else "physician"]),
                )
                for n in range(SCREENS)
            ]
            for screen in screens:
                await until_seen(screen, 'id="status-panel"', 10)
            restarting = asyncio.create_task(asyncio.to_thread(restart_postgres))
            await asyncio.sleep(0.2)  # the database is going down
            key = {"Idempotency-Key": "restart-95"}
            deadline = time.monotonic() + 60
            while True:  # the bedside resends with the same key until it is saved
                try:
                    answer = await asyncio.to_thread(
                        team["nurse"].post,
                        f"/api/v1/sessions/{sid}/vitals",
                        json={**OK, "heart_rate": 95},
                        headers=key,
                    )
                    statuses.append(answer.status_code)
                    if answer.status_code not in (200, 503):
                        statuses.append(answer.text[:300])
                    if answer.status_code == 503:
                        assert int(answer.headers["retry-after"]) > 0
                    if answer.status_code == 200 and restarting.done():
                        break
                except httpx.HTTPError as error:
                    statuses.append(type(error).__name__)
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.3)
            await restarting
            for screen in screens:  # every screen converges on the saved version
                await until_seen(screen, 'big-number">95<', 20)
            for screen in screens:
                await screen.close()

        asyncio.run(run())
        view = team["nurse"].get(f"/api/v1/sessions/{sid}/vitals").json()
        rates = [v["values"]["heart_rate"]["value"] for v in view["items"]]
        assert rates.count("95") + rates.count(95) == 1, rates  # saved once
    finally:
        for client in team.values():
            client.close()
        process.popen.terminate()
        process.popen.wait(20)
    assert 503 in statuses, statuses  # the restart was seen
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a hang
