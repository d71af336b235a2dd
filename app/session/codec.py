"""SessionState <-> JSON, exactly: decimals as strings, times as ISO 8601 UTC. Pure.

The session row stores the machine's state this way; decoding is driven by the dataclasses'
own type hints, so a new field needs no codec change.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from app.session.machine import SessionState


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in session state")
        return value.isoformat()
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        (item, *_rest) = typing.get_args(kind)
        return tuple(decode(item, v) for v in value)
    if origin is typing.Literal:
        return value
    if origin is dict:
        return dict(value)
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{name: decode(hints[name], v) for name, v in value.items()})
    if kind is Decimal:
        return Decimal(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    return value


def dumps(state: SessionState) -> str:
    return json.dumps(encode(state), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> SessionState:
    return decode(SessionState, json.loads(text))
