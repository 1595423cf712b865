"""favmcp: an agentic backend for service businesses, served over MCP."""

__version__ = "0.1.0"
