"""Host-side validation: every bad input raises ValueError naming field, value and range."""

import numpy as np
import pytest

from orpr_jax.sim.params import lead_time_cdf_from_probs, make_params
from orpr_jax.sim.types import SimConfig

CFG = SimConfig(num_rows=3, num_warehouses=2, max_lead_time=4, history_length=5)


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("holding_cost", -1.0, r"holding_cost=-1\.0 .*\[0\.0, inf\)"),
        ("penalty_cost", [1.0, np.nan, 2.0], r"penalty_cost=nan at index \(1,\)"),
        ("fixed_order_cost", np.inf, r"fixed_order_cost=inf"),
        ("purchase_cost", -0.1, r"purchase_cost=-0\.1"),
        ("review_period", 0, r"review_period=0\.0 .*integers in \[1, 365\]"),
        ("review_period", 1.5, r"review_period=1\.5"),
        ("lead_time", 0, r"lead_time=0\.0 .*\[1, inf\)"),
        ("lead_time", 5, r"lead_time=5 .*max_lead_time=4"),
        ("case_pack", 0.5, r"case_pack=0\.5"),
        ("moq", -2, r"moq=-2\.0"),
        ("warehouse", 2, r"warehouse=2 .*num_warehouses=2"),
        ("warehouse", -1, r"warehouse=-1\.0"),
        ("capacity", [1.0, -1.0], r"capacity=-1\.0"),
        ("initial_on_hand", -3, r"initial_on_hand=-3\.0"),
        ("demand_trace", [[1.0, -1.0, 0.0]], r"demand_trace=-1\.0"),
        ("demand_trace", [[1.0, np.nan, 0.0]], r"demand_trace=nan"),
        ("zero_prob", 1.0, r"zero_prob=1\.0 .*\[0\.0, 1\.0\)"),
        ("dispersion", 0.0, r"dispersion=0\.0 .*\(0\.0, inf\)"),
        ("temperature", 0.0, r"temperature=0\.0"),
        ("start_day_of_week", 7, r"start_day_of_week=7\.0 .*\[0, 6\]"),
        ("promo_calendar", [[2.0, 0.0, 0.0]], r"promo_calendar=2\.0"),
    ],
)
def test_out_of_range_values_are_named(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_params(CFG, **{field: value})


def test_review_offset_must_be_below_period():
    with pytest.raises(ValueError, match=r"review_offset=2 at row 0 .*review_period=2"):
        make_params(CFG, review_period=2, review_offset=[2, 0, 1])


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("holding_cost", [1.0, 2.0], r"holding_cost has shape \(2,\); expected \(3,\)"),
        ("initial_pipeline", np.zeros((4, 3)), r"initial_pipeline has shape \(4, 3\)"),
        ("demand_trace", np.zeros(3), r"demand_trace has shape \(3,\); expected 2 axes"),
        ("demand_cdf", np.ones((2, 4)), r"demand_cdf has 2 rows; expected 1 or num_rows=3"),
        ("weekly", np.ones((3, 6)), r"weekly has shape \(3, 6\); expected \(3, 7\)"),
    ],
)
def test_mismatched_shapes_are_named(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_params(CFG, **{field: value})


def test_unknown_field():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['holding'\]"):
        make_params(CFG, holding=1.0)


def test_non_numeric_value():
    with pytest.raises(ValueError, match=r"holding_cost='a lot' is not numeric"):
        make_params(CFG, holding_cost="a lot")


def test_lead_time_probs():
    cdf = lead_time_cdf_from_probs([0.5, 0.5, 0.0, 0.0], 4)
    np.testing.assert_allclose(cdf, [[0.5, 1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"lead_time_probs has 3 columns; expected max_lead_time=4"):
        lead_time_cdf_from_probs([0.5, 0.5, 0.0], 4)
    with pytest.raises(ValueError, match=r"lead_time_probs row 0 sums to 0\.9"):
        lead_time_cdf_from_probs([0.5, 0.4, 0.0, 0.0], 4)
    with pytest.raises(ValueError, match=r"lead_time_probs=-0\.5"):
        lead_time_cdf_from_probs([1.5, -0.5, 0.0, 0.0], 4)
    with pytest.raises(ValueError, match="not both"):
        make_params(CFG, lead_time_probs=[1.0, 0, 0, 0], lead_time_cdf=np.ones((3, 4)))


def test_shared_lead_time_takes_one_value():
    cfg = CFG.replace(lead_time_mode="shared")
    assert make_params(cfg, lead_time=3).lead_time.shape == ()
    with pytest.raises(ValueError, match="lead_time_mode='shared' takes one lead time"):
        make_params(cfg, lead_time=[1, 2, 3])


def test_max_order_below_moq():
    cfg = CFG.replace(use_moq=True, use_max_order=True)
    with pytest.raises(ValueError, match=r"max_order=3\.0 at row 1 .*>= moq=5\.0"):
        make_params(cfg, moq=5, max_order=[10, 3, 10])


def test_non_monotone_cdfs():
    with pytest.raises(ValueError, match="demand_cdf must be non-decreasing"):
        make_params(CFG, demand_cdf=[[0.5, 0.4, 1.0]])
    cfg = CFG.replace(lead_time_mode="stochastic")
    with pytest.raises(ValueError, match="lead_time_cdf must be non-decreasing"):
        make_params(cfg, lead_time_cdf=np.tile([0.5, 0.4, 1.0, 1.0], (3, 1)))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("num_rows", 0, r"num_rows=0 is not allowed; it must be an integer >= 1"),
        ("max_lead_time", 0, r"max_lead_time=0"),
        ("history_length", 2.5, r"history_length=2\.5"),
        ("lead_time_mode", "random", r"lead_time_mode='random' is not allowed"),
        ("demand_mode", "gauss", r"demand_mode='gauss' is not allowed"),
        ("max_steps_in_episode", 0, r"max_steps_in_episode=0"),
    ],
)
def test_config_validation(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        SimConfig(**{"num_rows": 3, field: value})


def test_scalars_broadcast_and_defaults():
    p = make_params(CFG, holding_cost=2.0, warehouse=[0, 1, 1])
    assert p.holding_cost.shape == (3,) and float(p.holding_cost[2]) == 2.0
    assert p.initial_pipeline.shape == (5, 3)
    assert p.initial_sales_history.shape == (5, 3)
    assert p.lead_time_cdf.shape == (3, 4)
    assert str(p.review_period.dtype) == "int32"
