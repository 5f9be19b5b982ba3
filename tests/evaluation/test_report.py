"""The run report: seed-aggregated table against hand computations, breakdown helpers on a
hand-made trajectory (and against ``evaluate`` on a simulated one), every plot, report.md
with and without its optional parts, and every bad input.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.evaluation.report import (
    comparison_markdown,
    comparison_table,
    per_category_metrics,
    plot_category_breakdown,
    plot_learning_curves,
    plot_promotion_windows,
    plot_trajectories,
    policy_family,
    promotion_window_metrics,
    t_interval,
    trajectory_series,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T975_DF2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom


def _metrics(total, holding=0.0, lost=0.0, lost_cost=0.0, turnover=10.0, in_stock=0.9,
             fill=0.95):
    return {"total_cost": total, "holding_cost": holding, "lost_units": lost,
            "lost_sales_cost": lost_cost, "turnover_days": turnover,
            "in_stock_rate": in_stock, "fill_rate": fill, "cost_per_row_day": total / 100}


def _three_seeds():
    # incumbent total cost 100, 110, 120: mean 110, s = 10, half = t * 10 / sqrt(3)
    # ORPR total cost 90, 95, 100: mean 95, s = 5, half = t * 5 / sqrt(3)
    # the incumbent's tuned safety days differ per seed, so its names differ.
    return {
        "0": [{"name": "incumbent rule (L + R + 2 days)",
               "metrics": _metrics(100.0, holding=40.0, in_stock=0.90)},
              {"name": "ORPR (pretrained + PPO)", "metrics": _metrics(90.0, in_stock=0.94)}],
        "1": [{"name": "incumbent rule (L + R + 3 days)",
               "metrics": _metrics(110.0, holding=50.0, in_stock=0.92)},
              {"name": "ORPR (pretrained + PPO)", "metrics": _metrics(95.0, in_stock=0.95)}],
        "2": [{"name": "incumbent rule (L + R + 2 days)",
               "metrics": _metrics(120.0, holding=60.0, in_stock=0.94)},
              {"name": "ORPR (pretrained + PPO)", "metrics": _metrics(100.0, in_stock=0.96)},
              # one seed only: a mean without an interval
              {"name": "PPO from scratch", "metrics": _metrics(130.0)}],
    }


# ---------------------------------------------------------------------------------------
# Comparison table.


def test_t_interval_by_hand():
    mean, half = t_interval([100.0, 110.0, 120.0])
    assert mean == pytest.approx(110.0)
    assert half == pytest.approx(T975_DF2 * 10.0 / math.sqrt(3.0))  # = 24.841
    assert t_interval([7.0]) == (7.0, None)
    # 90% with n = 2: t_{0.95, 1} = 6.3138; s = |4 - 2| / sqrt(2); half = t * s / sqrt(2) = t
    assert t_interval([2.0, 4.0], 0.90)[1] == pytest.approx(6.313751514675043)


def test_comparison_table_three_seeds():
    rows = comparison_table(_three_seeds())
    assert [r["policy"] for r in rows] == ["incumbent rule", "ORPR (pretrained + PPO)",
                                           "PPO from scratch"]
    inc, orpr, scratch = rows
    assert inc["names"] == ["incumbent rule (L + R + 2 days)", "incumbent rule (L + R + 3 days)"]
    assert inc["seeds"] == 3 and orpr["seeds"] == 3 and scratch["seeds"] == 1
    assert inc["mean"]["total_cost"] == pytest.approx(110.0)
    assert inc["half_width"]["total_cost"] == pytest.approx(T975_DF2 * 10.0 / math.sqrt(3))
    assert inc["mean"]["holding_cost"] == pytest.approx(50.0)  # (40 + 50 + 60) / 3
    assert inc["half_width"]["holding_cost"] == pytest.approx(T975_DF2 * 10.0 / math.sqrt(3))
    # in-stock 0.90, 0.92, 0.94: s = 0.02
    assert inc["half_width"]["in_stock_rate"] == pytest.approx(T975_DF2 * 0.02 / math.sqrt(3))
    assert orpr["half_width"]["total_cost"] == pytest.approx(T975_DF2 * 5.0 / math.sqrt(3))
    # identical values over seeds: zero width, not None
    assert orpr["half_width"]["fill_rate"] == pytest.approx(0.0)
    assert orpr["values"]["total_cost"] == [90.0, 95.0, 100.0]
    assert scratch["mean"]["total_cost"] == 130.0
    assert all(h is None for h in scratch["half_width"].values())
    # % change of mean total cost vs the incumbent (mean 110)
    assert inc["is_baseline"] and not orpr["is_baseline"]
    assert inc["cost_change_pct"] == pytest.approx(0.0)
    assert orpr["cost_change_pct"] == pytest.approx(100.0 * (95.0 - 110.0) / 110.0)  # -13.64
    assert scratch["cost_change_pct"] == pytest.approx(100.0 * 20.0 / 110.0)  # +18.18


def test_comparison_table_one_seed_and_other_baseline():
    one = {"7": _three_seeds()["2"]}
    rows = comparison_table(one, baseline="orpr")  # case-insensitive prefix
    assert [r["seeds"] for r in rows] == [1, 1, 1]
    assert all(h is None for r in rows for h in r["half_width"].values())
    assert [r["is_baseline"] for r in rows] == [False, True, False]
    assert rows[0]["cost_change_pct"] == pytest.approx(100.0 * (120.0 - 100.0) / 100.0)
    md = comparison_markdown(rows)
    assert "±" not in md.split("\n\n")[0]  # no interval in the table itself
    assert "| incumbent rule | 1 | 120 |" in md
    assert "| +20.0% |" in md and "| baseline |" in md
    assert "Mean over 1 seed;" in md


def test_comparison_table_inputs_and_options():
    from orpr_jax.evaluation.baselines import HeuristicResult

    flat = {"a": [{"name": "x", **_metrics(10.0)}],
            "b": [HeuristicResult("x", _metrics(20.0), 0.0)]}
    (row,) = comparison_table(flat, baseline=None)
    assert row["mean"]["total_cost"] == 15.0 and row["cost_change_pct"] is None
    assert row["half_width"]["total_cost"] == pytest.approx(12.706204736174698 * 5.0)
    (row,) = comparison_table(flat, baseline=None, metrics=("fill_rate",))
    assert set(row["mean"]) == {"fill_rate"}
    zero = {"a": [{"name": "incumbent", **_metrics(0.0)}, {"name": "y", **_metrics(5.0)}]}
    assert [r["cost_change_pct"] for r in comparison_table(zero)] == [None, None]
    rows = comparison_table(_three_seeds(), baseline=None, group_key=lambda n: n)  # no pooling
    assert [r["seeds"] for r in rows][:2] == [2, 3]
    with pytest.raises(ValueError, match="several"):
        comparison_table(_three_seeds(), group_key=lambda n: n)  # two incumbent rows


def test_policy_family():
    assert policy_family("incumbent rule (L + R + 2.5 days)") == "incumbent rule"
    assert policy_family("base-stock (tuned per row)") == "base-stock (tuned per row)"
    assert policy_family("pretrained (small)") == "pretrained (small)"


def test_comparison_markdown_cells():
    md = comparison_markdown(comparison_table(_three_seeds()))
    lines = md.splitlines()
    assert lines[0].startswith("| policy | seeds | total cost | holding cost | lost units |")
    assert lines[0].endswith("| Δ total cost |")
    inc = next(line for line in lines if line.startswith("| incumbent rule |"))
    cells = [c.strip() for c in inc.strip("|").split("|")]
    assert cells[:4] == ["incumbent rule", "3", "110 ± 25", "50 ± 25"]  # 24.84 rounds to 25
    assert cells[-3] == "92.00% ± 4.97%"  # in-stock: 4.3027 * 0.02 / sqrt(3) = 0.0497
    assert cells[-1] == "baseline"
    assert "| -13.6% |" in md and "| +18.2% |" in md
    assert "Mean over 1 to 3 seeds (column seeds);" in md
    pipe = comparison_markdown(comparison_table({"0": [{"name": "a|b", **_metrics(1.0)}]},
                                                baseline=None))
    assert "| a\\|b |" in pipe


@pytest.mark.parametrize("bad, match", [
    ({}, "empty"),
    ({"0": [{"name": "incumbent", "metrics": {"total_cost": 1.0}}]}, "lacks metrics"),
    ({"0": [{"name": "incumbent", **_metrics(1.0)}, {"name": "incumbent", **_metrics(2.0)}]},
     "twice"),
    ({"0": [{"name": "base-stock", **_metrics(1.0)}]}, "matches no policy"),
    ({"0": [{"name": "incumbent A", **_metrics(1.0)}, {"name": "incumbent B",
                                                         **_metrics(2.0)}]}, "several"),
    ({"0": [{"total_cost": 1.0}]}, "'name'"),
])
def test_comparison_table_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        comparison_table(bad)


def test_comparison_table_baseline_needs_total_cost():
    with pytest.raises(ValueError, match="total_cost"):
        comparison_table({"0": [{"name": "incumbent", **_metrics(1.0)}]}, metrics=("fill_rate",))


@pytest.mark.parametrize("values, confidence", [([], 0.95), ([1.0], 1.0), ([1.0], 0.0),
                                                ([[1.0, 2.0]], 0.95)])
def test_t_interval_errors(values, confidence):
    with pytest.raises(ValueError):
        t_interval(values, confidence)


# ---------------------------------------------------------------------------------------
# Breakdown helpers on a hand-made [T=3, R=2] trajectory, h = 1, p = 9 per lost unit.
#
# row 0 (food): demand 4, 3, 5; filled 4, 2, 5; end stock 6, 0, 1; in stock every day.
# row 1 (toys): demand 2, 0, 1; filled 1, 0, 1; end stock 0, 0, 2; out of stock on day 1.


def _outcome(demand, filled, on_hand_end, in_stock, h=1.0, p=9.0):
    demand, filled = np.asarray(demand, np.float32), np.asarray(filled, np.float32)
    on_hand_end = np.asarray(on_hand_end, np.float32)
    unmet = demand - filled
    zeros = np.zeros_like(demand)
    holding, penalty = h * on_hand_end, p * unmet
    return orpr_jax.DayOutcome(
        demand=demand, sales=filled, filled=filled, unmet=unmet, order=zeros,
        order_placed=zeros, arrivals=zeros, on_hand_end=on_hand_end,
        in_stock=np.asarray(in_stock, np.float32), holding_cost=holding,
        penalty_cost=penalty, ordering_cost=zeros, purchase_cost=zeros,
        cost=holding + penalty)


def _hand_outcome():
    return _outcome(demand=[[4, 2], [3, 0], [5, 1]], filled=[[4, 1], [2, 0], [5, 1]],
                    on_hand_end=[[6, 0], [0, 0], [1, 2]], in_stock=[[1, 1], [1, 0], [1, 1]])


def test_per_category_metrics_by_hand():
    out = per_category_metrics(_hand_outcome(), np.array([0, 1]), ["food", "toys"])
    assert list(out) == ["food", "toys"]
    food, toys = out["food"], out["toys"]
    # food: cost = holding 6 + 0 + 1 + penalty 9 * 1 lost unit on day 1 = 16
    assert food["total_cost"] == pytest.approx(16.0)
    assert food["holding_cost"] == pytest.approx(7.0)
    assert food["lost_sales_cost"] == pytest.approx(9.0)
    assert food["lost_units"] == pytest.approx(1.0)
    assert food["turnover_days"] == pytest.approx(7.0 / 11.0)  # stock 6+0+1 / sales 4+2+5
    assert food["in_stock_rate"] == pytest.approx(1.0)
    assert food["fill_rate"] == pytest.approx(11.0 / 12.0)
    assert food["cost_per_row_day"] == pytest.approx(16.0 / 3.0)
    assert food["row_days"] == 3.0
    # toys: cost 9 + 0 + 2 = 11; stock 2 / sales 2; in stock 2 of 3 days; filled 2 of 3
    assert toys["total_cost"] == pytest.approx(11.0)
    assert toys["holding_cost"] == pytest.approx(2.0)
    assert toys["turnover_days"] == pytest.approx(1.0)
    assert toys["in_stock_rate"] == pytest.approx(2.0 / 3.0)
    assert toys["fill_rate"] == pytest.approx(2.0 / 3.0)

    # warm-up 1: days 1 and 2 only
    out = per_category_metrics(_hand_outcome(), np.array([0, 1]), warmup_days=1)
    assert list(out) == [0, 1]  # indices when no names
    assert out[0]["total_cost"] == pytest.approx(10.0)  # 0 + 9 + 1
    assert out[0]["turnover_days"] == pytest.approx(1.0 / 7.0)  # stock 0+1 / sales 2+5
    assert out[0]["fill_rate"] == pytest.approx(7.0 / 8.0)
    assert out[1]["total_cost"] == pytest.approx(2.0)
    assert out[1]["turnover_days"] == pytest.approx(2.0)  # stock 2 / sales 1
    assert out[1]["in_stock_rate"] == pytest.approx(0.5)
    assert out[1]["fill_rate"] == pytest.approx(1.0)  # 1 of 1 (day 1 has no demand)

    # one category of both rows: the totals
    (both,) = per_category_metrics(_hand_outcome(), np.array([3, 3]), {3: "all"}).values()
    assert both["total_cost"] == pytest.approx(27.0)
    assert both["in_stock_rate"] == pytest.approx(5.0 / 6.0)
    assert both["fill_rate"] == pytest.approx(13.0 / 15.0)


def test_promotion_window_metrics_by_hand():
    promo = np.array([[0, 0], [1, 1], [0, 1]], np.float32)
    out = promotion_window_metrics(_hand_outcome(), promo)
    on, off = out["promo"], out["regular"]
    # promotion cells (1, 0), (1, 1), (2, 1): cost 9 + 0 + 2, stock 0 + 0 + 2, sales 2 + 0 + 1
    assert on["total_cost"] == pytest.approx(11.0)
    assert on["holding_cost"] == pytest.approx(2.0)
    assert on["lost_sales_cost"] == pytest.approx(9.0)
    assert on["turnover_days"] == pytest.approx(2.0 / 3.0)
    assert on["in_stock_rate"] == pytest.approx(2.0 / 3.0)
    assert on["fill_rate"] == pytest.approx(3.0 / 4.0)  # filled 2+0+1 / demand 3+0+1
    # regular cells (0, 0), (0, 1), (2, 0): cost 6 + 9 + 1, stock 7, sales 4 + 1 + 5
    assert off["total_cost"] == pytest.approx(16.0)
    assert off["turnover_days"] == pytest.approx(0.7)
    assert off["in_stock_rate"] == pytest.approx(1.0)
    assert off["fill_rate"] == pytest.approx(10.0 / 11.0)
    # warm-up 1 drops day 0: the regular window is (2, 0) only
    off = promotion_window_metrics(_hand_outcome(), promo, warmup_days=1)["regular"]
    assert off["total_cost"] == pytest.approx(1.0) and off["row_days"] == 1.0
    # no promotions: an empty window
    empty = promotion_window_metrics(_hand_outcome(), np.zeros((3, 2)))["promo"]
    assert empty["row_days"] == 0.0 and empty["total_cost"] == 0.0
    assert math.isnan(empty["in_stock_rate"]) and empty["fill_rate"] == 1.0
    assert empty["turnover_days"] == 0.0


def test_turnover_without_sales():
    idle = _outcome(demand=[[0.0]], filled=[[0.0]], on_hand_end=[[5.0]], in_stock=[[1.0]])
    (m,) = per_category_metrics(idle, np.array([0])).values()
    assert m["turnover_days"] == math.inf and m["fill_rate"] == 1.0


def test_breakdowns_match_evaluate():
    env, params = orpr_jax.make("lost_sales", num_rows=6, lead_time=2, demand_mean=4.0,
                                holding_cost=1.0, lost_sales_cost=9.0)
    policy = orpr_jax.policies.base_stock(jnp.linspace(6.0, 16.0, 6))
    key = jax.random.key(3)
    _, outcomes, _ = orpr_jax.rollout(env, params, policy, key, 40)
    ref = orpr_jax.metrics_to_floats(orpr_jax.evaluate(env, params, policy, key, 40, 5))
    (mine,) = per_category_metrics(outcomes, np.zeros(6, np.int32), warmup_days=5).values()
    for k in ("total_cost", "cost_per_row_day", "holding_cost", "lost_sales_cost",
              "lost_units", "turnover_days", "in_stock_rate", "fill_rate"):
        assert mine[k] == pytest.approx(ref[k], rel=1e-5), k
    windows = promotion_window_metrics(outcomes, np.zeros((40, 6)), warmup_days=5)
    assert windows["regular"]["total_cost"] == pytest.approx(ref["total_cost"], rel=1e-5)
    series = trajectory_series(outcomes, [0, 5])
    assert {k: v.shape for k, v in series.items()} == {k: (40, 2) for k in series}
    np.testing.assert_array_equal(series["orders"][:, 1], np.asarray(outcomes.order)[:, 5])


def test_breakdown_errors():
    out = _hand_outcome()
    with pytest.raises(ValueError, match="shape"):
        per_category_metrics(out, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="no entry"):
        per_category_metrics(out, np.array([0, 1]), ["food"])
    for warmup in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match="warmup_days"):
            per_category_metrics(out, np.array([0, 1]), warmup_days=warmup)
    with pytest.raises(ValueError, match="promo must have shape"):
        promotion_window_metrics(out, np.zeros((3,)))
    flat = jax.tree_util.tree_map(lambda x: x[0], out)
    with pytest.raises(ValueError, match=r"\[T, R\]"):
        promotion_window_metrics(flat, np.zeros((2,)))


# ---------------------------------------------------------------------------------------
# Plots and report.md.


def _histories():
    return {
        "orpr": [{"update": u, "cost_per_row_day": 3.0 - 0.1 * u, "lagrange_mean": 0.1 * u,
                  "kl_ref": 0.01 * u} for u in range(1, 6)],
        "pathwise": [{"update": u, "cost_per_row_day": 3.2 - 0.05 * u} for u in range(1, 6)],
    }


def _trajectories(width=None):
    days = np.arange(20)
    shape = (20,) if width is None else (20, width)
    rng = np.random.default_rng(0)
    series = {p: {"on_hand": rng.uniform(0, 20, shape), "demand": rng.poisson(4, shape),
                  "orders": rng.poisson(4, shape) * (rng.random(shape) < 0.3)}
              for p in ("incumbent", "ORPR")}
    return days, series


def _categories():
    return {p: per_category_metrics(_hand_outcome(), np.array([0, 1]), ["food", "toys"])
            for p in ("incumbent", "ORPR")}


def _promotions():
    promo = np.array([[0, 0], [1, 1], [0, 1]])
    return {p: promotion_window_metrics(_hand_outcome(), promo) for p in ("incumbent", "ORPR")}


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plots_write_png(tmp_path):
    paths = [
        plot_learning_curves(_histories(), tmp_path / "lc.png"),
        plot_trajectories(*_trajectories(), tmp_path / "sub" / "traj.png", "one row"),
        plot_category_breakdown({"a": {"food": 1.0, "toys": 2.0}, "b": {"food": 1.5}},
                                tmp_path / "cat.png", "cost per row-day"),
        plot_promotion_windows(_promotions(), tmp_path / "promo.png"),
    ]
    for path in paths:
        assert path.exists() and _is_png(path), path


def test_plot_errors(tmp_path):
    with pytest.raises(ValueError, match="no history"):
        plot_learning_curves({"a": [{"update": 1, "reward": 1.0}]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        plot_trajectories(np.arange(3), {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="lacks"):
        plot_trajectories(np.arange(3), {"a": {"on_hand": np.zeros(3)}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="shape"):
        plot_trajectories(np.arange(3), {"a": {k: np.zeros(4) for k in
                                               ("on_hand", "demand", "orders")}},
                          tmp_path / "x.png")
    mixed = {"a": {k: np.zeros((3, 1)) for k in ("on_hand", "demand", "orders")},
             "b": {k: np.zeros((3, 2)) for k in ("on_hand", "demand", "orders")}}
    with pytest.raises(ValueError, match="same number of rows"):
        plot_trajectories(np.arange(3), mixed, tmp_path / "x.png")
    with pytest.raises(ValueError, match="row_labels"):
        plot_trajectories(np.arange(3), {"b": mixed["b"]}, tmp_path / "x.png", "t", ["row 7"])
    with pytest.raises(ValueError, match="empty"):
        plot_category_breakdown({}, tmp_path / "x.png", "y")
    with pytest.raises(ValueError, match="empty"):
        plot_promotion_windows({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="'promo' and 'regular'"):
        plot_promotion_windows({"a": {"promo": {}}}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def _links(markdown):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def test_write_report_minimal(tmp_path):
    rows = comparison_table(_three_seeds())
    path = write_report(tmp_path / "run", title="ORPR on jd_synthetic", comparison_rows=rows)
    assert path == tmp_path / "run" / "report.md"
    md = path.read_text()
    assert md.startswith("# ORPR on jd_synthetic")
    assert comparison_markdown(rows) in md
    assert "## How to read the table" in md and "Turnover days" in md
    assert "lower is better" in md.lower() and "higher is better" in md.lower()
    assert _links(md) == []
    for section in ("Learning curves", "Example trajectories", "Per-category", "Promotion",
                    "Field test"):
        assert f"## {section}" not in md
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.md"]


def test_write_report_full(tmp_path):
    rows = comparison_table(_three_seeds())
    days, series = _trajectories(width=2)
    path = write_report(
        tmp_path, title="full", comparison_rows=rows, histories=_histories(),
        trajectories=(days, series, "two rows", ["row 3", "row 8"]), categories=_categories(),
        promotions=_promotions(), field_test_markdown="Field test: -4% cost over 8 weeks.\n",
        notes=["3 seeds", "jd_synthetic, 300 SKUs"])
    md = path.read_text()
    links = _links(md)
    assert links == ["learning_curves.png", "trajectories.png", "category_cost.png",
                     "category_in_stock.png", "promotion_windows.png"]
    for link in links:
        assert not link.startswith("/") and _is_png(tmp_path / link), link
    assert "* 3 seeds" in md and "* jd_synthetic, 300 SKUs" in md
    assert "## Field test\n\nField test: -4% cost over 8 weeks." in md
    # per-category table: food / toys under each policy (food: 16 / 3 = 5.333 per row-day)
    assert "| food | incumbent | 5.333 | 16 | 0.64 | 100.00% | 91.67% |" in md
    assert "| toys | ORPR | 3.667 | 11 | 1.00 | 66.67% | 66.67% |" in md
    # promotion-window table (promo: in-stock 2 / 3, fill 3 / 4)
    assert "| promo | ORPR | 3.667 | 11 | 0.67 | 66.67% | 75.00% |" in md
    assert "| regular | incumbent | 5.333 | 16 | 0.70 | 100.00% | 90.91% |" in md
    assert md.index("## Summary") < md.index("## Learning curves") < md.index(
        "## Example trajectories") < md.index("## Per-category") < md.index(
        "## Promotion windows") < md.index("## Field test")
