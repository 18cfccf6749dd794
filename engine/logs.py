"""Process-wide logging set-up: one handler on the root logger, to stderr, text or JSON.

Owns: the log line format. Structured fields are the contract: a caller attaches them with
``logger.info("child restarted", extra={"child": "rpc_client", "restarts": 3})`` and they come out
as JSON keys (``LOG_FORMAT=json``, one object per line for log shippers) or as ``key=value`` after
the message (``LOG_FORMAT=text``, for a human at a terminal). Supervisors report start, exit,
crash and restart events this way.

Failure it contains: a log call that cannot be rendered (an extra field that is not JSON, a
message whose ``%`` arguments do not match). The formatter falls back to ``str()`` for such
fields, and the stdlib's ``handleError`` deals with the rest, so logging never takes the engine
down. It does not redact: callers must never put secrets in a log record (use
``engine.config.redact_url`` for URLs).

May import: the standard library only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, Literal

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

# Attributes every LogRecord carries; anything else on a record came from ``extra={...}``.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, tz=UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, exc (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            # A caller's field never overwrites the four fixed keys a log shipper indexes on.
            entry[key if key not in entry else f"extra_{key}"] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <msg> key=value ...``, then the traceback on following lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in _extras(record).items())
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class _EngineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` installs; only these are closed when it runs again."""


def configure_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """Route all logging to stderr at ``level`` in format ``fmt``. Idempotent: replaces any handlers
    on the root logger, so calling it again (tests, re-configuration) does not duplicate lines."""
    level_name = level.upper()
    if level_name not in LEVELS:
        raise ValueError(f"log level must be one of {'|'.join(LEVELS)}, got {level!r}")
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"log format must be text or json, got {fmt!r}")
    handler = _EngineHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, _EngineHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level_name)
    # httpx logs every request at INFO: at the RPC client's rate that drowns the engine's own
    # lines. Its requests are counted in xorj_rpc_requests_total; DEBUG shows them again.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level_name == "DEBUG" else logging.WARNING)
