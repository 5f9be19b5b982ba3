"""Tests of :mod:`orpr_jax.data.loader`: reading, validation, round trip, simulation."""

from __future__ import annotations

import gzip
import math
import re

import jax
import numpy as np
import pandas as pd
import pytest

from orpr_jax.data.dataset import ROW_COLUMNS, env_from_data
from orpr_jax.data.loader import load_data, load_data_frames, save_data
from orpr_jax.policies.heuristics import base_stock
from orpr_jax.sim.rollout import evaluate

NUM_DAYS = 40
ROW_IDS = ["r1", "r2", "007"]  # "007" checks that ids stay text in a CSV


def make_sales(num_days: int = NUM_DAYS) -> pd.DataFrame:
    """Long sales of the three rows: sales = 10 * row + day % 5, promo every 7th day."""
    dates = pd.date_range("2024-01-01", periods=num_days, freq="D").strftime("%Y-%m-%d")
    lines = []
    for r, row_id in enumerate(ROW_IDS):
        for t, date in enumerate(dates):
            lines.append((row_id, date, float(10 * r + t % 5), int(t % 7 == 0)))
    return pd.DataFrame(lines, columns=["row_id", "date", "sales", "promo"])


def make_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": ROW_IDS,
            "sku": ["a", "b", "c"],
            "warehouse": ["W2", "W1", "W2"],
            "category": ["x", "x", "y"],
            "lead_time_mean": [2.0, 3.0, 1.0],
            "lead_time_std": [0.0, 0.5, 0.0],
            "review_period": [1, 7, 2],
            "review_offset": [0, 3, 1],
            "holding_cost": [1.0, 0.5, 0.2],
            "penalty_cost": [9.0, 4.0, 3.0],
            "moq": [0.0, 5.0, 0.0],
            "case_pack": [1.0, 6.0, 1.0],
            "max_order": [math.inf, 100.0, math.inf],
        }
    )


def make_capacity() -> pd.DataFrame:
    return pd.DataFrame({"warehouse": ["W2", "W1", "W9"], "capacity": [500.0, 80.0, 1.0]})


def expected_demand() -> np.ndarray:
    t = np.arange(NUM_DAYS)[:, None]
    return (10.0 * np.arange(3)[None, :] + t % 5).astype(np.float32)


def check_values(data) -> None:
    """The loaded panel and row table equal the frames above, value by value."""
    assert data.demand.shape == (NUM_DAYS, 3)
    assert data.demand.dtype == np.float32
    np.testing.assert_array_equal(data.demand, expected_demand())
    promo = np.broadcast_to((np.arange(NUM_DAYS) % 7 == 0)[:, None], (NUM_DAYS, 3))
    np.testing.assert_array_equal(data.promo, promo.astype(np.float32))
    assert data.start_date == pd.Timestamp("2024-01-01")
    rows = data.rows
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert list(rows["row_id"]) == ROW_IDS
    assert list(rows["warehouse"]) == ["W2", "W1", "W2"]
    assert list(rows["review_period"]) == [1, 7, 2]
    assert list(rows["review_offset"]) == [0, 3, 1]
    assert list(rows["lead_time_std"]) == [0.0, 0.5, 0.0]
    assert list(rows["fixed_order_cost"]) == [0.0, 0.0, 0.0]  # default
    assert list(rows["purchase_cost"]) == [0.0, 0.0, 0.0]  # default
    assert list(rows["case_pack"]) == [1.0, 6.0, 1.0]
    assert list(rows["max_order"]) == [math.inf, 100.0, math.inf]
    assert data.warehouses == ["W1", "W2"]


def write_csv(tmp_path, sales=None, rows=None, capacity=None):
    """Writes the frames as CSV files; returns their paths."""
    paths = {}
    for key, frame in (("sales", sales), ("rows", rows), ("capacity", capacity)):
        if frame is not None:
            paths[key] = tmp_path / f"{key}.csv"
            frame.to_csv(paths[key], index=False)
    return paths


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def test_load_csv_values(tmp_path):
    rows = make_rows().assign(max_order=["", "100", "inf"])  # empty and "inf": no limit
    p = write_csv(tmp_path, make_sales(), rows, make_capacity())
    data = load_data(p["sales"], p["rows"], capacity_path=p["capacity"])
    check_values(data)
    np.testing.assert_array_equal(data.capacity, np.array([80.0, 500.0], np.float32))
    assert data.name == "sales"


