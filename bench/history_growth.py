"""How one session's history weighs on its live views: 10 / 100 / 500 vitals sets.

Runs the real app in this process (its lifespan, a fresh SQLite file, the demo accounts, httpx
over ASGI, like bench/post_cost.py), records vitals sets into one running session and, at each
history length, measures the vitals POST (p50 latency of --posts posts), the size of its JSON
answer, of a GET of the session and of the bedside live fragment (rendered by the live
renderer, as the websocket sends it), and that fragment's render time. Beside the POST's wall
time, its CPU time in this process (all its threads): on a busy machine the wall time mostly
measures the other processes, the CPU time much less so.

In the same run, as the baseline, the same figures with every view reading the session's full
history, as every view did before the window (only the chart is today's compact one in both:
the old chart drew one more SVG element per reading, so the old fragment was bigger still),
and the size of one page of the full-history endpoint. The issue asks for POST latency and
fragment size flat within ±25 % from 10 to 500 sets.

    .venv/bin/python bench/history_growth.py
    .venv/bin/python bench/history_growth.py --levels 10,100,500 --posts 20

Each level's sets are those before its measurement; the measurement itself adds 2 x --posts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fanout import BIN, OK_VITALS, ROOT, running_session, sign_in

FLAT = 0.25  # the bar: within ±25 % from the first level to the last


@contextmanager
def reading(every_set: bool) -> Iterator[None]:
    """With `every_set`, every view reads the session's full history, as before the window
    (the baseline); otherwise as the app does."""
    from app.session import read

    windowed = read.facts_of

    async def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        return await windowed(*args, **{**kwargs, "full_history": True})

    if every_set:
        read.facts_of = full  # type: ignore[assignment]
    try:
        yield
    finally:
        read.facts_of = windowed  # type: ignore[assignment]


MODES = (False, True)  # the window, then the baseline (every set)


async def figures_at(app, nurse: httpx.AsyncClient, sid: int, posts: int) -> list[dict]:
    """Both modes' figures, the posts and renders alternating between them so that a change in
    the machine's load during the run weighs on both alike."""
    got: dict[bool, dict[str, list[float]]] = {
        m: {"post_ms": [], "post_cpu_ms": [], "post_kb": [], "render_ms": []} for m in MODES
    }
    renderer = app.state.live_renderer
    for n in range(posts):
        for mode in MODES:
            with reading(mode):
                # Each post starts with the collector's debt paid: the baseline's garbage
                # (hundreds of parsed sets) must not make the window's next post pay for it.
                gc.collect()
                started, cpu = time.perf_counter(), time.process_time()
                answer = await nurse.post(
                    f"/api/v1/sessions/{sid}/vitals",
                    json={**OK_VITALS, "heart_rate": 60 + n % 38},
                )
                got[mode]["post_ms"].append((time.perf_counter() - started) * 1000)
                got[mode]["post_cpu_ms"].append((time.process_time() - cpu) * 1000)
                assert answer.status_code == 200, answer.text
                got[mode]["post_kb"].append(len(answer.content) / 1024)
                started = time.perf_counter()
                await renderer.session(sid, frozenset({"nurse"}), None)
                got[mode]["render_ms"].append((time.perf_counter() - started) * 1000)
    out = []
    for mode in MODES:
        with reading(mode):
            view = await nurse.get(f"/api/v1/sessions/{sid}")
            assert view.status_code == 200, view.text
            fan = await renderer.session(sid, frozenset({"nurse"}), None)
            assert fan is not None
            fragment = fan.shared + fan.by_role["nurse"]  # what a nurse's screen receives
        figures = {key: statistics.median(values) for key, values in got[mode].items()}
        figures["get_kb"] = len(view.content) / 1024
        figures["fragment_kb"] = len(fragment.encode()) / 1024
        out.append(figures)
    return out


async def measure(levels: list[int], posts: int) -> list[tuple[int, dict, dict, float]]:
    from app.config import get_settings
    from app.main import create_app

    app = create_app(get_settings())
    rows = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        team = {r: await sign_in("http://bench", r, transport=transport) for r in ROLES}
        sid = await running_session(team, 0)
        nurse = team["nurse"]
        recorded = 1  # the baseline set
        for level in levels:
            # The first level's sets warm the app up (templates compiled, caches filled).
            while recorded < level:
                answer = await nurse.post(
                    f"/api/v1/sessions/{sid}/vitals", json={**OK_VITALS, "heart_rate": 72}
                )
                assert answer.status_code == 200, answer.text
                await app.state.live_renderer.session(sid, frozenset({"nurse"}), None)
                recorded += 1
            windowed, every = await figures_at(app, nurse, sid, posts)
            recorded += 2 * posts
            page = await nurse.get(f"/api/v1/sessions/{sid}/vitals")
            assert page.status_code == 200, page.text
            rows.append((level, windowed, every, len(page.content) / 1024))
        for client in team.values():
            await client.aclose()
    return rows


ROLES = ("nurse", "physician", "pharmacist")
COLUMNS = (
    ("post_ms", "POST ms p50"),
    ("post_cpu_ms", "POST CPU ms"),
    ("post_kb", "POST KB"),
    ("get_kb", "GET KB"),
    ("fragment_kb", "bedside KB"),
    ("render_ms", "render ms"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="10,100,500", help="vitals sets in the session")
    parser.add_argument("--posts", type=int, default=20, help="vitals posts timed per level")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STEPWISE_DATABASE_URL"] = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        os.environ.setdefault("STEPWISE_LOG_LEVEL", "warning")
        stepwise = str(BIN / "stepwise")
        for command in (["db", "upgrade"], ["user", "seed-demo"]):
            subprocess.run([stepwise, *command], check=True, capture_output=True, cwd=ROOT)
        rows = asyncio.run(measure(levels, args.posts))
    print(
        f"one session's vitals history, in process, SQLite, no screens; {args.posts} posts per "
        f"level and mode; {os.cpu_count()} CPUs"
    )
    head = "".join(f"{title:>13}" for _, title in COLUMNS)
    print(f"{'sets':>6}  {'views read':<14}{head}{'history page KB':>17}")
    for level, windowed, every, page_kb in rows:
        for mode, got in (("the window", windowed), ("baseline: all", every)):
            cells = "".join(f"{got[key]:>13.1f}" for key, _ in COLUMNS)
            extra = f"{page_kb:>17.1f}" if mode == "the window" else ""
            print(f"{level:>6}  {mode:<14}{cells}{extra}")
    first, last = rows[0][1], rows[-1][1]
    print(f"growth {rows[0][0]} -> {rows[-1][0]} sets (the bar: within ±{FLAT:.0%}):")
    for key, title in COLUMNS:
        window = last[key] / first[key] - 1
        before = rows[-1][2][key] / rows[0][2][key] - 1
        verdict = "flat" if abs(window) <= FLAT else "not flat"
        print(f"  {title:<12} window {window:+.0%} ({verdict}); baseline {before:+.0%}")


if __name__ == "__main__":
    main()
