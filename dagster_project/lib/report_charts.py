"""Static SVG charts for the report: no script, no network, prints as it shows.

Small enough to write by hand: the report needs a line chart of a few series over days,
and a chart library would add a dependency (and often JavaScript) for that. Only
numbers and ISO dates reach the SVG; the template escapes everything anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 640, 200, 44, 36, 12, 28
COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df")


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]  # x, y, label


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    series: list[Series]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def line_chart(
    days: list[date], series: dict[str, list[float | None]], *, percent: bool = True
) -> LineChart | None:
    """A chart of ``series`` (name -> values per day); None with fewer than two days."""
    if len(days) < 2:
        return None
    values = [v for vs in series.values() for v in vs if v is not None]
    # Counts: the scale's top rounded up to a multiple of 4, so the quarter ticks are
    # whole numbers (a count axis reading 3.75 or 11.25 reads as an error).
    top = 1.0 if percent else float(math.ceil(max([*values, 1.0]) / 4) * 4)
    left, right, up, bottom = PAD_L, WIDTH - PAD_R, PAD_T, HEIGHT - PAD_B
    first, last = days[0].toordinal(), days[-1].toordinal()

    def x(day: date) -> float:
        return round(left + (right - left) * (day.toordinal() - first) / max(last - first, 1), 1)

    def y(value: float) -> float:
        return round(bottom - (bottom - up) * (value / top if top else 0), 1)

    def label(value: float) -> str:
        return f"{value:.0%}" if percent else f"{value:g}"

    drawn = []
    for n, (name, vs) in enumerate(series.items()):
        pts = [(x(d), y(v), label(v)) for d, v in zip(days, vs, strict=True) if v is not None]
        drawn.append(
            Series(name, COLOURS[n % len(COLOURS)], " ".join(f"{a},{b}" for a, b, _ in pts), pts)
        )
    y_ticks = [(y(top * k / 4), label(top * k / 4)) for k in range(5)]
    step = max(1, len(days) // 6)
    x_ticks = [(x(d), d.isoformat()) for d in days[::step]]
    return LineChart(WIDTH, HEIGHT, drawn, y_ticks, x_ticks, (left, up, right, bottom))


def history_charts(history: list[dict[str, Any]]) -> dict[str, LineChart | None]:
    """The report's trend charts from reports.history rows (oldest first)."""
    days = [date.fromisoformat(str(row["day"])[:10]) for row in history]
    return {
        "rates": line_chart(
            days,
            {
                "gate compliance": [row["gate_compliance"] for row in history],
                "rework share": [row["rework_share"] for row in history],
            },
        ),
        "counts": line_chart(
            days,
            {
                "open gaps": [row["open_gaps"] for row in history],
                "open drift": [row["open_drift"] for row in history],
            },
            percent=False,
        ),
    }
