"""Checks of the user-data tables for :mod:`orpr_jax.data.loader`: the column rules, the
cells (ids, numbers, dates, promo flags), the rows table and the capacity table.

Each problem raises a ``ValueError`` that names the field, the bad value (with its
``row_id``/``date`` where there is one) and what is allowed (the column reference is
``docs/data_format.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from orpr_jax.data.dataset import ROW_COLUMNS

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

#: Largest finite value a number of the data may take: the panels and the simulator's
#: parameters are float32, and a larger value would silently become ``inf``.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: How :data:`FLOAT32_MAX` is named in messages.
_MAX_TEXT = f"at most {FLOAT32_MAX:.7g} (float32)"


class _Spec:
    """Validation rule of a numeric column of the rows file."""

    def __init__(self, default=_MISSING, low=0.0, high=FLOAT32_MAX, integer=False, text=""):
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
    "lead_time_mean": _Spec(low=1.0, text=f"finite numbers >= 1 (days), {_MAX_TEXT}"),
    "lead_time_std": _Spec(text=f"finite numbers >= 0 (days), {_MAX_TEXT}"),
    "review_period": _Spec(low=1, high=365, integer=True, text="integers in [1, 365] (days)"),
    "review_offset": _Spec(default=0, integer=True, text="integers in [0, review_period)"),
    "holding_cost": _Spec(text=f"finite numbers >= 0, {_MAX_TEXT}"),
    "penalty_cost": _Spec(text=f"finite numbers >= 0, {_MAX_TEXT}"),
    "fixed_order_cost": _Spec(default=0.0, text=f"finite numbers >= 0, {_MAX_TEXT}"),
    "purchase_cost": _Spec(default=0.0, text=f"finite numbers >= 0, {_MAX_TEXT}"),
    "moq": _Spec(default=0.0, text=f"finite numbers >= 0, {_MAX_TEXT}"),
    "case_pack": _Spec(default=1.0, low=1.0, text=f"finite numbers >= 1, {_MAX_TEXT}"),
    "max_order": _Spec(default=_INF, text=f"numbers >= moq, {_MAX_TEXT}, or empty/inf for "
                                          "no limit"),
}

#: Required columns of the rows file.
ROWS_REQUIRED = ("row_id", "sku", "warehouse", "category") + tuple(
    name for name, spec in _ROW_NUMERIC.items() if spec.required
)

_TRUE = ("true",)  # promo spellings besides 1/0
_FALSE = ("false",)
_SHOWN = 5  # ids listed in an error message


def _show(ids) -> str:
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:_SHOWN])
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return f"[{shown}{more}]"


def _raise_at_first(bad: np.ndarray, message: Callable[[int], str]) -> None:
    """Raises ``ValueError(message(i))`` at the first ``i`` where ``bad`` is True, if any."""
    if bad.any():
        raise ValueError(message(int(np.argmax(bad))))


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


def _as_text(series: pd.Series, column: str, source: str) -> pd.Series:
    """``series.astype(str)``; a ``bytes`` cell that is not UTF-8 raises naming its line
    (pandas would raise a bare ``UnicodeDecodeError``)."""
    try:
        return series.astype(str)
    except UnicodeDecodeError:
        for i, value in enumerate(series):
            if isinstance(value, bytes):
                try:
                    value.decode()
                except UnicodeDecodeError:
                    raise ValueError(
                        f"{column}={value!r} on line {i + 1} of {source} is not UTF-8 "
                        "text; expected text"
                    ) from None
        raise


def _text(frame: pd.DataFrame, column: str, source: str, key=None) -> np.ndarray:
    """A column of ids as ``str`` values; empty cells raise."""
    series = frame[column]
    text = _as_text(series, column, source)
    missing = series.isna().to_numpy() | (text.str.strip() == "").to_numpy()
    _raise_at_first(missing, lambda i: (
        f"{column} is empty on line {i + 1} of {source}"
        + (f" for row_id={str(key[i])!r}" if key is not None else "")
        + "; expected a non-empty id"
    ))
    return text.to_numpy()


def _fmt(value) -> str:
    """A cell for a message: ``empty`` for a missing one, else its plain ``repr``."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return "empty"
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _numbers(series: pd.Series) -> np.ndarray:
    """A column as float64; cells that are not real numbers become NaN."""
    numeric = pd.to_numeric(series, errors="coerce")
    if pd.api.types.is_complex_dtype(numeric.dtype):
        # A complex cell is not a number of the data (casting would drop its imaginary
        # part with a warning); one whose imaginary part is 0 is its real part.
        values = numeric.to_numpy()
        return np.where(values.imag == 0, values.real, np.nan).astype(np.float64)
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


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
        text = _as_text(raw, "date", source).str.strip().where(raw.notna(), None)
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise ValueError(
                f"date in {source} has a time zone ({parsed.dtype.tz}); {expected} "
                "without one"
            )
    _raise_at_first(parsed.isna().to_numpy(), lambda i: (
        f"date={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} could not be "
        f"parsed; {expected}"
    ))
    values = parsed.to_numpy()
    days = values.astype("datetime64[D]")
    _raise_at_first(days != values, lambda i: (
        f"date={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} has a time of "
        f"day; {expected} (one line per day)"
    ))
    return days


