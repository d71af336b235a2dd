"""SIGTERM, as an orchestrator sends it before it replaces a process: the requests under way
are finished and every acknowledged vitals set is kept, the live screens are told to
reconnect (1012, service restart), the timer loop finishes its pass and the application shuts
down cleanly within the grace period (uvicorn then ends the process by the signal it caught,
as the orchestrator expects). Nothing answers 500."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import websockets
from sqlalchemy import text

from app.db import create_engine
from tests.scale.test_multi_process import OK, prepared_session, start
from tests.support import SignedInClient, run_async

POSTS = 40


async def heart_rates_stored(database_url: str, sid: int) -> set[int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT values_json FROM vitals_set WHERE session_id = :sid"), {"sid": sid}
            )
            return {int(json.loads(v)["heart_rate"]["value"]) for (v,) in rows}
    finally:
        await engine.dispose()


def test_sigterm_finishes_what_is_under_way_and_tells_the_screens(
    database_url: str, accounts, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = start(
            "drained",
            database_url,
            stderr=sink,
            STEPWISE_SHUTDOWN_GRACE_SECONDS="15",
            STEPWISE_LOG_LEVEL="info",
        )
    nurses = [SignedInClient(process.base, accounts["nurse"]) for _ in range(4)]
    team = {role: SignedInClient(process.base, accounts[role]) for role in accounts}
    sid = prepared_session({"A": team}, "A")
    cookie = {"Cookie": f"stepwise_session={team['physician'].cookies['stepwise_session']}"}
    closed: dict[str, int | None] = {}
    opened = threading.Event()

    async def watch() -> None:
        url = process.base.replace("http://", "ws://") + f"/ws/sessions/{sid}"
        async with websockets.connect(url, additional_headers=cookie, origin=process.base) as ws:
            await ws.recv()  # the snapshot
            opened.set()
            try:
                while True:
                    await ws.recv()
            except websockets.ConnectionClosed as closing:
                closed["code"] = closing.rcvd.code if closing.rcvd else None

    watcher = threading.Thread(target=lambda: run_async(watch), daemon=True)
    watcher.start()
    assert opened.wait(10)

    def post(n: int) -> tuple[int, int | str]:
        rate = 60 + n  # one distinct heart rate per request
        try:
            answer = nurses[n % len(nurses)].post(
                f"/api/v1/sessions/{sid}/vitals", json={**OK, "heart_rate": rate}
            )
            return rate, answer.status_code
        except httpx.HTTPError as error:  # refused or cut: never acknowledged
            return rate, type(error).__name__

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, n) for n in range(POSTS)]
        time.sleep(0.3)  # some answered, some under way, some not yet sent
        process.popen.send_signal(signal.SIGTERM)
        started = time.monotonic()
        results = [f.result() for f in futures]
    assert process.popen.wait(30) in (0, -signal.SIGTERM)
    took = time.monotonic() - started
    said = log.read_text()
    assert "Application shutdown complete" in said, said[-2000:]
    assert "Traceback" not in said, said[-4000:]
    watcher.join(10)
    for client in [*nurses, *team.values()]:
        client.close()

    acknowledged = {rate for rate, status in results if status == 200}
    assert acknowledged, results  # the test must catch the server at work
    assert not [r for r in results if r[1] not in (200, 409) and isinstance(r[1], int)], results
    assert acknowledged <= asyncio.run(heart_rates_stored(database_url, sid))
    assert closed.get("code") == 1012, closed  # service restart: the page reconnects
    assert took < 15
