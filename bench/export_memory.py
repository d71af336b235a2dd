"""Export memory benchmark: does streaming the audit CSV keep the server's memory flat?

Creates a fresh SQLite database (the migrations, then the demo accounts), appends 100,000 audit
entries with a valid hash chain straight into ``audit_event`` (inserts are allowed; the
triggers refuse only UPDATE and DELETE) and moves the chain head, starts the real server
(``stepwise serve``, a subprocess), signs in as the demo auditor and downloads
``/audit/export.csv`` as a stream, twice: 10,000 entries (the baseline) and all 100,000 (both
selected by ``until``, so each export reads exactly that many rows). For each it prints the
server process's resident memory before the export and its peak during it (VmHWM from
/proc/<pid>/status, reset before each export through /proc/<pid>/clear_refs, and VmRSS polled
every few milliseconds as a cross-check), the bytes received and the rows per second.

    .venv/bin/python bench/export_memory.py
    .venv/bin/python bench/export_memory.py --rows 200000 --baseline-rows 20000

Flat memory means the peak of the large export is about the same as the baseline's peak: the
server holds one batch at a time (app.review.exports.BATCH_SIZE rows), not the export.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select, update

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from app.audit.chain import canonical_json, entry_hash  # noqa: E402
from app.audit.model import HEAD_ID, AuditChainHead, AuditEvent  # noqa: E402
from app.db import create_engine  # noqa: E402
from app.schema import upgrade  # noqa: E402

# The bulk entries are dated from here, one millisecond apart: long before the demo accounts'
# own entries, so a time filter selects exactly the first N of them.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
INSERT_BATCH = 5000
POLL_SECONDS = 0.002


def last_of(rows: int) -> datetime:
    """The time of the last of the first ``rows`` bulk entries (``until`` is inclusive)."""
    return EPOCH + timedelta(milliseconds=rows - 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the database ------------------------------------------------------------------------------


def bulk_entry(seq: int, index: int) -> dict:
    """A plausible entry: a vitals save by a nurse, with before/after state like the real ones."""
    return {
        "seq": seq,
        "occurred_at": EPOCH + timedelta(milliseconds=index),
        "actor_id": 2 + index % 7,
        "actor_username": f"nurse{index % 7}",
        "actor_role": "nurse",
        "client_addr": f"10.0.{index % 250}.{index % 200 + 1}",
        "user_agent": "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
        "action": "session.vitals",
        "entity": "session",
        "entity_id": str(1 + index // 40),
        "before_json": canonical_json({"status": "running", "version": index % 90}),
        "after_json": canonical_json(
            {
                "status": "running",
                "version": index % 90 + 1,
                "vitals": {"heart_rate": str(60 + index % 40), "spo2": "98", "sbp": "124"},
            }
        ),
        "reason": None,
        "request_id": f"req-{index:08d}",
    }


async def fill(url: str, rows: int) -> tuple[int, int]:
    """Append ``rows`` chained entries after the current head; (first seq, last seq)."""
    engine = create_engine(url)
    event, head = AuditEvent.__table__, AuditChainHead.__table__
    try:
        async with engine.begin() as conn:
            last_seq, last_hash = (
                await conn.execute(
                    select(head.c.last_seq, head.c.last_hash).where(head.c.id == HEAD_ID)
                )
            ).one()
            first = last_seq + 1
            batch: list[dict] = []
            for index in range(rows):
                fields = bulk_entry(last_seq + 1, index)
                fields["prev_hash"] = last_hash
                fields["hash"] = last_hash = entry_hash(fields)
                last_seq += 1
                batch.append(fields)
                if len(batch) == INSERT_BATCH:
                    await conn.execute(insert(event), batch)
                    batch = []
            if batch:
                await conn.execute(insert(event), batch)
            await conn.execute(
                update(head)
                .where(head.c.id == HEAD_ID)
                .values(last_seq=last_seq, last_hash=last_hash)
            )
        return first, last_seq
    finally:
        await engine.dispose()


# --- the server --------------------------------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1))


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def stepwise_server(env: dict[str, str], port: int):
    process = subprocess.Popen([str(BIN / "stepwise"), "serve"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield process, base
    finally:
        process.terminate()
        process.wait(20)


def sign_in(client: httpx.Client, role: str) -> httpx.Client:
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token, "no login form"
    answer = client.post(
        "/login",
        data={
            "username": role,
            "password": f"{role}-demo-pass",
            "login_token": token.group(1),
            "next": "/",
        },
    )
    assert answer.status_code == 303, answer.text
    return client


@dataclass
class Measure:
    label: str
    rows: int
    nbytes: int
    seconds: float
    rss_before_kib: int
    hwm_kib: int | None  # VmHWM after a reset: the kernel's own peak
    polled_peak_kib: int

    @property
    def peak_kib(self) -> int:
        return max(self.hwm_kib or 0, self.polled_peak_kib)


def export(client: httpx.Client, pid: int, label: str, until: datetime) -> Measure:
    """Download one export as a stream, watching the server's memory meanwhile."""
    time.sleep(0.5)  # let the server settle after the previous request
    rss_before = status_kib(pid, "VmRSS")
    has_hwm = reset_peak(pid)
    peak = [rss_before]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError, AssertionError):
                peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
            time.sleep(POLL_SECONDS)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    lines = nbytes = 0
    started = time.perf_counter()
    params = {"until": until.isoformat()}
    with client.stream("GET", "/audit/export.csv", params=params) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            nbytes += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    hwm = status_kib(pid, "VmHWM") if has_hwm else None
    return Measure(label, lines - 1, nbytes, seconds, rss_before, hwm, peak[0])


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:7.1f} MiB"