def _promo(series: pd.Series, row_ids, dates, source: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    values = _numbers(series)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = _as_text(series, "promo", source).str.strip().str.lower().to_numpy()
        values = np.where(np.isin(text, _TRUE), 1.0, values)
        values = np.where(np.isin(text, _FALSE), 0.0, values)
    _raise_at_first(~np.isin(values, [0.0, 1.0]), lambda i: (
        f"promo={_fmt(series.iloc[i])} for row_id={row_ids[i]!r} on {dates[i]} in "
        f"{source} is not allowed; expected 0 or 1"
    ))
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
        if column == "max_order":
            bad &= ~np.isposinf(values)  # inf: no limit
        else:
            bad |= ~np.isfinite(values)
        if spec.integer:
            bad |= np.isfinite(values) & (np.round(values) != values)
        _raise_at_first(bad, lambda i: (
            f"{column}={_fmt(raw.iloc[i])} for row_id={row_ids[i]!r} in {source} is not "
            f"allowed; expected {spec.text}"
        ))
        out[column] = values
    _raise_at_first(out["review_offset"] >= out["review_period"], lambda i: (
        f"review_offset={int(out['review_offset'][i])} for row_id={row_ids[i]!r} in "
        f"{source} is not allowed; expected integers in [0, review_period="
        f"{int(out['review_period'][i])})"
    ))
    _raise_at_first(out["max_order"] < out["moq"], lambda i: (
        f"max_order={_fmt(out['max_order'][i])} for row_id={row_ids[i]!r} in {source} is "
        f"not allowed; expected numbers >= moq={_fmt(out['moq'][i])} (or empty for no "
        "limit)"
    ))
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
    _raise_at_first(~np.isfinite(values) | (values < 0) | (values > FLOAT32_MAX), lambda i: (
        f"capacity={_fmt(capacity_df['capacity'].iloc[i])} for warehouse={ids[i]!r} in "
        f"{source} is not allowed; expected finite numbers >= 0 (units per day), {_MAX_TEXT}"
    ))
    _raise_at_first(pd.Series(ids).duplicated().to_numpy(), lambda i: (
        f"duplicate warehouse={ids[i]!r} in {source}; expected one capacity line per "
        "warehouse"
    ))
    lookup = dict(zip(ids, values, strict=True))
    missing = [w for w in warehouses if w not in lookup]
    if missing:
        raise ValueError(
            f"warehouse(s) {_show(missing)} of the rows have no capacity in {source}; "
            "expected a capacity line for every warehouse"
        )
    return np.array([lookup[w] for w in warehouses], dtype=np.float32)
