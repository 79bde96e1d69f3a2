"""Structured logs that cannot carry secrets.

Every record leaving a console handler passes :class:`RedactingFilter`: values the console knows are secret
(its keys, the bootstrap admin password: :func:`register_secret`) are replaced wherever they appear, and so is
anything shaped like a credential (``password=...``, ``Authorization: ...``, bearer and API tokens, Fernet
tokens).  The filter sits on the handler, so it also covers records from libraries (uvicorn, SQLAlchemy).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, Final, TextIO

MASK: Final = "[redacted]"
MIN_SECRET_LENGTH: Final = 6
"""Shorter registered values are not masked (masking "admin" everywhere would hide too much)."""

_PATTERNS: Final = (
    # key=value and "key": "value" forms of anything named like a secret
    re.compile(r"""(?i)(\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|csrf)[\w-]*\b["']?\s*[:=]\s*["']?)"""
               r"""([^\s"',;&}]+)"""),
    re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?)([^\"'\r\n]+)"),
    re.compile(r"(?i)(\b(?:bearer|digest|basic)\s+)([A-Za-z0-9._~+/=,-]{8,})"),
    re.compile(r"()\bobt_[A-Za-z0-9_-]{16,}"),
    re.compile(r"()\bgAAAAA[A-Za-z0-9_=-]{20,}"),
)
"""Group 1 is kept, the rest is masked."""

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message",  # uvicorn's coloured copy of the message
}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


_SECRET_KEY = re.compile(r"(?i)password|passwd|secret|token|api[_-]?key|authorization|csrf|cookie")


def _secret_name(key: str) -> bool:
    """``password``, ``api_key`` ... but not ``token_id``: references to secrets are not secrets."""
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith(("_id", "_ids"))


def scrub(value: Any) -> Any:
    """A copy of a JSON-like value with secret-named keys masked and strings redacted (audit details)."""
    if isinstance(value, Mapping):
        return {str(k): (MASK if _secret_name(str(k)) else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


class RedactingFilter(logging.Filter):
    """Renders the message once, redacts it and its extra fields, and freezes the result into the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, MASK if _secret_name(key) else scrub(value))
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), record.levelname.lower(), record.name,
            json.dumps(record.getMessage()),
        ]
        parts += [f"{key}={json.dumps(value, default=str)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def configure_logging(fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route the console's and the server's logs through one redacting handler (replacing earlier ones)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_outband_console", False)]:
        root.removeHandler(old)
    handler._outband_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
