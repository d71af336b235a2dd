"""The facility's time zone: what every person reads and types. Storage stays UTC.

``STEPWISE_TIMEZONE`` names an IANA zone (``America/New_York``); empty means the machine's own
zone. The zone is configured once per process when the app is built (``configure``); pure code
takes it as an argument, and the shell passes ``zone()``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_zone: tzinfo = UTC
_zone_name = "UTC"


def machine_zone_name() -> str:
    """The machine's IANA zone: $TZ, /etc/timezone or the /etc/localtime link; UTC otherwise."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text().strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name and _valid(name):
            return name
    return "UTC"


def _valid(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def resolve(name: str) -> str:
    """The zone a setting names (empty: the machine's), or a ValueError that says why not."""
    chosen = name.strip() or machine_zone_name()
    if not _valid(chosen):
        raise ValueError(
            f"unknown time zone {chosen!r}: use an IANA name such as Europe/London or "
            "America/New_York"
        )
    return chosen


def configure(name: str) -> None:
    global _zone, _zone_name
    _zone_name = resolve(name)
    _zone = ZoneInfo(_zone_name)


def zone() -> tzinfo:
    return _zone


def zone_name() -> str:
    return _zone_name


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stored times are UTC
    return value


def local(value: datetime | str | None, fmt: str = "%H:%M", where: tzinfo | None = None) -> str:
    """A stored (UTC) time as the facility reads it: "22:36"; "" for no time."""
    when = _as_datetime(value)
    if when is None:
        return ""
    return when.astimezone(where or _zone).strftime(fmt)


def stamp(value: datetime | str | None, where: tzinfo | None = None) -> str:
    """Date, time and zone: "2026-12-07 22:36 EST"."""
    return local(value, "%Y-%m-%d %H:%M %Z", where)


def clock(value: datetime | str | None, where: tzinfo | None = None) -> str:
    """Time with seconds and zone: "22:36:05 EST"."""
    return local(value, "%H:%M:%S %Z", where)


def short(value: datetime | str | None, where: tzinfo | None = None) -> str:
    """Time and zone: "22:36 EST"."""
    return local(value, "%H:%M %Z", where)


def abbreviation(at: datetime | None = None, where: tzinfo | None = None) -> str:
    """The zone's short name at `at` (now if None): "EST", "CEST", "UTC"."""
    moment = at or datetime.now(UTC)
    return moment.astimezone(where or _zone).strftime("%Z")
