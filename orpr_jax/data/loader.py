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
there is one) and what is allowed.

Example::

    from orpr_jax.data.loader import load_data
    from orpr_jax.data.dataset import env_from_data

    data = load_data("sales.csv", "rows.csv", capacity_path="capacity.csv")
    env, params = env_from_data(data, start=28)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orpr_jax.data.dataset import ROW_COLUMNS, InventoryData

#: File suffixes :func:`load_data` reads, and the format each means.
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}

#: Columns of the sales file: name -> whether it is required.
SALES_COLUMNS = {
    "row_id": True,
    "date": True,
    "sales": True,
    "promo": False,
    "category": False,
    "warehouse": False,
}

#: Columns of the capacity file (both required).
CAPACITY_COLUMNS = ("warehouse", "capacity")

_ID_COLUMNS = ("row_id", "sku", "warehouse", "category")
_INF = float("inf")
_MISSING = object()  # "no default": the column is required


class _Spec:
    """Validation rule of a numeric column of the rows file."""

    def __init__(self, default=_MISSING, low=0.0, high=_INF, integer=False, text=""):
        self.default = default
        self.low = low
        self.high = high
        self.integer = integer
        self.text = text

    @property
    def required(self) -> bool:
        return self.default is _MISSING


#: Numeric columns of the rows file with their default (required when absent) and range.
_ROW_NUMERIC: dict[str, _Spec] = {
    "lead_time_mean": _Spec(low=1.0, text="finite numbers >= 1 (days)"),
    "lead_time_std": _Spec(text="finite numbers >= 0 (days)"),
    "review_period": _Spec(low=1, high=365, integer=True, text="integers in [1, 365] (days)"),
    "review_offset": _Spec(default=0, integer=True, text="integers in [0, review_period)"),
    "holding_cost": _Spec(text="finite numbers >= 0"),
    "penalty_cost": _Spec(text="finite numbers >= 0"),
    "fixed_order_cost": _Spec(default=0.0, text="finite numbers >= 0"),
    "purchase_cost": _Spec(default=0.0, text="finite numbers >= 0"),
    "moq": _Spec(default=0.0, text="finite numbers >= 0"),
    "case_pack": _Spec(default=1.0, low=1.0, text="finite numbers >= 1"),
    "max_order": _Spec(default=_INF, text="numbers >= moq, or empty/inf for no limit"),
}

#: Required columns of the rows file.
ROWS_REQUIRED = ("row_id", "sku", "warehouse", "category") + tuple(
    name for name, spec in _ROW_NUMERIC.items() if spec.required
)

_TRUE = ("true",)  # promo spellings besides 1/0
_FALSE = ("false",)
_SHOWN = 5  # ids listed in an error message


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
        return frame, None
    parquet = pq.read_table(path)
    metadata = parquet.schema.metadata or {}
    stored = metadata.get(b"orpr_jax.name")
    return parquet.to_pandas(), (stored.decode() if stored is not None else None)


# --------------------------------------------------------------------------------------
# Validation and assembly
# --------------------------------------------------------------------------------------


def _show(ids) -> str:
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:_SHOWN])
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return f"[{shown}{more}]"


def _check_columns(frame, source: str, required, optional=()) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{source} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} is missing required column(s) {missing}; required columns: "
            f"{list(required)}" + (f", optional: {list(optional)}" if optional else "")
        )
    if len(frame) == 0:
        raise ValueError(f"{source} is empty; expected at least one data line")


def _text(frame: pd.DataFrame, column: str, source: str, key=None) -> np.ndarray:
    """A column of ids as ``str`` values; empty cells raise."""
    series = frame[column]
    missing = series.isna().to_numpy() | (series.astype(str).str.strip() == "").to_numpy()
    if missing.any():
        i = int(np.argmax(missing))
        where = f" for row_id={str(key[i])!r}" if key is not None else ""
        raise ValueError(
            f"{column} is empty on line {i + 1} of {source}{where}; expected a non-empty id"
        )
    return series.astype(str).to_numpy()


