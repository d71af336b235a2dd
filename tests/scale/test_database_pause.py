"""PostgreSQL paused for 20 s (every one of its processes stopped, as a stalled virtual machine
or a storage hiccup does) under a running process: requests are answered 503 with Retry-After
within 12 s (the default database timeout), not left hanging for the whole pause; once it
resumes, the vitals resent with their key are saved once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.scale import test_multi_process as multi
from tests.scale.test_multi_process import OK, prepared_session, start
from tests.support import SignedInClient

postgres_url = multi.postgres_url  # PostgreSQL only

PAUSE_SECONDS = 20
ANSWER_WITHIN_SECONDS = 12  # the default database timeout (10 s), and a moment to answer


@contextlib.contextmanager
def paused_postgres() -> Iterator[None]:
    found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    if not pids:
        pytest.skip("no PostgreSQL processes this test may pause")
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:  # whatever happens, the machine's database runs again
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_paused_database_answers_503_within_the_timeout_then_the_resend_is_saved(
    postgres_url: str, accounts
) -> None:
    process = start("paused", postgres_url)  # the default database timeout
    team = {role: SignedInClient(process.base, accounts[role]) for role in accounts}
    try:
        sid = prepared_session({"A": team}, "A")
        nurse = team["nurse"]
        key = {"Idempotency-Key": "paused-88"}
        vitals = {**OK, "heart_rate": 88}
        answers = []
        with paused_postgres():
            paused_at = time.monotonic()
            requests = [
                lambda: nurse.post(f"/api/v1/sessions/{sid}/vitals", json=vitals, headers=key),
                lambda: nurse.get(f"/api/v1/sessions/{sid}"),
            ]
            while time.monotonic() - paused_at < PAUSE_SECONDS - ANSWER_WITHIN_SECONDS:
                sent = time.monotonic()
                answer = requests[len(answers) % 2]()
                answers.append((answer.status_code, round(time.monotonic() - sent, 1)))
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["retry-after"]) > 0
            time.sleep(max(0.0, PAUSE_SECONDS - (time.monotonic() - paused_at)))
        # Each answered within the bound, none left hanging for the whole pause.
        assert all(seconds <= ANSWER_WITHIN_SECONDS for _, seconds in answers), answers
        deadline = time.monotonic() + 30
        while True:  # resumed: the bedside's resend with the same key is saved
            saved = nurse.post(f"/api/v1/sessions/{sid}/vitals", json=vitals, headers=key)
            if saved.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert saved.status_code == 200, saved.text
        rates = [
            v["values"]["heart_rate"]["value"]
            for v in nurse.get(f"/api/v1/sessions/{sid}/vitals").json()["items"]
        ]
        assert rates.count("88") + rates.count(88) == 1, rates
        assert httpx.get(process.base + "/readyz", timeout=15).status_code == 200
    finally:
        for client in team.values():
            client.close()
        process.popen.terminate()
        process.popen.wait(20)
