"""What the live routes (the websocket routes and the bedside and board pages) use of the
running application: the websocket hub and the live renderer, built at start-up by app.main."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.live import hub, render


def hub_of(connection: HTTPConnection) -> hub.Hub:
    return connection.app.state.hub


def live_renderer_of(connection: HTTPConnection) -> render.LiveRenderer:
    return connection.app.state.live_renderer


Hub = Annotated[hub.Hub, Depends(hub_of)]
LiveRenderer = Annotated[render.LiveRenderer, Depends(live_renderer_of)]
