"""Cross-site request forgery defences.

Two independent checks on every unsafe request:
1. the browser says the request comes from our own origin (`Sec-Fetch-Site: same-origin`, or,
   from clients that do not send it, an `Origin` equal to the requested host) — middleware;
2. a token bound to the login session travels in the `X-CSRF-Token` header (htmx sends it from
   `hx-headers` on <body>) or in a `csrf_token` form field — checked with the user's session.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import Scope

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def request_origin(headers: Mapping[str, str], scope: Scope) -> str:
    """scheme://host[:port] of the request as the browser addressed it."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host = headers.get("host", "")
    return f"{scheme}://{host}".lower()


def _normalise_origin(origin: str) -> str:
    try:
        parts = urlsplit(origin.strip().lower())
        parts.port  # noqa: B018 - raises on a malformed port, which is not this site either
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    netloc = parts.netloc
    default_port = {"http": ":80", "https": ":443"}.get(parts.scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return f"{parts.scheme}://{netloc}"


def origin_allowed(
    origin: str | None, headers: Mapping[str, str], scope: Scope, allowed_origins: frozenset[str]
) -> bool:
    if not origin or origin == "null":
        return False
    normalised = _normalise_origin(origin)
    return bool(normalised) and (
        normalised == _normalise_origin(request_origin(headers, scope))
        or normalised in allowed_origins
    )


def cross_site_refusal(
    headers: Mapping[str, str], scope: Scope, allowed_origins: frozenset[str]
) -> str | None:
    """Why this unsafe request must be refused as cross-site, or None when it may proceed."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site == "same-origin":
            return None
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin is None:
        return "cross-site request refused: no Origin header"
    if not origin_allowed(origin, headers, scope, allowed_origins):
        return f"cross-site request refused: origin {origin} is not this site"
    return None


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def parse_allowed_origins(setting: str) -> frozenset[str]:
    return frozenset(o for o in (_normalise_origin(p) for p in setting.split(",")) if o)
