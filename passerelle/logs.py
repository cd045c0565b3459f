"""Structured logging: structlog, one JSON object per line on stdout.

Every line, structlog's own and the standard library's (aiohttp, alembic…), goes
through :func:`passerelle.redaction.redact_event` last before rendering, after
tracebacks are formatted: secrets and personal data never reach the stream.
"""

from __future__ import annotations

import logging
import sys

import structlog

from passerelle.redaction import redact_event
from passerelle.requestid import current_request_id


def add_request_id(logger: object, method: str, event: dict[str, object]) -> dict[str, object]:
    """Every line logged while serving a request carries its id."""
    if "request_id" not in event:
        rid = current_request_id()
        if rid is not None:
            event["request_id"] = rid
    return event


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact_event, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # Libraries using the standard logging module (aiohttp, alembic…) go to the same stream.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler narrates every run at INFO; our own job lines say what matters.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
