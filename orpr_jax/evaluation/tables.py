"""Metric tables: rich for the terminal, Markdown for reports and the README."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

#: (metric key, column title, format) shown in comparison tables.
COLUMNS = (
    ("total_cost", "total cost", "{:,.0f}"),
    ("cost_per_row_day", "cost/row-day", "{:.3f}"),
    ("holding_cost", "holding", "{:,.0f}"),
    ("lost_sales_cost", "lost sales", "{:,.0f}"),
    ("turnover_days", "turnover days", "{:.2f}"),
    ("in_stock_rate", "in-stock", "{:.2%}"),
    ("fill_rate", "fill rate", "{:.2%}"),
)


def _cells(metrics: dict) -> list[str]:
    return [fmt.format(metrics[key]) for key, _, fmt in COLUMNS]


def rich_table(title: str, rows: Sequence[tuple[str, dict]]) -> Table:
    """A rich table with one line per ``(policy name, metrics)``."""
    table = Table(title=title)
    table.add_column("policy")
    for _, name, _ in COLUMNS:
        table.add_column(name, justify="right")
    for name, metrics in rows:
        table.add_row(name, *_cells(metrics))
    return table


def markdown_table(rows: Sequence[tuple[str, dict]]) -> str:
    """The same table as GitHub Markdown."""
    head = "| policy | " + " | ".join(name for _, name, _ in COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(COLUMNS)
    body = ["| " + name + " | " + " | ".join(_cells(m)) + " |" for name, m in rows]
    return "\n".join([head, sep, *body])


def print_table(title: str, rows: Sequence[tuple[str, dict]], console: Console | None = None):
    """Prints :func:`rich_table` to ``console`` (stdout by default)."""
    # Wide enough for the whole table when stdout is not a terminal (rich then assumes 80).
    (console or Console(width=150)).print(rich_table(title, rows))
