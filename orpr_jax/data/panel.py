"""Assembly of a data set for :mod:`orpr_jax.data.loader`: the sales table checked
against the rows table and laid out as ``[T, R]`` demand and promotion panels.

The checks run in a fixed order (rows table, sales cells, ids, the warehouse/category a
sales table may repeat, duplicate and missing days, capacity), so the first problem of a
data set is the one reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orpr_jax.data.dataset import InventoryData
from orpr_jax.data.validate import (
    _MAX_TEXT,
    FLOAT32_MAX,
    SALES_COLUMNS,
    _as_text,
    _capacity,
    _check_columns,
    _dates,
    _fmt,
    _numbers,
    _promo,
    _raise_at_first,
    _rows_table,
    _show,
    _text,
)


def _build(
    sales_df, rows_df, capacity_df, *, fill_missing_days: bool, name: str, sources: dict
) -> InventoryData:
    rows = _rows_table(rows_df, sources["rows"])
    source = sources["sales"]
    row_ids, dates, sales, promo = _sales_cells(sales_df, source)
    column, lines_per_row = _match_rows(sales_df, rows, row_ids, dates, source,
                                        sources["rows"])
    demand, promo_panel, first = _panel(rows, row_ids, dates, sales, promo, column,
                                        lines_per_row, source, fill_missing_days)
    capacity = None
    if capacity_df is not None:
        warehouses = sorted(rows["warehouse"].unique())
        capacity = _capacity(capacity_df, warehouses, sources["capacity"])
    return InventoryData(
        demand=demand,
        promo=promo_panel,
        rows=rows,
        start_date=pd.Timestamp(first),
        capacity=capacity,
        name=name,
    )


def _sales_cells(sales_df, source: str):
    """``(row_ids, dates, sales, promo)`` of the sales lines, each checked."""
    optional = [c for c, required in SALES_COLUMNS.items() if not required]
    _check_columns(
        sales_df, source, [c for c, required in SALES_COLUMNS.items() if required], optional
    )
    row_ids = _text(sales_df, "row_id", source)
    dates = _dates(sales_df, row_ids, source)
    sales = _numbers(sales_df["sales"])
    # Above float32's range a value would become inf in the [T, R] panel.
    _raise_at_first(~np.isfinite(sales) | (sales < 0) | (sales > FLOAT32_MAX), lambda i: (
        f"sales={_fmt(sales_df['sales'].iloc[i])} for row_id={row_ids[i]!r} on "
        f"{dates[i]} in {source} is not allowed; expected finite numbers >= 0, {_MAX_TEXT}"
    ))
    promo = (
        _promo(sales_df["promo"], row_ids, dates, source)
        if "promo" in sales_df.columns
        else np.zeros(len(sales))
    )
    return row_ids, dates, sales, promo


def _match_rows(sales_df, rows: pd.DataFrame, row_ids, dates, source: str,
                rows_source: str):
    """``(column, lines_per_row)``: each sales line's row index and each row's line count.

    Raises on ids in one table but not the other, and on a warehouse/category of the
    sales table that disagrees with the rows table.
    """
    num_rows = len(rows)
    # Ids in one table but not the other.
    column = pd.Index(rows["row_id"]).get_indexer(row_ids)
    unknown = column < 0
    if unknown.any():
        ids = pd.unique(row_ids[unknown])
        raise ValueError(
            f"unknown row_id(s) {_show(ids)} in {source}: not in the {rows_source}; "
            "expected every sales row_id to have a line in the rows table"
        )
    lines_per_row = np.bincount(column, minlength=num_rows)
    if np.any(lines_per_row == 0):
        ids = rows["row_id"].to_numpy()[lines_per_row == 0]
        raise ValueError(
            f"row_id(s) {_show(ids)} of the {rows_source} have no sales lines in "
            f"{source}; expected at least one line per row_id (or drop the row)"
        )

    # The warehouse/category a sales table may repeat must match the rows table.
    for field in ("warehouse", "category"):
        if field not in sales_df.columns:
            continue
        given = sales_df[field]
        present = given.notna().to_numpy()
        text = _as_text(given, field, source).to_numpy()
        expected = rows[field].to_numpy()[column]
        _raise_at_first(present & (text != expected), lambda i: (
            f"{field}={text[i]!r} for row_id={row_ids[i]!r} on {dates[i]} in {source} "
            f"disagrees with {field}={expected[i]!r} in the {rows_source}; "
            "expected the same value in both"
        ))
    return column, lines_per_row


def _panel(rows, row_ids, dates, sales, promo, column, lines_per_row, source: str,
           fill_missing_days: bool):
    """``(demand, promo, first)``: ``[T, R]`` panels over every day from the first to the
    last date, and the first date; raises on duplicate or (unless filled) missing days."""
    num_rows = len(rows)
    first, last = dates.min(), dates.max()
    num_days = int((last - first).astype(np.int64)) + 1
    day = (dates - first).astype(np.int64)
    cell = column.astype(np.int64) * num_days + day
    _raise_at_first(pd.Series(cell).duplicated().to_numpy(), lambda i: (
        f"duplicate (row_id, date) pair: row_id={row_ids[i]!r}, date={dates[i]} appears "
        f"more than once in {source}; expected one sales line per row_id and date"
    ))
    if not fill_missing_days and np.any(lines_per_row < num_days):
        r = int(np.argmax(lines_per_row < num_days))
        seen = np.zeros(num_days, dtype=bool)
        seen[day[column == r]] = True
        gap = first + np.timedelta64(int(np.argmin(seen)), "D")
        raise ValueError(
            f"date gap: row_id={rows['row_id'].iloc[r]!r} has no sales line for date={gap} "
            f"({num_days - lines_per_row[r]} of {num_days} days missing) in {source}; "
            f"expected one line per day from {first} to {last} for every row_id, or "
            "fill_missing_days=True to fill missing days with 0 sales and no promo"
        )
    demand = np.zeros((num_days, num_rows), dtype=np.float32)
    promo_panel = np.zeros((num_days, num_rows), dtype=np.float32)
    demand[day, column] = sales
    promo_panel[day, column] = promo
    return demand, promo_panel, first