def report(results: list[Measure]) -> None:
    print()
    print(
        f"{'export':<10}{'rows':>9}{'MB sent':>9}{'seconds':>9}{'rows/s':>10}   "
        f"{'RSS before':>12}{'peak (HWM)':>13}{'peak (poll)':>13}{'growth':>11}"
    )
    for m in results:
        print(
            f"{m.label:<10}{m.rows:>9}{m.nbytes / 1e6:>9.1f}{m.seconds:>9.2f}"
            f"{m.rows / m.seconds:>10.0f}   {mib(m.rss_before_kib):>12}{mib(m.hwm_kib):>13}"
            f"{mib(m.polled_peak_kib):>13}{mib(m.peak_kib - m.rss_before_kib):>11}"
        )
    base, big = results[0], results[-1]
    ratio = big.peak_kib / base.peak_kib
    print()
    print(
        f"peak RSS, {big.rows:,} rows vs {base.rows:,} rows: {ratio:.3f}x "
        f"({(big.peak_kib - base.peak_kib) / 1024:+.1f} MiB) "
        f"for {big.rows / base.rows:.0f}x the rows"
    )
    print("flat" if ratio < 1.10 else "NOT flat: memory grows with the export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="audit entries to export")
    parser.add_argument("--baseline-rows", type=int, default=10_000, help="the baseline export")
    args = parser.parse_args()
    if not 0 < args.baseline_rows <= args.rows:
        parser.error("need 0 < --baseline-rows <= --rows")

    with tempfile.TemporaryDirectory(prefix="stepwise-export-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        port = free_port()
        env = {
            **os.environ,
            "STEPWISE_DATABASE_URL": url,
            "STEPWISE_PORT": str(port),
            "STEPWISE_LOG_LEVEL": "warning",
        }
        upgrade(url)
        stepwise = str(BIN / "stepwise")
        subprocess.run([stepwise, "user", "seed-demo"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        first, last = asyncio.run(fill(url, args.rows))
        print(
            f"inserted audit entries {first}..{last} ({args.rows:,}) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        verify = subprocess.run(
            [stepwise, "audit", "verify"], env=env, capture_output=True, text=True
        )
        print(f"stepwise audit verify: {(verify.stdout + verify.stderr).strip()}")

        with (
            stepwise_server(env, port) as (process, base),
            httpx.Client(base_url=base, headers={"origin": base}, timeout=120) as client,
        ):
            sign_in(client, "auditor")
            pid = process.pid
            print(f"server pid {pid}, RSS after start {mib(status_kib(pid, 'VmRSS'))}")
            # Warm-up: the code paths, the compiled queries and the connection pool.
            for _ in range(2):
                export(client, pid, "warm-up", last_of(1000))
            results = [
                export(
                    client,
                    pid,
                    f"{args.baseline_rows // 1000}k",
                    last_of(args.baseline_rows),
                ),
                export(client, pid, f"{args.rows // 1000}k", last_of(args.rows)),
            ]
            for measure, expected in zip(results, (args.baseline_rows, args.rows), strict=True):
                assert measure.rows == expected, (measure.label, measure.rows, expected)
            report(results)


if __name__ == "__main__":
    main()
