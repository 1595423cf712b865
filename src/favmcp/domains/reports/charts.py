"""Report charts: a small PNG drawn from a report's figures, returned beside the data (the data stays the answer).

matplotlib is the optional extra `favmcp[charts]`; it is imported inside `render` only, so that importing favmcp
(and the server's cold start) never loads it, and a server without it still serves every report without charts.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Literal

from favmcp.core.errors import FavError, FieldError, validation_failed
from favmcp.core.money import MINOR_UNITS

Value = int | str | Decimal | None  # counts and minor units as int, rates as decimal strings; None: no figure

WIDTH, HEIGHT, DPI = 6.4, 3.6, 100  # 640 x 360 pixels
MAX_LABELS = 40  # more bars than this are unreadable: the report's data has them all


def charts_missing() -> FavError:
    return validation_failed(
        "Charts need the optional extra favmcp[charts] (matplotlib), which this server does not have: install "
        '"favmcp[charts]" or ask again with chart false.',
        [FieldError(field="chart", message="needs favmcp[charts]; use false")],
    )


def scale(value: Value, unit: str | None) -> float:
    """A figure as drawn: money (unit a currency code, values in minor units) in major units."""
    if value is None:
        return 0.0
    amount = Decimal(value)
    if unit is not None and unit in MINOR_UNITS:
        amount = amount.scaleb(-MINOR_UNITS[unit])
    return float(amount)


def render(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[Value]],
    *,
    kind: Literal["bar", "line"] = "bar",
    unit: str | None = None,
) -> bytes:
    """A PNG of one or more series over `labels` (bars side by side, or lines). `unit` is a currency code when the
    values are minor units of it (drawn in major units), or any other axis label ("%", "bookings"). Raises
    validation_failed on `chart` when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise charts_missing() from None

    labels = [str(label) for label in labels[:MAX_LABELS]]
    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    ax = fig.add_subplot()
    positions = list(range(len(labels)))
    names = list(series)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [scale(v, unit) for v in list(series[name])[: len(labels)]]
        if kind == "line":
            ax.plot(positions[: len(values)], values, marker="o", label=name)
        else:
            offset = (i - (len(names) - 1) / 2) * width
            ax.bar([p + offset for p in positions[: len(values)]], values, width=width, label=name)
    ax.set_title(title, fontsize=11)
    ax.set_xticks(positions)
    ax.set_xticklabels([label if len(label) <= 18 else label[:17] + "…" for label in labels], fontsize=8)
    if len(labels) > 6:
        for tick in ax.get_xticklabels():
            tick.set_rotation(45)
            tick.set_horizontalalignment("right")
    if unit:
        ax.set_ylabel(unit, fontsize=9)
    if len(names) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    # No Software/date metadata: the same figures give the same bytes.
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
