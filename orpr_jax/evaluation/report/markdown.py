"""The report's Markdown: the comparison table, the breakdown tables and the text on how
to read them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from orpr_jax.evaluation.report.comparison import REPORT_METRICS

__all__ = ["BREAKDOWN_COLUMNS", "comparison_markdown"]

#: (metric key, column title, format) of the per-category and promotion-window tables.
BREAKDOWN_COLUMNS = (
    ("cost_per_row_day", "cost/row-day", "{:.3f}"),
    ("total_cost", "total cost", "{:,.0f}"),
    ("turnover_days", "turnover days", "{:.2f}"),
    ("in_stock_rate", "in-stock", "{:.2%}"),
    ("fill_rate", "fill rate", "{:.2%}"),
)

def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _cell(fmt: str, mean: float, half: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = fmt.format(mean)
    return text if half is None else f"{text} ± {fmt.format(half)}"


def comparison_markdown(rows: Sequence[dict], *, confidence: float = 0.95) -> str:
    """The rows of :func:`comparison_table` as a GitHub Markdown table.

    Cells read ``mean ± half-width`` (only the mean for a single seed); the last column is
    the change of mean total cost against the baseline row.

    Args:
        rows: output of :func:`comparison_table`.
        confidence: the coverage the rows were computed with (for the caption line).

    Returns:
        The table, with one caption line under it.
    """
    shown = [c for c in REPORT_METRICS if rows and c[0] in rows[0]["mean"]]
    head = ("| policy | seeds | " + " | ".join(c[1] for c in shown)
            + " | Δ total cost |")
    sep = "|---|---:|" + "---:|" * (len(shown) + 1)
    body = []
    for r in rows:
        cells = [_cell(fmt, r["mean"][k], r["half_width"][k]) for k, _, fmt, _ in shown]
        if r["is_baseline"]:
            change = "baseline"
        elif r["cost_change_pct"] is None:
            change = "n/a"
        else:
            change = f"{r['cost_change_pct']:+.1f}%"
        body.append(f"| {_md_escape(r['policy'])} | {r['seeds']} | " + " | ".join(cells)
                    + f" | {change} |")
    seeds = sorted({r["seeds"] for r in rows}) or [0]
    over = (f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1
            else f"{seeds[0]} to {seeds[-1]} seeds (column seeds)")
    caption = (f"Mean over {over}; ± is the half-width of the {confidence:.0%} Student-t "
               "interval of the mean (none with one seed).")
    return "\n".join([head, sep, *body, "", caption])


_HOW_TO_READ = (
    "Each cell is the mean over seeds ± the half-width of a 95% Student-t interval of "
    "that mean (no interval with one seed); overlapping intervals mean the seeds do not "
    "separate the two policies. Δ total cost is the change of mean total cost against the "
    "baseline row (negative is cheaper).",
    "**Total cost** is holding + lost-sales (+ ordering and purchase, where priced) cost "
    "summed over rows and evaluated days; lower is better.",
    "**Holding cost** is the cost of end-of-day stock on hand; lower is better on its own, "
    "but a policy can buy it with lost sales, so read it next to the lost-sales columns.",
    "**Lost units** and **lost-sales cost** count demand not met from stock on the day "
    "(backlog unit-days in backorder mode) and its penalty; lower is better.",
    "**Turnover days** is total end-of-day stock divided by total sales: how many days of "
    "sales the stock covers. Lower is better at equal service; a lower value bought with "
    "a lower in-stock or fill rate is not an improvement.",
    "**In-stock rate** is the share of row-days with stock available before demand; "
    "higher is better. It is the service level the ORPR constraints target per category.",
    "**Fill rate** is demand met from stock on the day divided by demand (1 with no "
    "demand); higher is better. It weights days by demand, so it falls most when stock-outs "
    "hit busy days such as promotions.",
)


def _breakdown_markdown(first_header: str, rows: Sequence[tuple[str, str, Mapping]]) -> str:
    head = (f"| {first_header} | policy | " + " | ".join(c[1] for c in BREAKDOWN_COLUMNS)
            + " |")
    sep = "|---|---|" + "---:|" * len(BREAKDOWN_COLUMNS)
    body = [f"| {_md_escape(a)} | {_md_escape(b)} | "
            + " | ".join(_cell(fmt, m.get(k, math.nan), None) for k, _, fmt in BREAKDOWN_COLUMNS)
            + " |" for a, b, m in rows]
    return "\n".join([head, sep, *body])
