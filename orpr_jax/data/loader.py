"""Loading user data (sales history, row attributes, warehouse capacity) into
:class:`~orpr_jax.data.dataset.InventoryData`.

Three tables make a data set (the column reference is ``docs/data_format.md``):

* **sales** (long format): one line per row and day with ``row_id``, ``date``, ``sales``
  and optionally ``promo``, ``category``, ``warehouse``;
* **rows**: one line per SKU x warehouse row with its lead time, review period, costs and
  order constraints;
* **capacity** (optional): inbound units per day of each warehouse.

Each table is a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file, or a
``pandas.DataFrame``. Everything is validated on the host, and each problem raises a
``ValueError`` that names the field, the bad value (with its ``row_id``/``date`` where
there is one) and what is allowed. This module reads and writes the files; the checks
are in :mod:`orpr_jax.data.validate` and the assembly of the ``[T, R]`` panels in
:mod:`orpr_jax.data.panel`.

Example::

    from orpr_jax.data.loader import load_data
    from orpr_jax.data.dataset import env_from_data

    data = load_data("sales.csv", "rows.csv", capacity_path="capacity.csv")
    env, params = env_from_data(data, start=28)
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orpr_jax.data.dataset import InventoryData
from orpr_jax.data.panel import _build
from orpr_jax.data.validate import (
    _ID_COLUMNS,
    CAPACITY_COLUMNS,
    ROWS_REQUIRED,
    SALES_COLUMNS,
)

#: File suffixes :func:`load_data` reads, and the format each means.
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def load_data(
    sales_path: str | os.PathLike,
    rows_path: str | os.PathLike,
    *,
    capacity_path: str | os.PathLike | None = None,
    fill_missing_days: bool = False,
    name: str | None = None,
) -> InventoryData:
    """Reads and validates a data set from CSV or Parquet files.

    The format of each file follows its suffix: ``.csv`` or ``.csv.gz`` (CSV, with a
    header line) and ``.parquet`` or ``.pq`` (Parquet). In a CSV, ids are read as text
    (``007`` stays ``007``) and only empty cells are missing values.

    Args:
        sales_path: the sales file (``row_id, date, sales`` and optionally ``promo``,
            ``category``, ``warehouse``; one line per row and day).
        rows_path: the rows file (one line per ``row_id`` with its attributes).
        capacity_path: optional capacity file (``warehouse, capacity``).
        fill_missing_days: fill the days a row has no sales line with 0 sales and no
            promotion, instead of raising.
        name: label of the data set (default: the name stored by :func:`save_data`, or
            else the sales file's name without its suffix).

    Returns:
        The data set, with days from the earliest to the latest sales date and rows in
        the order of the rows file.

    Raises:
        ValueError: an unsupported suffix, an empty file, or any invalid content (see
            :func:`load_data_frames`).
    """
    sales_df, stored_name = _read_table(sales_path, "sales", ("row_id", "date", "category",
                                                              "warehouse"))
    rows_df, _ = _read_table(rows_path, "rows", _ID_COLUMNS)
    capacity_df = None
    if capacity_path is not None:
        capacity_df, _ = _read_table(capacity_path, "capacity", ("warehouse",))
    if name is None:
        name = stored_name or _stem(Path(sales_path))
    return _build(
        sales_df,
        rows_df,
        capacity_df,
        fill_missing_days=fill_missing_days,
        name=name,
        sources={
            "sales": f"sales file '{sales_path}'",
            "rows": f"rows file '{rows_path}'",
            "capacity": f"capacity file '{capacity_path}'",
        },
    )


def load_data_frames(
    sales_df: pd.DataFrame,
    rows_df: pd.DataFrame,
    capacity_df: pd.DataFrame | None = None,
    *,
    fill_missing_days: bool = False,
    name: str = "data",
) -> InventoryData:
    """Validates in-memory tables and builds a data set (what :func:`load_data` does
    after reading the files).

    The input frames are not modified.

    Args:
        sales_df: long-format sales: ``row_id`` (str), ``date`` (ISO date string or
            datetime), ``sales`` (number >= 0), and optionally ``promo`` (0/1),
            ``category`` and ``warehouse`` (which must then agree with the rows table).
        rows_df: one line per ``row_id`` with ``sku, warehouse, category,
            lead_time_mean, lead_time_std, review_period, holding_cost, penalty_cost``
            and optionally ``review_offset`` (0), ``fixed_order_cost`` (0),
            ``purchase_cost`` (0), ``moq`` (0), ``case_pack`` (1) and ``max_order``
            (no limit). An empty cell of an optional column takes its default. Other
            columns are kept after the standard ones.
        capacity_df: optional ``warehouse, capacity`` (units per day); every warehouse
            of the rows must appear (others are ignored).
        fill_missing_days: fill the days a row has no sales line with 0 sales and no
            promotion, instead of raising.
        name: label of the data set.

    Returns:
        The data set: ``demand``/``promo`` ``[T, R]`` over every day from the earliest
        to the latest sales date, rows in the order of ``rows_df``, ``start_date`` the
        earliest date, ``capacity`` ``[W]`` in the order of ``data.warehouses``.

    Raises:
        ValueError: missing columns, empty tables, unparseable dates, negative or NaN
            sales, promo not 0/1, duplicate ``(row_id, date)`` lines, missing days (unless
            ``fill_missing_days``), ``row_id``s in one table but not the other, duplicate
            ``row_id``s, warehouse/category disagreeing between the tables, row
            attributes out of range, or a missing or negative capacity. The message names
            the field, the bad value and the allowed range.
    """
    return _build(
        sales_df,
        rows_df,
        capacity_df,
        fill_missing_days=fill_missing_days,
        name=name,
        sources={"sales": "sales", "rows": "rows", "capacity": "capacity"},
    )


def save_data(data: InventoryData, directory: str | os.PathLike) -> dict[str, Path]:
    """Writes a data set as Parquet files that :func:`load_data` reads back unchanged.

    Writes ``sales.parquet`` (long format, one line per row and day, with ``promo``),
    ``rows.parquet`` (the row table) and, if the data set has a capacity,
    ``capacity.parquet``. The data set's name is stored in the sales file's metadata.
    Read it back with::

        load_data(d / "sales.parquet", d / "rows.parquet",
                  capacity_path=d / "capacity.parquet")  # if it was written

    Args:
        data: the data set.
        directory: output folder (created if needed; existing files are replaced).

    Returns:
        The written paths by table: ``"sales"``, ``"rows"`` and possibly ``"capacity"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    num_days, num_rows = data.demand.shape
    dates = pd.date_range(data.start_date, periods=num_days, freq="D")
    row_ids = data.rows["row_id"].astype(str).to_numpy()
    sales = pd.DataFrame(
        {
            "row_id": pd.Series(np.tile(row_ids, num_days), dtype=object).astype(str),
            "date": np.repeat(dates.to_numpy(), num_rows),
            "sales": data.demand.reshape(-1).astype(np.float64),
            "promo": data.promo.reshape(-1).astype(np.float64),
        }
    )
    paths = {"sales": directory / "sales.parquet", "rows": directory / "rows.parquet"}
    table = pa.Table.from_pandas(sales, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"orpr_jax.name"] = str(data.name).encode()
    pq.write_table(table.replace_schema_metadata(metadata), paths["sales"])
    data.rows.reset_index(drop=True).to_parquet(paths["rows"], index=False)
    if data.capacity is not None:
        paths["capacity"] = directory / "capacity.parquet"
        capacity = pd.DataFrame(
            {
                "warehouse": pd.Series(data.warehouses, dtype=object).astype(str),
                "capacity": np.asarray(data.capacity, np.float64),
            }
        )
        capacity.to_parquet(paths["capacity"], index=False)
    return paths


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def _stem(path: Path) -> str:
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def _read_table(path, table: str, text_columns) -> tuple[pd.DataFrame, str | None]:
    """Reads one table; returns it and the data-set name stored in its metadata."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix is None:
        raise ValueError(
            f"{table} file '{path}' has an unsupported suffix; expected one of "
            f"{sorted(SUFFIXES)}"
        )
    if not path.is_file():
        raise ValueError(f"{table} file '{path}' does not exist")
    if path.stat().st_size == 0:
        raise ValueError(
            f"{table} file '{path}' is empty; expected a header line and at least one data "
            "line (CSV) or a table with at least one row (Parquet)"
        )
    if SUFFIXES[suffix] == "csv":
        return _read_csv(path, table, text_columns), None
    try:
        parquet = pq.read_table(path)
        frame = parquet.to_pandas()
    except (pa.ArrowException, ValueError) as e:  # not Parquet, truncated, bad types
        raise ValueError(
            f"{table} file '{path}' could not be read as Parquet ({e}); expected a Parquet "
            "table with the columns of docs/data_format.md"
        ) from None
    metadata = parquet.schema.metadata or {}
    stored = metadata.get(b"orpr_jax.name")
    return frame, (stored.decode(errors="replace") if stored is not None else None)


def _first_non_utf8(path: Path) -> tuple[int, bytes]:
    """``(line, byte)`` of the first byte of a file that is not UTF-8 (pandas' error
    names only an offset into one of its buffers)."""
    raw = (gzip.decompress if path.name.lower().endswith(".gz") else bytes)(path.read_bytes())
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return raw.count(b"\n", 0, e.start) + 1, raw[e.start:e.start + 1]
    return 1, b""  # not reached: pandas found one


#: pandas' C parser on a line with more cells than the header.
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
#: ... and on a quote that is never closed.
_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def _read_csv(path: Path, table: str, text_columns) -> pd.DataFrame:
    """Reads a CSV table; a malformed file raises a ``ValueError`` naming it and the line."""
    try:
        frame = pd.read_csv(
            path,
            dtype={c: str for c in text_columns},
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{table} file '{path}' is empty; expected a header line and at least one "
            "data line"
        ) from None
    except UnicodeDecodeError:
        line, byte = _first_non_utf8(path)
        raise ValueError(
            f"{table} file '{path}' line {line} is not UTF-8 text (byte {byte!r}); expected "
            "a UTF-8 CSV file (save it as UTF-8)"
        ) from None
    except pd.errors.ParserError as e:
        found = _FIELDS.search(str(e))
        if found:
            expected, line, saw = found.groups()
            raise ValueError(
                f"{table} file '{path}' line {line} has {saw} fields but the header has "
                f"{expected}; expected one value per column on every line (quote values "
                "that hold a comma)"
            ) from None
        quote = _QUOTE.search(str(e))
        if quote:  # pandas counts rows from 0 (the header line is row 0)
            raise ValueError(
                f"{table} file '{path}' line {int(quote.group(1)) + 1} opens a quoted value "
                "that is never closed; expected balanced double quotes"
            ) from None
        raise ValueError(
            f"{table} file '{path}' is not a well-formed CSV file "
            f"({str(e).strip().removeprefix('Error tokenizing data. C error: ')}); expected "
            "comma-separated lines with balanced quotes"
        ) from None
    header = _header(path)
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas makes the first cell(s) of each line an index when every line has more
        # cells than the header: the columns would shift silently.
        raise ValueError(
            f"{table} file '{path}' line 2 has {len(header) + frame.index.nlevels} fields "
            f"but the header has {len(header)}; expected one value per column on every "
            "line (no trailing comma)"
        )
    for i, name in enumerate(header):
        if not name:
            raise ValueError(
                f"{table} file '{path}' has an empty column name in its header (column "
                f"{i + 1}); expected a name for every column"
            )
        if name in header[:i]:
            raise ValueError(
                f"{table} file '{path}' has column {name!r} twice in its header (columns "
                f"{header.index(name) + 1} and {i + 1}); expected each column once"
            )
    return frame


def _header(path: Path) -> list[str]:
    """The column names of a CSV file's header line as written (pandas renames empty
    and repeated ones)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for line in f:
            if line.strip():
                return [c.strip() for c in next(csv.reader([line]))]
    return []


__all__ = [
    "CAPACITY_COLUMNS",
    "ROWS_REQUIRED",
    "SALES_COLUMNS",
    "SUFFIXES",
    "load_data",
    "load_data_frames",
    "save_data",
]
