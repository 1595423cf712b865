"""structlog to stderr: JSON when not on a terminal, readable on one. Never secrets or personal data."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", *, process_id: bool = False) -> None:
    """process_id: add the writing process's id as `process` (several worker processes share one stderr)."""
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    )
    process: list[structlog.typing.Processor] = (
        [structlog.processors.CallsiteParameterAdder([structlog.processors.CallsiteParameter.PROCESS])]
        if process_id
        else []
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *process,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write per line (PrintLogger's print writes the newline apart when stderr is unbuffered, as under
        # PYTHONUNBUFFERED): worker processes sharing one stderr never glue two lines together.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries' own loggers (the MCP SDK, uvicorn) go through the same renderer: one format on stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                *process,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
