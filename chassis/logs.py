"""Logs: one JSON object per line, each carrying the ids that let a log search meet a trace view:
trace_id and span_id (OpenTelemetry's current span), tenant_id and request_id (the request
context, chassis.context). No secret or personal data: the code logs ids and codes, never
request fields, and as a last guard an e-mail address or a bearer token (a JWT) that slips into
a message is masked.

    {"time": "...", "level": "INFO", "logger": "chassis.access", "message": "...",
     "trace_id": "...", "span_id": "...", "tenant_id": "...", "request_id": "..."}
"""

from __future__ import annotations

import logging
import os
import re
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from chassis import context

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
IDS = ("trace_id", "span_id", "tenant_id", "request_id")


class ContextFilter(logging.Filter):
    """Adds the ids of the current span and request to a record (unless it carries its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                record.trace_id, record.span_id = f"{span.trace_id:032x}", f"{span.span_id:016x}"
        if not hasattr(record, "request_id"):
            ctx = context.current_or_none()
            if ctx is not None:
                record.request_id = ctx.request_id
                if ctx.tenant_id is not None:
                    record.tenant_id = str(ctx.tenant_id)
        return True


class Formatter(JsonFormatter):
    """python-json-logger's formatter: time, level, logger, message, the ids and any extra."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return _JWT.sub("[token]", _EMAIL.sub("[email]", line))


def handler(stream=None) -> logging.Handler:
    h = logging.StreamHandler(stream or sys.stderr)
    h.setFormatter(Formatter())
    h.addFilter(ContextFilter())
    return h


def configure(level: str | None = None) -> None:
    """The process' logging: JSON lines on stderr at LOG_LEVEL (default INFO)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler())
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
