"""The report's static SVG line charts: coordinates from values, nothing from one day."""

from datetime import date

from dagster_project.lib.report_charts import HEIGHT, PAD_B, PAD_T, history_charts, line_chart


def test_values_map_to_the_plot_and_gaps_are_skipped():
    days = [date(2026, 1, 1), date(2026, 1, 8), date(2026, 1, 15)]
    chart = line_chart(days, {"compliance": [0.0, None, 1.0]})
    series = chart.series[0]
    bottom, top = HEIGHT - PAD_B, PAD_T
    assert series.points == f"44.0,{float(bottom)} 604.0,{float(top)}"  # left-low, right-high
    assert [d[2] for d in series.dots] == ["0%", "100%"]
    assert chart.x_ticks[0][1] == "2026-01-01"


def test_one_day_draws_nothing_and_counts_scale_to_their_maximum():
    assert line_chart([date(2026, 1, 1)], {"x": [1.0]}) is None
    rows = [
        {"day": date(2026, 1, 1), "gate_compliance": 0.5, "rework_share": 0.1,
         "open_gaps": 10, "open_drift": 4},
        {"day": date(2026, 2, 1), "gate_compliance": 0.75, "rework_share": 0.2,
         "open_gaps": 20, "open_drift": 2},
    ]  # fmt: skip
    charts = history_charts(rows)
    counts = charts["counts"]
    assert counts.y_ticks[-1][1] == "20"  # the top of the scale is the largest count
    assert [s.name for s in charts["rates"].series] == ["gate compliance", "rework share"]


def test_a_count_axis_ticks_whole_numbers():
    days = [date(2026, 1, 1), date(2026, 2, 1)]
    chart = line_chart(days, {"open gaps": [9, 15]}, percent=False)
    assert [label for _, label in chart.y_ticks] == ["0", "4", "8", "12", "16"]
