"""Transfer sizes of the bedside and board pages: what a tablet downloads to open them.

Starts the real server (a subprocess on a fresh SQLite file), signs a nurse in, starts one
session, and fetches each page with every stylesheet and script it links, three ways:

- baseline: no compression, every file downloaded again on each load (what a browser did
  before static files had compression and cache headers);
- first load: gzip, nothing cached yet;
- repeat load: gzip, the static files kept by the browser (their versioned URLs are cached for
  a year), so only the page itself travels.

Bytes are counted on the wire (the Content-Length the server sent, or the raw body).

    .venv/bin/python bench/transfer_sizes.py
"""

from __future__ import annotations

import asyncio
import gzip
import re
import tempfile
from pathlib import Path

import httpx
from fanout import running_session, sign_in, stepwise_servers

ASSET = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js))(?:\?v=[0-9a-f]+)?"')
VERSIONED = re.compile(r'(?:href|src)="(/static/[^"]+\?v=[0-9a-f]+)"')


async def wire_bytes(client: httpx.AsyncClient, path: str, encoding: str) -> tuple[int, str]:
    """Bytes on the wire, and the page's HTML (for a page) or the Cache-Control (for a file)."""
    async with client.stream("GET", path, headers={"accept-encoding": encoding}) as answer:
        assert answer.status_code == 200, (path, answer.status_code)
        raw = b"".join([chunk async for chunk in answer.aiter_raw()])
        headers = answer.headers
    if headers["content-type"].startswith("text/html"):
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        return len(raw), body.decode()
    return len(raw), headers.get("cache-control", "")


async def measure(client: httpx.AsyncClient, path: str) -> dict[str, int]:
    baseline_page, html = await wire_bytes(client, path, "identity")
    assets = sorted(set(ASSET.findall(html)))
    versioned = sorted(set(VERSIONED.findall(html)))
    baseline = baseline_page
    for asset in assets:
        size, _ = await wire_bytes(client, asset, "identity")
        baseline += size
    page, _ = await wire_bytes(client, path, "gzip")
    first = page
    cached = 0
    for asset in versioned:
        size, cache = await wire_bytes(client, asset, "gzip")
        first += size
        cached += "immutable" in cache
    return {
        "baseline": baseline,
        "first": first,
        "repeat": page,
        "assets": len(versioned),
        "cached": cached,
        "page_identity": baseline_page,
        "page_gzip": page,
    }


def kb(n: int) -> str:
    return f"{n / 1024:6.1f} KB"


async def run(base: str) -> None:
    team = {role: await sign_in(base, role) for role in ("nurse", "physician", "pharmacist")}
    sid = await running_session(team, 1)
    rows = []
    for name, path in (("bedside", f"/sessions/{sid}"), ("board", "/board")):
        rows.append((name, await measure(team["nurse"], path)))
    print(f"{'page':<9} {'baseline':>10} {'first load':>11} {'repeat load':>12}  saving  files")
    for name, m in rows:
        saving = 1 - m["first"] / m["baseline"]
        print(
            f"{name:<9} {kb(m['baseline']):>10} {kb(m['first']):>11} {kb(m['repeat']):>12}"
            f"  {saving:5.0%}   {m['cached']}/{m['assets']} cached for a year"
        )
        print(f"{'':<9} the page alone: {kb(m['page_identity'])} plain, {kb(m['page_gzip'])} gzip")
    for client in team.values():
        await client.aclose()


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as workdir,
        stepwise_servers(Path(workdir), 1, None) as bases,
    ):
        asyncio.run(run(bases[0]))


if __name__ == "__main__":
    main()