def _fmt(value) -> str:
    """A cell for a message: ``empty`` for a missing one, else its plain ``repr``."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return "empty"
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _numbers(series: pd.Series) -> np.ndarray:
    """A column as float64; cells that are not numbers become NaN."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _dates(frame: pd.DataFrame, row_ids: np.ndarray, source: str) -> np.ndarray:
    """``date`` as ``datetime64[D]``; unparseable, missing or non-midnight dates raise."""
    raw = frame["date"]
    expected = "expected ISO dates such as '2024-01-31'"
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        raise ValueError(
            f"date={_fmt(raw.iloc[0])} for row_id={row_ids[0]!r} in {source} is not a date "
            f"(the column is numeric); {expected}"
        )
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"date in {source} has a time zone ({raw.dtype.tz}); {expected} without one"
        )
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw
    else:
        text = raw.astype(str).str.strip().where(raw.notna(), None)
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise ValueError(
                f"date in {source} has a time zone ({parsed.dtype.tz}); {expected} "
                "without one"
            )
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"date={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} could not be "
            f"parsed; {expected}"
        )
    values = parsed.to_numpy()
    days = values.astype("datetime64[D]")
    timed = days != values
    if timed.any():
        i = int(np.argmax(timed))
        raise ValueError(
            f"date={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} has a time of "
            f"day; {expected} (one line per day)"
        )
    return days


def _promo(series: pd.Series, row_ids, dates, source: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    values = _numbers(series)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.astype(str).str.strip().str.lower().to_numpy()
        values = np.where(np.isin(text, _TRUE), 1.0, values)
        values = np.where(np.isin(text, _FALSE), 0.0, values)
    bad = ~np.isin(values, [0.0, 1.0])
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"promo={_fmt(series.iloc[i])} for row_id={row_ids[i]!r} on {dates[i]} in "
            f"{source} is not allowed; expected 0 or 1"
        )
    return values


def _row_numbers(rows_df: pd.DataFrame, row_ids: np.ndarray, source: str) -> dict:
    out: dict[str, np.ndarray] = {}
    for column, spec in _ROW_NUMERIC.items():
        if column not in rows_df.columns:
            out[column] = np.full(len(row_ids), spec.default, dtype=np.float64)
            continue
        raw = rows_df[column]
        values = _numbers(raw)
        if not spec.required:
            values = np.where(np.isnan(values) & raw.isna().to_numpy(), spec.default, values)
        bad = np.isnan(values) | (values < spec.low) | (values > spec.high)
        if column != "max_order":
            bad |= ~np.isfinite(values)
        if spec.integer:
            bad |= np.isfinite(values) & (np.round(values) != values)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{column}={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} is not "
                f"allowed; expected {spec.text}"
            )
        out[column] = values
    offset_bad = out["review_offset"] >= out["review_period"]
    if offset_bad.any():
        i = int(np.argmax(offset_bad))
        raise ValueError(
            f"review_offset={int(out['review_offset'][i])} for row_id={row_ids[i]!r} in "
            f"{source} is not allowed; expected integers in [0, review_period="
            f"{int(out['review_period'][i])})"
        )
    order_bad = out["max_order"] < out["moq"]
    if order_bad.any():
        i = int(np.argmax(order_bad))
        raise ValueError(
            f"max_order={_fmt(out['max_order'][i])} for row_id={row_ids[i]!r} in {source} is "
            f"not allowed; expected numbers >= moq={_fmt(out['moq'][i])} (or empty for no "
            "limit)"
        )
    for column in ("review_period", "review_offset"):
        out[column] = out[column].astype(np.int64)
    return out


