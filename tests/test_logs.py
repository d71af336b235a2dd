"""The server's log as a log collector reads it: with STEPWISE_LOG_FORMAT=json every line of
a real server process (uvicorn's and the application's) is one JSON object, and a line
written while a request is answered names the id its answer carries."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import httpx

from app.logs import REQUEST_ID, JsonLines, RequestId
from tests.scale.test_multi_process import start


def test_a_json_line_has_time_level_logger_message_request_id_and_traceback() -> None:
    record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, "saved %s", ("x",), None)
    try:
        raise ValueError("the disk is full")
    except ValueError:
        record.exc_info = sys.exc_info()
    token = REQUEST_ID.set("abc123")
    try:
        RequestId().filter(record)
    finally:
        REQUEST_ID.reset(token)
    line = json.loads(JsonLines().format(record))
    assert line["level"] == "error" and line["logger"] == "app.test"
    assert line["message"] == "saved x" and line["request_id"] == "abc123"
    assert "ValueError: the disk is full" in line["exception"]
    assert line["time"].endswith("+00:00")
    outside = logging.LogRecord("app.test", logging.INFO, __file__, 1, "no request", (), None)
    RequestId().filter(outside)
    assert "request_id" not in json.loads(JsonLines().format(outside))


def test_a_server_writes_json_lines_naming_the_request(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = start(
            "json",
            database_url,
            STEPWISE_LOG_FORMAT="json",
            STEPWISE_LOG_LEVEL="info",
            stderr=sink,
        )
        try:
            answer = httpx.get(process.base + "/healthz", timeout=10)
            assert answer.status_code == 200
            request_id = answer.headers["x-request-id"]
            deadline = time.monotonic() + 10
            while request_id not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            process.popen.terminate()
            process.popen.wait(20)
    lines = [json.loads(text) for text in log.read_text().splitlines() if text.strip()]
    assert {"uvicorn.error", "uvicorn.access"} <= {line["logger"] for line in lines}
    named = [line for line in lines if line.get("request_id") == request_id]
    (access,) = [line for line in named if line["logger"] == "uvicorn.access"]
    assert "GET /healthz" in access["message"]
    assert not [line for line in lines if line["logger"].startswith("alembic")]
