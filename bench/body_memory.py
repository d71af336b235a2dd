"""What an anonymous 10 MB body costs the server: its resident memory (VmRSS) before and after
sending such bodies to `POST /api/v1/patients`, with the length declared and chunked (no length),
beside the same number of small anonymous posts in the same run (the baseline).

    .venv/bin/python bench/body_memory.py [--bodies 5] [--megabytes 10]

Starts the real server (`stepwise serve`, a subprocess on a fresh SQLite file); Linux only
(reads /proc)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "STEPWISE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "STEPWISE_PORT": str(port),
        "STEPWISE_LOG_LEVEL": "warning",
    }
    subprocess.run([BIN / "stepwise", "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([BIN / "stepwise", "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def measure(server: subprocess.Popen, base: str, bodies: int, size: int) -> dict[str, int]:
    """RSS growth (KiB) after each kind of anonymous post, each kind after the one before."""
    headers = {"origin": base, "content-type": "application/json"}
    grown: dict[str, int] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        client.post("/api/v1/patients", content=b"{}")  # warm up the code paths
        kinds = {
            "small body (baseline)": lambda: b'{"mrn": "X"}',
            f"{size // 1_000_000} MB, length declared": lambda: b"{" + b" " * size + b"}",
            f"{size // 1_000_000} MB, chunked": lambda: chunks(size),
        }
        for name, body in kinds.items():
            before = rss_kib(server.pid)
            statuses = {client.post("/api/v1/patients", content=body()).status_code}
            for _ in range(bodies - 1):
                statuses.add(client.post("/api/v1/patients", content=body()).status_code)
            grown[name] = rss_kib(server.pid) - before
            grown[f"{name} statuses"] = sorted(statuses)  # type: ignore[assignment]
    return grown


def chunks(size: int) -> Iterator[bytes]:
    step = 64 * 1024
    for _ in range(size // step):
        yield b" " * step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bodies", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server, base = start_server(Path(work))
        try:
            grown = measure(server, base, args.bodies, args.megabytes * 1_000_000)
        finally:
            server.terminate()
            server.wait(10)
    print(f"{args.bodies} anonymous posts of each kind to POST /api/v1/patients")
    print(f"{'kind':34} {'RSS growth':>12}  answers")
    for name, value in grown.items():
        if name.endswith("statuses"):
            continue
        print(f"{name:34} {value / 1024:9.2f} MiB  {grown[name + ' statuses']}")


if __name__ == "__main__":
    main()
