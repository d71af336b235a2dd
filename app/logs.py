"""The server's log: one line per event on standard error, as text for a person at a terminal
or as one JSON object per line (STEPWISE_LOG_FORMAT=json) for a hospital's log collector.
uvicorn's own loggers (start-up, requests) and the application's share the format, and every
line written while a request is answered names its request id (the X-Request-Id header the
answer carries), so a complaint about one answer finds its lines."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# The id of the request being answered (app.middleware sets it), None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("stepwise_request_id", default=None)

TEXT = "%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s"


class RequestId(logging.Filter):
    """Adds the request id to every record written while a request is answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = request_id
        record.request = f" [{request_id}]" if request_id else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the request
    id when there is one, and the exception's traceback when one is logged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(level: str, form: LogFormat) -> dict[str, Any]:
    """The logging configuration (logging.config.dictConfig) for uvicorn.run's log_config."""
    formatter: dict[str, Any] = (
        {"()": JsonLines} if form == "json" else {"format": TEXT, "datefmt": "%Y-%m-%dT%H:%M:%S%z"}
    )
    loggers = ("uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestId}},
        "formatters": {"stepwise": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "stepwise",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        # uvicorn's loggers write through the root's handler, in the same format.
        "loggers": {
            **{
                name: {"handlers": [], "level": level.upper(), "propagate": True}
                for name in loggers
            },
            # Alembic says which dialect it uses at every schema check (each /healthz).
            "alembic": {"level": "WARNING"},
        },
    }
