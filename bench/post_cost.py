"""What one vitals POST costs inside the server: SQL statements and time, no screens open.

Runs the real app in this process (its lifespan, a fresh SQLite file, the demo accounts),
counts every statement the engine sends while a POST is answered, and times it. In the same
run, as the baseline, a GET of the same session (the read the screens need anyway). The issue
that asks for a lean write path sets the bar at 12 statements per vitals POST.

    .venv/bin/python bench/post_cost.py                # 40 posts on a 12-step session
    .venv/bin/python bench/post_cost.py --posts 100 --history 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from fanout import BIN, OK_VITALS, ROOT, running_session, sign_in
from sqlalchemy import event

TARGET_STATEMENTS = 12


async def measure(posts: int, history: int) -> dict[str, list[float]]:
    from app.config import get_settings
    from app.main import create_app

    app = create_app(get_settings())
    figures: dict[str, list[float]] = {"post_ms": [], "post_sql": [], "get_ms": [], "get_sql": []}
    async with app.router.lifespan_context(app):
        engine = app.state.engine.sync_engine
        statements = [0]

        def count(*_args: object) -> None:
            statements[0] += 1

        event.listen(engine, "before_cursor_execute", count)
        base = "http://bench"
        transport = httpx.ASGITransport(app=app)
        team = {}
        for role in ("nurse", "physician", "pharmacist"):
            client = await sign_in(base, role, transport=transport)
            team[role] = client
        sid = await running_session(team, 0)
        nurse = team["nurse"]
        for n in range(history):  # earlier sets: what a long session has behind it
            await nurse.post(
                f"/api/v1/sessions/{sid}/vitals", json={**OK_VITALS, "heart_rate": 60 + n % 38}
            )
        for n in range(posts):
            vitals = {**OK_VITALS, "heart_rate": 60 + n % 38}
            for kind in ("post", "get"):
                statements[0] = 0
                started = time.perf_counter()
                if kind == "post":
                    answer = await nurse.post(f"/api/v1/sessions/{sid}/vitals", json=vitals)
                else:
                    answer = await nurse.get(f"/api/v1/sessions/{sid}")
                figures[f"{kind}_ms"].append((time.perf_counter() - started) * 1000)
                figures[f"{kind}_sql"].append(statements[0])
                assert answer.status_code == 200, answer.text
        for client in team.values():
            await client.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=40, help="vitals posts to measure")
    parser.add_argument("--history", type=int, default=0, help="vitals sets recorded before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STEPWISE_DATABASE_URL"] = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        os.environ.setdefault("STEPWISE_LOG_LEVEL", "warning")
        stepwise = str(BIN / "stepwise")
        for command in (["db", "upgrade"], ["user", "seed-demo"]):
            subprocess.run([stepwise, *command], check=True, capture_output=True, cwd=ROOT)
        figures = asyncio.run(measure(args.posts, args.history))
    median = statistics.median
    print(
        f"one vitals POST, in process, SQLite, no screens; {args.posts} posts after "
        f"{args.history} earlier sets; {os.cpu_count()} CPUs"
    )
    print(f"{'':<36}{'statements':>12}{'ms p50':>9}{'ms max':>9}")
    for label, kind in (("vitals POST", "post"), ("baseline: GET of the session", "get")):
        print(
            f"{label:<36}{median(figures[f'{kind}_sql']):>12.0f}"
            f"{median(figures[f'{kind}_ms']):>9.1f}{max(figures[f'{kind}_ms']):>9.1f}"
        )
    print(f"{'target for the POST':<36}{TARGET_STATEMENTS:>12}")


if __name__ == "__main__":
    main()