def _rows_table(rows_df: pd.DataFrame, source: str) -> pd.DataFrame:
    optional = [c for c in ROW_COLUMNS if c not in ROWS_REQUIRED]
    _check_columns(rows_df, source, ROWS_REQUIRED, optional)
    row_ids = _text(rows_df, "row_id", source)
    dup = pd.Series(row_ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        first = int(np.argmax(row_ids == row_ids[i]))
        raise ValueError(
            f"duplicate row_id={row_ids[i]!r} in {source} (lines {first + 1} and {i + 1}); "
            "expected one line per row_id"
        )
    table: dict[str, object] = {"row_id": row_ids}
    for column in ("sku", "warehouse", "category"):
        table[column] = _text(rows_df, column, source, key=row_ids)
    table.update(_row_numbers(rows_df, row_ids, source))
    rows = pd.DataFrame({c: table[c] for c in ROW_COLUMNS})
    for column in _ID_COLUMNS:
        rows[column] = pd.Series(table[column], dtype=object).astype(str)
    extra = [c for c in rows_df.columns if c not in ROW_COLUMNS]
    for column in extra:
        rows[column] = rows_df[column].to_numpy()
    return rows


def _capacity(capacity_df, warehouses: list[str], source: str) -> np.ndarray:
    _check_columns(capacity_df, source, CAPACITY_COLUMNS)
    ids = _text(capacity_df, "warehouse", source)
    values = _numbers(capacity_df["capacity"])
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"capacity={_fmt(capacity_df['capacity'].iloc[i])} for warehouse={ids[i]!r} in "
            f"{source} is not allowed; expected finite numbers >= 0 (units per day)"
        )
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise ValueError(
            f"duplicate warehouse={ids[i]!r} in {source}; expected one capacity line per "
            "warehouse"
        )
    lookup = dict(zip(ids, values, strict=True))
    missing = [w for w in warehouses if w not in lookup]
    if missing:
        raise ValueError(
            f"warehouse(s) {_show(missing)} of the rows have no capacity in {source}; "
            "expected a capacity line for every warehouse"
        )
    return np.array([lookup[w] for w in warehouses], dtype=np.float32)


def _build(
    sales_df, rows_df, capacity_df, *, fill_missing_days: bool, name: str, sources: dict
) -> InventoryData:
    rows = _rows_table(rows_df, sources["rows"])
    num_rows = len(rows)

    source = sources["sales"]
    optional = [c for c, required in SALES_COLUMNS.items() if not required]
    _check_columns(
        sales_df, source, [c for c, required in SALES_COLUMNS.items() if required], optional
    )
    row_ids = _text(sales_df, "row_id", source)
    dates = _dates(sales_df, row_ids, source)
    sales = _numbers(sales_df["sales"])
    bad = ~np.isfinite(sales) | (sales < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"sales={_fmt(sales_df['sales'].iloc[i])} for row_id={row_ids[i]!r} on "
            f"{dates[i]} in {source} is not allowed; expected finite numbers >= 0"
        )
    promo = (
        _promo(sales_df["promo"], row_ids, dates, source)
        if "promo" in sales_df.columns
        else np.zeros(len(sales))
    )

    # Ids in one table but not the other.
    column = pd.Index(rows["row_id"]).get_indexer(row_ids)
    unknown = column < 0
    if unknown.any():
        ids = pd.unique(row_ids[unknown])
        raise ValueError(
            f"unknown row_id(s) {_show(ids)} in {source}: not in the {sources['rows']}; "
            "expected every sales row_id to have a line in the rows table"
        )
    lines_per_row = np.bincount(column, minlength=num_rows)
    if np.any(lines_per_row == 0):
        ids = rows["row_id"].to_numpy()[lines_per_row == 0]
        raise ValueError(
            f"row_id(s) {_show(ids)} of the {sources['rows']} have no sales lines in "
            f"{source}; expected at least one line per row_id (or drop the row)"
        )

    # The warehouse/category a sales table may repeat must match the rows table.
    for field in ("warehouse", "category"):
        if field not in sales_df.columns:
            continue
        given = sales_df[field]
        present = given.notna().to_numpy()
        text = given.astype(str).to_numpy()
        expected = rows[field].to_numpy()[column]
        mismatch = present & (text != expected)
        if mismatch.any():
            i = int(np.argmax(mismatch))
            raise ValueError(
                f"{field}={text[i]!r} for row_id={row_ids[i]!r} on {dates[i]} in {source} "
                f"disagrees with {field}={expected[i]!r} in the {sources['rows']}; "
                "expected the same value in both"
            )

    # The panel: every day from the first to the last date.
    first, last = dates.min(), dates.max()
    num_days = int((last - first).astype(np.int64)) + 1
    day = (dates - first).astype(np.int64)
    cell = column.astype(np.int64) * num_days + day
    dup = pd.Series(cell).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise ValueError(
            f"duplicate (row_id, date) pair: row_id={row_ids[i]!r}, date={dates[i]} appears "
            f"more than once in {source}; expected one sales line per row_id and date"
        )
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


__all__ = [
    "CAPACITY_COLUMNS",
    "ROWS_REQUIRED",
    "SALES_COLUMNS",
    "SUFFIXES",
    "load_data",
    "load_data_frames",
    "save_data",
]
