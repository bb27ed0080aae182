"""Log lines as JSON objects (setting log_format: json), one per line, for collectors.

Each line holds the time (UTC, ISO 8601), level, logger and message, the traceback if
any, and the structured fields a line was logged with (the access line's request_id,
method, path, route, status, duration_ms, principal).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
