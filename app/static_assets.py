"""Static files with versioned URLs: pages link `/static/<path>?v=<hash of the content>`, so a
browser may keep a file for a year without asking again, and a changed file is a new URL.
A request without the current version (an old page, a hand-typed URL) is answered fresh and
must be revalidated."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    # Keyed by modification time and size too, so an edited file (development) gets a new URL.
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def version_of(path: str) -> str | None:
    """The content hash of static/<path>, or None when there is no such file."""
    file = STATIC_DIR / path
    try:
        stat = file.stat()
    except OSError:
        return None
    if not file.is_file() or STATIC_DIR not in file.resolve().parents:
        return None
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def static_url(path: str) -> str:
    """The URL a template links a static file by."""
    version = version_of(path)
    return f"/static/{path}?v={version}" if version else f"/static/{path}"


class VersionedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            asked = QueryParams(scope.get("query_string", b"")).get("v")
            current = version_of(path)
            forever = asked is not None and current is not None and asked == current
            response.headers["cache-control"] = FOREVER if forever else REVALIDATE
        return response