def test_load_parquet_values(tmp_path):
    sales = make_sales().assign(date=lambda d: pd.to_datetime(d["date"]))
    sales.to_parquet(tmp_path / "s.parquet", index=False)
    make_rows().to_parquet(tmp_path / "r.pq", index=False)
    data = load_data(tmp_path / "s.parquet", tmp_path / "r.pq", name="mine")
    check_values(data)
    assert data.capacity is None
    assert data.name == "mine"


def test_load_gzipped_csv_unordered_and_without_promo(tmp_path):
    sales = make_sales().drop(columns="promo").sample(frac=1.0, random_state=0)
    sales.to_csv(tmp_path / "sales.csv.gz", index=False)
    make_rows().drop(columns=["review_offset", "moq", "case_pack", "max_order"]).to_csv(
        tmp_path / "rows.csv", index=False
    )
    data = load_data(tmp_path / "sales.csv.gz", tmp_path / "rows.csv")
    np.testing.assert_array_equal(data.demand, expected_demand())
    assert not data.promo.any()
    assert list(data.rows["review_offset"]) == [0, 0, 0]
    assert list(data.rows["moq"]) == [0.0, 0.0, 0.0]
    assert list(data.rows["case_pack"]) == [1.0, 1.0, 1.0]
    assert list(data.rows["max_order"]) == [math.inf] * 3
    assert data.name == "sales"


def test_sales_warehouse_and_category_that_agree(tmp_path):
    rows = make_rows()
    lookup = rows.set_index("row_id")
    sales = make_sales()
    sales["warehouse"] = sales["row_id"].map(lookup["warehouse"])
    sales["category"] = sales["row_id"].map(lookup["category"])
    check_values(load_data_frames(sales, rows))


def test_extra_row_columns_are_kept():
    rows = make_rows().assign(note=["p", "q", "r"])
    data = load_data_frames(make_sales(), rows)
    assert list(data.rows.columns) == [*ROW_COLUMNS, "note"]
    assert list(data.rows["note"]) == ["p", "q", "r"]


def test_fill_missing_days():
    sales = make_sales()
    gone = (sales["row_id"] == "r2") & sales["date"].isin(["2024-01-05", "2024-01-06"])
    gone |= (sales["row_id"] == "007") & (sales["date"] == "2024-02-09")  # the last day
    data = load_data_frames(sales[~gone], make_rows(), fill_missing_days=True)
    expected = expected_demand()
    expected[[4, 5], 1] = 0.0
    expected[-1, 2] = 0.0
    np.testing.assert_array_equal(data.demand, expected)
    assert data.promo[4:6, 1].sum() == 0.0
    assert data.num_days == NUM_DAYS


def test_round_trip(tmp_path):
    p = write_csv(tmp_path, make_sales(), make_rows(), make_capacity())
    data = load_data(p["sales"], p["rows"], capacity_path=p["capacity"], name="trip")
    paths = save_data(data, tmp_path / "out")
    assert sorted(paths) == ["capacity", "rows", "sales"]
    back = load_data(paths["sales"], paths["rows"], capacity_path=paths["capacity"])
    np.testing.assert_array_equal(back.demand, data.demand)
    np.testing.assert_array_equal(back.promo, data.promo)
    np.testing.assert_array_equal(back.capacity, data.capacity)
    pd.testing.assert_frame_equal(back.rows, data.rows)
    assert back.start_date == data.start_date
    assert back.name == "trip"


def test_round_trip_without_capacity(tmp_path):
    data = load_data_frames(make_sales(), make_rows(), name="x")
    paths = save_data(data, tmp_path)
    assert "capacity" not in paths
    back = load_data(paths["sales"], paths["rows"])
    np.testing.assert_array_equal(back.demand, data.demand)
    pd.testing.assert_frame_equal(back.rows, data.rows)
    assert back.capacity is None


