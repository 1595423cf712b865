"""Report charts: asked with chart true, a report comes back over MCP (the SDK's client, in process) with its
structured data and a PNG as image content; without the charts extra the call is refused on `chart` and everything
else still works; importing favmcp never loads matplotlib (the cold start is measured)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from mcp import Client
from PIL import Image

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.domains.reports import charts
from favmcp.transports.mcp import StdioCredential, build_server
from tests.support import FakeClock, Owner, call, error_code, served

PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_report_with_chart_true_answers_data_and_a_png_over_mcp(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    today = clock.current.astimezone(ZoneInfo("Europe/Amsterdam")).date()
    reports = {
        "no_show_report": {"from_date": str(today - timedelta(days=30)), "to_date": str(today)},
        "inactive_members_report": {"days": 30},
        "campaign_performance_report": {},
    }
    assert (await call(app, owner.key, "create_member", {"name": "Quiet", "email": "quiet@example.com"})).ok
    async with Client(build_server(*served(app), stdio_credential=StdioCredential(owner.key))) as client:
        for tool, args in reports.items():
            drawn = await client.call_tool(tool, {**args, "chart": True})
            assert not drawn.is_error and drawn.structured_content is not None, (tool, drawn)
            text, image = drawn.content
            assert text.type == "text" and json.loads(text.text) == drawn.structured_content
            assert image.type == "image" and image.mime_type == "image/png"
            png = base64.b64decode(image.data)
            assert png.startswith(PNG)
            with Image.open(io.BytesIO(png)) as picture:
                assert picture.format == "PNG" and picture.size == (640, 360)

            plain = await client.call_tool(tool, args)
            assert not plain.is_error and [c.type for c in plain.content] == ["text"], tool
            assert plain.structured_content == drawn.structured_content, "the chart changes nothing in the data"


def test_render_draws_money_in_major_units_and_the_same_figures_the_same_way() -> None:
    assert charts.scale(1234, "EUR") == 12.34 and charts.scale(1234, "JPY") == 1234.0
    assert charts.scale(1234, "KWD") == 1.234 and charts.scale("12.5", "%") == 12.5 and charts.scale(None, None) == 0
    args = ("Revenue", ["Mon", "Tue"], {"EUR": [1050, 0]})
    first = charts.render(*args, unit="EUR")
    assert first.startswith(PNG) and first == charts.render(*args, unit="EUR")
    assert charts.render(*args, kind="line", unit="EUR").startswith(PNG)


async def test_without_matplotlib_a_chart_is_refused_on_its_field_and_the_report_still_answers(
    app: App, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as where the extra is not installed
    with pytest.raises(FavError) as missing:
        charts.render("t", ["a"], {"x": [1]})
    assert missing.value.code == "validation_failed" and "favmcp[charts]" in missing.value.body.message
    refused = await call(app, owner.key, "inactive_members_report", {"days": 30, "chart": True})
    assert error_code(refused) == "validation_failed"
    assert [f["field"] for f in refused.data["error"]["field_errors"]] == ["chart"]
    assert (await call(app, owner.key, "inactive_members_report", {"days": 30})).ok


def test_importing_favmcp_and_building_the_server_never_imports_matplotlib() -> None:
    code = (
        "import sys, favmcp.__main__, favmcp.app, favmcp.composition, favmcp.transports.mcp\n"
        "from favmcp.domains.reports import charts, people\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
