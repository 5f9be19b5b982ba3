"""Property: whatever a malformed data set holds, the loader either returns a valid data
set (finite float32 panels, promo 0/1, finite row attributes) or raises a ``ValueError``
that names its table; never another exception, a warning (errors in this suite) or a
silent NaN/inf."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orpr_jax.data.dataset import ROW_COLUMNS
from orpr_jax.data.loader import load_data, load_data_frames
from tests.data.test_loader import make_capacity, make_rows, make_sales

# Cells that have broken loaders: overflow, non-numbers, separators, quotes, bytes.
NASTY = ["", " ", "-1", "0", "1", "1e308", "-1e308", "3.5e38", "1e400", "1e-400", "inf",
         "-inf", "nan", "NaN", "NULL", "true", "0x10", "1,5", "1;5", '"', '""', "'", "\\",
         "2024-13-01", "2024-01-01T12:00", "2024-01-01+05:00", "20240101", "\x00", "\t",
         "\xe9", "\ufeff", "r1", "W1", "x", "1_000", "١٢"]
CELLS = st.one_of(st.sampled_from(NASTY), st.text(max_size=6),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr))
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _base_lines() -> dict[str, list[bytes]]:
    """The CSV lines of a valid data set (10 days, so a few examples stay fast)."""
    frames = {"sales": make_sales(10), "rows": make_rows(), "capacity": make_capacity()}
    return {k: f.to_csv(index=False).encode().split(b"\n") for k, f in frames.items()}


@st.composite
def _mutation(draw):
    kind = draw(st.sampled_from(["cell", "cell", "cell", "add_field", "drop_field",
                                 "drop_line", "copy_line", "bytes", "truncate",
                                 "field_on_every_line"]))
    table = draw(st.sampled_from(["sales", "sales", "rows", "capacity"]))
    return kind, table, draw(st.integers(0, 200)), draw(st.integers(0, 20)), draw(CELLS), \
        draw(st.binary(min_size=1, max_size=3))


def _apply(lines: dict[str, list[bytes]], mutation) -> None:
    kind, table, line_pick, field_pick, cell, raw = mutation
    body = lines[table]
    i = line_pick % max(1, len(body) - 1)  # the last element is after the final newline
    fields = body[i].split(b",")
    j = field_pick % len(fields)
    if kind == "cell":
        fields[j] = cell.encode("utf-8", errors="surrogatepass")
    elif kind == "add_field":
        fields.insert(j, cell.encode("utf-8", errors="surrogatepass"))
    elif kind == "drop_field" and len(fields) > 1:
        del fields[j]
    elif kind == "drop_line":
        del body[i]
        return
    elif kind == "copy_line":
        body.insert(i, body[i])
        return
    elif kind == "bytes":
        at = field_pick % (len(body[i]) + 1)
        body[i] = body[i][:at] + raw + body[i][at:]
        return
    elif kind == "truncate":
        lines[table] = body[: i + 1]
        return
    elif kind == "field_on_every_line":  # e.g. a trailing comma on every data line
        lines[table] = [body[0]] + [b + b"," + cell.encode("utf-8", errors="surrogatepass")
                                    for b in body[1:-1]] + body[-1:]
        return
    body[i] = b",".join(fields)


def _check_valid(data) -> None:
    """What a data set the loader returns must be."""
    assert data.demand.dtype == np.float32 and np.all(np.isfinite(data.demand))
    assert np.all(data.demand >= 0)
    assert np.all(np.isin(data.promo, [0.0, 1.0]))
    numeric = [c for c in ROW_COLUMNS if c not in ("row_id", "sku", "warehouse", "category",
                                                   "max_order")]
    assert np.all(np.isfinite(data.rows[numeric].to_numpy(np.float64)))
    assert not np.any(np.isnan(data.rows["max_order"].to_numpy(np.float64)))  # inf: no limit
    if data.capacity is not None:
        assert np.all(np.isfinite(data.capacity)) and np.all(data.capacity >= 0)


@SETTINGS
@given(st.lists(_mutation(), min_size=1, max_size=3), st.booleans())
def test_malformed_csv_files_raise_only_value_error(mutations, with_capacity):
    lines = _base_lines()
    for mutation in mutations:
        _apply(lines, mutation)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: Path(tmp) / f"{k}.csv" for k in lines}
        for k, body in lines.items():
            paths[k].write_bytes(b"\n".join(body))
        try:
            data = load_data(paths["sales"], paths["rows"],
                             capacity_path=paths["capacity"] if with_capacity else None)
        except ValueError as e:
            # The message names the table it is about.
            assert any(f"{k} file '{paths[k]}'" in str(e) for k in paths), str(e)
            return
    _check_valid(data)


ODD = [None, np.nan, np.inf, -np.inf, 1e308, -1e308, 1e39, 3.5e38, -1, 0, 0.5, 7, 2**70,
       True, False, "", "many", " 5 ", "1e400", complex(1, 2), complex(2, 0), [1, 2],
       {"a": 1}, b"\xff", pd.Timestamp("2024-01-01"), pd.NaT, "2024-13-01", object()]
FRAME_COLUMNS = {"sales": ["row_id", "date", "sales", "promo"],
                 "rows": list(make_rows().columns),
                 "capacity": ["warehouse", "capacity"]}


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["sales", "sales", "rows", "capacity"]),
                          st.integers(0, 200), st.integers(0, 20), st.sampled_from(ODD)),
                min_size=1, max_size=3))
def test_odd_cells_in_frames_raise_only_value_error(edits):
    frames = {"sales": make_sales(10), "rows": make_rows(), "capacity": make_capacity()}
    for table, line, column, value in edits:
        frame = frames[table]
        name = FRAME_COLUMNS[table][column % len(FRAME_COLUMNS[table])]
        cells = frame[name].tolist()
        cells[line % len(frame)] = value
        frame[name] = pd.Series(cells, index=frame.index, dtype=object)
    try:
        data = load_data_frames(frames["sales"], frames["rows"], frames["capacity"])
    except ValueError as e:
        assert any(k in str(e) for k in frames), str(e)
        return
    _check_valid(data)
