"""favmcp: an agentic backend for service businesses, served over MCP."""

import sys

__version__ = "0.1.0"

# structlog imports rich, where it is installed, for console tracebacks that favmcp never renders (its console lines
# are plain, its server logs JSON): some 70 ms of every start, a tenth of a `favmcp call`. rich is hidden while
# structlog loads and importable again after, for whatever asks for it.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
