"""Logging with the call id on every line (a correlation id per call)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")


class CallIdFilter(logging.Filter):
    """Stamps each record with the call id of the task that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = call_id_var.get()
        return True


_TOKEN_IN_PATH = re.compile(r"(/acs/media/[0-9a-f]+/)[A-Za-z0-9_\-.]+|(token=)[^\s&\"]+")


class RedactTokens(logging.Filter):
    """Keeps per-call URL tokens out of logs (uvicorn logs every WebSocket path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and ("/acs/" in record.msg or "token=" in record.msg):
            record.msg = _TOKEN_IN_PATH.sub(
                lambda m: (m.group(1) or m.group(2)) + "***", record.msg
            )
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "call_id": getattr(record, "call_id", "-"),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallIdFilter())
    handler.addFilter(RedactTokens())
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-5s %(name)s [call=%(call_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDK logs every HTTP request at INFO; keep it for debugging only.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