def test_end_to_end_simulation(tmp_path):
    p = write_csv(tmp_path, make_sales(), make_rows(), make_capacity())
    data = load_data(p["sales"], p["rows"], capacity_path=p["capacity"])
    env, params = env_from_data(data, start=28, history_length=28)
    metrics = evaluate(env, params, base_stock(10.0), jax.random.key(0), num_days=5)
    for key, value in metrics.items():
        if key != "per_row":
            assert np.all(np.isfinite(np.asarray(value))), key


# --------------------------------------------------------------------------------------
# File errors
# --------------------------------------------------------------------------------------


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "sales.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError, match=r"sales\.xlsx.*unsupported suffix.*\.parquet"):
        load_data(path, tmp_path / "rows.csv")


@pytest.mark.parametrize("content", ["", "row_id,date,sales\n"])
def test_empty_sales_file(tmp_path, content):
    make_rows().to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "sales.csv").write_text(content)
    with pytest.raises(ValueError, match=r"sales file .*sales\.csv.* is empty"):
        load_data(tmp_path / "sales.csv", tmp_path / "rows.csv")


def test_empty_parquet_files(tmp_path):
    make_rows().to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "sales.parquet").write_bytes(b"")  # not even a Parquet header
    with pytest.raises(ValueError, match=r"sales file .*sales\.parquet.* is empty"):
        load_data(tmp_path / "sales.parquet", tmp_path / "rows.parquet")
    make_sales().iloc[:0].to_parquet(tmp_path / "sales.parquet")  # a table without rows
    with pytest.raises(ValueError, match=r"sales file .*sales\.parquet.* is empty"):
        load_data(tmp_path / "sales.parquet", tmp_path / "rows.parquet")


def test_empty_rows_file(tmp_path):
    make_sales().to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "rows.csv").write_text("")
    with pytest.raises(ValueError, match=r"rows file .*rows\.csv.* is empty"):
        load_data(tmp_path / "sales.csv", tmp_path / "rows.csv")


def test_empty_capacity_file(tmp_path):
    p = write_csv(tmp_path, make_sales(), make_rows(), make_capacity().iloc[:0])
    with pytest.raises(ValueError, match=r"capacity file .* is empty"):
        load_data(p["sales"], p["rows"], capacity_path=p["capacity"])


# --------------------------------------------------------------------------------------
# Sales errors
# --------------------------------------------------------------------------------------


def test_missing_sales_columns():
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['sales'\].*row_id"):
        load_data_frames(make_sales().drop(columns="sales"), make_rows())


@pytest.mark.parametrize("bad", [-1.0, np.nan, "many"])
def test_bad_sales(bad):
    sales = make_sales().astype({"sales": object})
    sales.loc[5, "sales"] = bad
    with pytest.raises(ValueError, match=r"sales=.*row_id='r1' on 2024-01-06.*>= 0"):
        load_data_frames(sales, make_rows())


