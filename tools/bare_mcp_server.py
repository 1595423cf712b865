"""A bare MCP server, the floor that tools/bench_mcp.py measures favmcp against: the SDK's low-level server and
nothing else.

It lists the tools of a JSON file (a list of MCP `Tool` objects: tools/bench_mcp.py writes favmcp's own listing
there, so a `tools/list` costs both servers the same bytes) plus `noop`, and answers every call with the text
"ok": no validation, no database, no structured content. Without --tools it lists `noop` alone. With --answers
(a JSON object: tool name → a `CallToolResult`), a call of one of those tools gets that result as it is: the same
bytes a favmcp answer carries, which the client checks against the same listed output schema.

uv run python tools/bare_mcp_server.py [--tools FILE] [--answers FILE]                      # stdio
uv run python tools/bare_mcp_server.py [--tools FILE] [--answers FILE] --http --port 8766   # HTTP (SSE) at /mcp
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NOOP = types.Tool(name="noop", description="Do nothing.", input_schema={"type": "object"})
OK = types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


def build_server(tools_file: Path | None, answers_file: Path | None = None) -> Server[Any]:
    listed = json.loads(tools_file.read_text()) if tools_file else []
    recorded = json.loads(answers_file.read_text()) if answers_file else {}
    answers = {name: types.CallToolResult.model_validate(answer) for name, answer in recorded.items()}
    tools = [types.Tool.model_validate(tool) for tool in listed] + [NOOP]
    result = types.ListToolsResult(tools=tools)
    input_schemas = {t.name: t.input_schema for t in tools}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return result

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        return answers.get(params.name, OK)

    # get_tool_input_schema as favmcp sets it: otherwise the SDK runs tools/list on each HTTP call with arguments.
    return Server("bare", get_tool_input_schema=input_schemas.get, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, help="JSON list of MCP Tool objects to list beside noop.")
    parser.add_argument("--answers", type=Path, help="JSON object: tool name → the CallToolResult to answer it with.")
    parser.add_argument("--http", action="store_true", help="Serve streamable HTTP at /mcp instead of stdio.")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    server = build_server(args.tools, args.answers)
    if not args.http:
        anyio.run(serve_stdio, server, backend_options={"use_uvloop": True})  # as favmcp runs when uvloop is there
        return
    import uvicorn

    # Mounted like favmcp's: stateless, SSE responses, /mcp plus /healthz; the app's lifespan runs the session manager.
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=False,
        custom_starlette_routes=[Route("/healthz", healthz, methods=["GET"])],
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
