"""The heartbeat every screen gets every 5 s: the server's clock, as the fragment that replaces
the clock in the page header. Screens also use it to correct their countdowns for the offset
between the server's clock and their own."""

from __future__ import annotations

from collections.abc import Callable

from app import localtime
from app.clock import Clock


def heartbeat_fragment(clock: Clock) -> Callable[[], str]:
    def render() -> str:
        now = clock.now()
        return (
            f'<time id="server-clock" hx-swap-oob="true" datetime="{now.isoformat()}" '
            f'data-speed="{clock.speed:g}" data-zone="{localtime.zone_name()}" '
            f'data-heartbeat="1">{localtime.clock(now)}</time>'
        )

    return render
