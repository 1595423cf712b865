"""A bare MCP server with one no-op tool: the baseline that tools/bench_mcp.py measures favmcp against.

uv run python tools/bare_mcp_server.py                      # stdio
uv run python tools/bare_mcp_server.py --http --port 8766   # stateless streamable HTTP (SSE) at /mcp
"""

from __future__ import annotations

import argparse

from mcp.server import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

server = MCPServer("bare", log_level="WARNING")


@server.tool()
def noop() -> str:
    """Do nothing."""
    return "ok"


@server.custom_route("/healthz", methods=["GET"])
async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", action="store_true", help="Serve streamable HTTP at /mcp instead of stdio.")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    if not args.http:
        server.run("stdio")
        return
    import uvicorn

    # Mounted like favmcp's: stateless, SSE responses, /mcp plus /healthz; the app's lifespan runs the session manager.
    app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=False)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