def test_duplicate_row_date():
    sales = make_sales()
    sales = pd.concat([sales, sales.iloc[[45]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate \(row_id, date\).*'r2'.*2024-01-06"):
        load_data_frames(sales, make_rows())


def test_gap_inside_a_row():
    sales = make_sales().drop(index=50)
    with pytest.raises(ValueError, match=r"date gap.*'r2'.*date=2024-01-11.*fill_missing_days"):
        load_data_frames(sales, make_rows())


def test_row_not_spanning_the_panel_is_a_gap():
    sales = make_sales()
    sales = sales[~((sales["row_id"] == "007") & (sales["date"] < "2024-01-03"))]
    with pytest.raises(ValueError, match=r"date gap.*'007'.*date=2024-01-01.*2 of 40"):
        load_data_frames(sales, make_rows())


def test_unknown_sales_ids():
    sales = make_sales()
    sales.loc[sales["row_id"] == "r2", "row_id"] = "zz"
    with pytest.raises(ValueError, match=r"unknown row_id\(s\) \['zz'\]"):
        load_data_frames(sales, make_rows())


def test_rows_without_sales():
    sales = make_sales()
    with pytest.raises(ValueError, match=r"row_id\(s\) \['r2'\].*no sales lines"):
        load_data_frames(sales[sales["row_id"] != "r2"], make_rows())


@pytest.mark.parametrize("bad", ["2024-13-01", "yesterday", None])
def test_unparseable_date(bad):
    sales = make_sales()
    sales.loc[3, "date"] = bad
    with pytest.raises(ValueError, match=r"date=.*row_id='r1'.*could not be parsed.*ISO"):
        load_data_frames(sales, make_rows())


def test_date_with_time_of_day():
    sales = make_sales()
    sales.loc[3, "date"] = "2024-01-04T12:00"
    with pytest.raises(ValueError, match=r"date='2024-01-04T12:00'.*time of day"):
        load_data_frames(sales, make_rows())


def test_numeric_date_column():
    sales = make_sales().assign(date=20240101)
    with pytest.raises(ValueError, match=r"date=.*not a date"):
        load_data_frames(sales, make_rows())


@pytest.mark.parametrize("bad", [2, 0.5, "yes", np.nan])
def test_bad_promo(bad):
    sales = make_sales().astype({"promo": object})
    sales.loc[2, "promo"] = bad
    with pytest.raises(ValueError, match=r"promo=.*row_id='r1' on 2024-01-03.*0 or 1"):
        load_data_frames(sales, make_rows())


def test_promo_true_false_text(tmp_path):
    sales = make_sales().astype({"promo": bool})
    p = write_csv(tmp_path, sales, make_rows())  # written as True/False
    data = load_data(p["sales"], p["rows"])
    assert data.promo[0, 0] == 1.0 and data.promo[1, 0] == 0.0


@pytest.mark.parametrize("field", ["warehouse", "category"])
def test_sales_attribute_disagrees(field):
    rows = make_rows()
    sales = make_sales()
    sales[field] = sales["row_id"].map(rows.set_index("row_id")[field])
    sales.loc[45, field] = "Q"  # row r2 on 2024-01-06
    sales.loc[46, field] = None  # an empty cell is not checked
    with pytest.raises(ValueError, match=rf"{field}='Q'.*row_id='r2' on 2024-01-06.*disagrees"):
        load_data_frames(sales, make_rows())


# --------------------------------------------------------------------------------------
# Rows errors
# --------------------------------------------------------------------------------------


def test_missing_rows_columns():
    rows = make_rows().drop(columns=["penalty_cost", "sku"])
    with pytest.raises(
        ValueError, match=r"missing required column\(s\) \['sku', 'penalty_cost'\]; required"
    ):
        load_data_frames(make_sales(), rows)


def test_duplicate_row_id():
    rows = make_rows()
    rows.loc[2, "row_id"] = "r1"
    with pytest.raises(ValueError, match=r"duplicate row_id='r1'.*lines 1 and 3"):
        load_data_frames(make_sales(), rows)


def test_empty_id():
    rows = make_rows()
    rows.loc[1, "warehouse"] = None
    with pytest.raises(ValueError, match=r"warehouse is empty.*row_id='r2'"):
        load_data_frames(make_sales(), rows)


@pytest.mark.parametrize(
    ("field", "bad", "allowed"),
    [
        ("lead_time_mean", 0.5, ">= 1"),
        ("lead_time_mean", np.nan, ">= 1"),
        ("lead_time_std", -0.1, ">= 0"),
        ("review_period", 0, r"\[1, 365\]"),
        ("review_period", 2.5, r"integers in \[1, 365\]"),
        ("review_offset", -1, r"\[0, review_period"),
        ("review_offset", 7, r"\[0, review_period=7\)"),
        ("holding_cost", -1.0, ">= 0"),
        ("penalty_cost", -2.0, ">= 0"),
        ("penalty_cost", np.inf, "finite"),
        ("fixed_order_cost", -1.0, ">= 0"),
        ("purchase_cost", -1.0, ">= 0"),
        ("case_pack", 0.5, ">= 1"),
        ("moq", -1.0, ">= 0"),
        ("max_order", 4.0, "moq=5.0"),
    ],
)
def test_bad_row_attribute(field, bad, allowed):
    rows = make_rows()
    rows[field] = rows[field].astype(np.float64) if field in rows else 0.0
    rows.loc[1, field] = bad
    with pytest.raises(ValueError, match=rf"{field}=.*row_id='r2'.*expected.*{allowed}"):
        load_data_frames(make_sales(), rows)


def test_non_numeric_row_attribute():
    rows = make_rows().astype({"holding_cost": object})
    rows.loc[0, "holding_cost"] = "cheap"
    with pytest.raises(ValueError, match=r"holding_cost='cheap'.*row_id='r1'"):
        load_data_frames(make_sales(), rows)


# --------------------------------------------------------------------------------------
# Capacity errors
# --------------------------------------------------------------------------------------


def test_negative_capacity():
    capacity = make_capacity()
    capacity.loc[1, "capacity"] = -3.0
    with pytest.raises(ValueError, match=r"capacity=-3\.0 for warehouse='W1'.*>= 0"):
        load_data_frames(make_sales(), make_rows(), capacity)


def test_missing_capacity_warehouse():
    with pytest.raises(ValueError, match=r"warehouse\(s\) \['W1'\].*no capacity"):
        load_data_frames(make_sales(), make_rows(), make_capacity().iloc[[0]])


def test_duplicate_capacity_warehouse():
    capacity = pd.concat([make_capacity(), make_capacity().iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate warehouse='W2'"):
        load_data_frames(make_sales(), make_rows(), capacity)


def test_missing_capacity_columns():
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['capacity'\]"):
        load_data_frames(make_sales(), make_rows(), make_capacity().drop(columns="capacity"))


# --------------------------------------------------------------------------------------
# Values beyond float32 and malformed lines: the file, the line or row and date, the range
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["1e308", "3.5e38", "1e400"])
def test_sales_beyond_float32_names_file_row_date_and_range(tmp_path, bad):
    sales = make_sales().astype({"sales": object})
    sales.loc[5, "sales"] = bad  # row r1 on 2024-01-06
    p = write_csv(tmp_path, sales, make_rows())
    with pytest.raises(ValueError) as info:
        load_data(p["sales"], p["rows"])  # warnings are errors here: no overflow warning
    message = str(info.value)
    assert message.startswith(f"sales={float(bad)!r} for row_id='r1' on 2024-01-06 in "
                              f"sales file '{p['sales']}' is not allowed")
    assert message.endswith("expected finite numbers >= 0, at most 3.402823e+38 (float32)")


def test_largest_float32_sales_is_allowed():
    sales = make_sales()
    sales.loc[5, "sales"] = float(np.finfo(np.float32).max)
    data = load_data_frames(sales, make_rows())
    assert data.demand[5, 0] == np.finfo(np.float32).max


@pytest.mark.parametrize("field", ["holding_cost", "lead_time_mean", "moq", "max_order"])
def test_row_attribute_beyond_float32(field):
    rows = make_rows()
    rows[field] = rows[field].astype(np.float64)
    rows.loc[1, field] = 1e39
    with pytest.raises(ValueError, match=rf"{field}=1e\+39 for row_id='r2' in rows is not "
                                         r"allowed; expected .*at most 3\.402823e\+38"):
        load_data_frames(make_sales(), rows)


def test_capacity_beyond_float32():
    capacity = make_capacity()
    capacity.loc[1, "capacity"] = 1e308
    with pytest.raises(ValueError, match=r"capacity=1e\+308 for warehouse='W1' in capacity "
                                         r"is not allowed.*at most 3\.402823e\+38"):
        load_data_frames(make_sales(), make_rows(), capacity)


def test_complex_cell_is_not_a_number():
    rows = make_rows().astype({"holding_cost": object})
    rows.loc[0, "holding_cost"] = complex(1, 2)
    with pytest.raises(ValueError, match=r"holding_cost=\(1\+2j\) for row_id='r1'"):
        load_data_frames(make_sales(), rows)


def _csv_lines(tmp_path, edit) -> dict:
    """The CSV files of the frames above, the sales file's lines changed by ``edit``."""
    p = write_csv(tmp_path, make_sales(), make_rows())
    lines = p["sales"].read_bytes().split(b"\n")
    p["sales"].write_bytes(b"\n".join(edit(lines)))
    return p


def test_line_with_extra_fields_names_file_and_line(tmp_path):
    def extra(lines):
        lines[6] += b",9"  # line 7 of the file
        return lines

    p = _csv_lines(tmp_path, extra)
    with pytest.raises(ValueError) as info:
        load_data(p["sales"], p["rows"])
    assert str(info.value) == (
        f"sales file '{p['sales']}' line 7 has 5 fields but the header has 4; expected one "
        "value per column on every line (quote values that hold a comma)"
    )


def test_line_with_missing_fields_is_an_empty_cell(tmp_path):
    def short(lines):
        lines[6] = b",".join(lines[6].split(b",")[:2])  # r1 on 2024-01-06: no sales, promo
        return lines

    p = _csv_lines(tmp_path, short)
    with pytest.raises(ValueError, match=r"sales=empty for row_id='r1' on 2024-01-06 in "
                                         r"sales file .*sales\.csv"):
        load_data(p["sales"], p["rows"])


def test_unclosed_quote_names_file_and_line(tmp_path):
    def quote(lines):
        lines[3] = lines[3].replace(b"r1", b'"r1')  # line 4 of the file
        return lines

    p = _csv_lines(tmp_path, quote)
    with pytest.raises(ValueError, match=rf"sales file '{p['sales']}' line 4 opens a quoted "
                                         "value that is never closed"):
        load_data(p["sales"], p["rows"])


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_non_utf8_bytes_name_file_and_line(tmp_path, suffix):
    text = make_sales().to_csv(index=False).replace("r2,2024-01-03", "r\xe92,2024-01-03")
    path = tmp_path / f"sales{suffix}"
    raw = text.encode("latin-1")
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    make_rows().to_csv(tmp_path / "rows.csv", index=False)
    line = text.split("\n").index("r\xe92,2024-01-03,12.0,0") + 1
    with pytest.raises(ValueError, match=rf"sales file '.*sales{re.escape(suffix)}' line "
                                         rf"{line} is not UTF-8 text \(byte b'\\xe9'\)"):
        load_data(path, tmp_path / "rows.csv")


def test_file_that_is_not_parquet(tmp_path):
    (tmp_path / "sales.parquet").write_bytes(b"PAR1 but not really")
    make_rows().to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(ValueError, match=r"sales file '.*sales\.parquet' could not be read "
                                         "as Parquet"):
        load_data(tmp_path / "sales.parquet", tmp_path / "rows.parquet")


def test_extra_field_on_every_line_is_not_a_silent_shift(tmp_path):
    """pandas would make the first column an index and shift the others by one."""
    p = _csv_lines(tmp_path, lambda lines: [lines[0]] + [b + b"," for b in lines[1:-1]] + [b""])
    with pytest.raises(ValueError, match=rf"sales file '{p['sales']}' line 2 has 5 fields "
                                         "but the header has 4.*no trailing comma"):
        load_data(p["sales"], p["rows"])


@pytest.mark.parametrize(("header", "message"), [
    (b"row_id,date,sales,", r"an empty column name in its header \(column 4\)"),
    (b"row_id,date,sales,sales", r"column 'sales' twice in its header \(columns 3 and 4\)"),
])
def test_header_names_must_be_given_once(tmp_path, header, message):
    p = _csv_lines(tmp_path, lambda lines: [header] + lines[1:])
    with pytest.raises(ValueError, match=rf"sales file '{p['sales']}' has {message}"):
        load_data(p["sales"], p["rows"])
