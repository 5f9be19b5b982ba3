"""Named scenarios and the synthetic data set."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.scenarios import jd_period


def test_lost_sales_is_the_classic_model():
    env, params = orpr_jax.make("lost_sales", num_rows=7, lead_time=3, demand_mean=4.0,
                                holding_cost=1.5, lost_sales_cost=19.0)
    cfg = env.config
    assert cfg.num_rows == 7 and cfg.lead_time_mode == "shared" and not cfg.backorder
    assert not (cfg.use_review or cfg.use_moq or cfg.use_case_pack or cfg.use_capacity)
    assert int(params.lead_time) == 3
    assert float(params.holding_cost[0]) == 1.5 and float(params.penalty_cost[0]) == 19.0
    # The demand table is Poisson(4): its mean is 4.
    cdf = np.asarray(params.demand_cdf[0], np.float64)
    pmf = np.diff(cdf, prepend=0.0)
    assert pmf @ np.arange(len(pmf)) == pytest.approx(4.0, abs=1e-4)


def test_lost_sales_sampled_demand_has_the_right_mean():
    env, params = orpr_jax.make("lost_sales", num_rows=5000, demand_mean=5.0)
    _, state = env.reset(jax.random.key(0), params)
    _, _, _, _, _, info = env.step(jax.random.key(1), state, jnp.zeros(5000), params)
    d = np.asarray(info["outcome"].demand)
    assert d.mean() == pytest.approx(5.0, abs=4 * np.sqrt(5.0 / 5000))
    assert d.var() == pytest.approx(5.0, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"lead_time": 0}, r"lead_time=0 is not allowed"),
        ({"demand_mean": -1.0}, r"demand_mean=-1\.0 is not allowed"),
        ({"holding_cost": -1.0}, r"holding_cost=-1\.0"),
        ({"demand": "uniform"}, r"demand='uniform' is not allowed"),
        ({"colour": "red"}, r"unknown override\(s\) \['colour'\]"),
    ],
)
def test_lost_sales_bad_overrides(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        orpr_jax.make("lost_sales", num_rows=2, **kwargs)


def test_unknown_scenario():
    with pytest.raises(ValueError, match=r"name='beer_game' is not allowed; known scenarios"):
        orpr_jax.make("beer_game")


@pytest.fixture(scope="module")
def small_data():
    return generate(jax.random.key(3), SyntheticSpec(num_skus=60, num_days=120))


def test_synthetic_is_deterministic(small_data):
    again = generate(jax.random.key(3), SyntheticSpec(num_skus=60, num_days=120))
    np.testing.assert_array_equal(small_data.demand, again.demand)
    other = generate(jax.random.key(4), SyntheticSpec(num_skus=60, num_days=120))
    assert other.demand.shape != small_data.demand.shape or not np.array_equal(
        other.demand, small_data.demand)


def test_synthetic_covers_the_jd_features(small_data):
    rows = small_data.rows
    assert small_data.num_rows > 60  # SKUs spread over several warehouses
    assert rows["lead_time_mean"].between(1, 14).all()
    assert rows["review_period"].between(1, 7).all()
    assert (rows["review_offset"] < rows["review_period"]).all()
    level = rows["mean_demand"].to_numpy()
    assert level.min() < 0.5 and level.max() > 20  # slow to fast movers
    assert small_data.promo.sum() > 0
    assert len(small_data.warehouses) > 1 and len(small_data.categories) > 1
    assert np.all(small_data.demand == np.round(small_data.demand))
    # Promotions lift demand: promo days sell more than the same rows otherwise.
    promo = small_data.promo > 0
    lift = (small_data.demand * promo).sum() / promo.sum()
    base = (small_data.demand[:, promo.any(0)] * ~promo[:, promo.any(0)]).mean()
    assert lift > base


def test_jd_synthetic_env_runs_heuristics(small_data):
    start, days = jd_period(small_data, "test")
    env, params = orpr_jax.env_from_data(small_data, start=start, num_days=days)
    cfg = env.config
    assert cfg.demand_mode == "trace" and cfg.lead_time_mode == "stochastic"
    assert cfg.use_review and cfg.use_promotions and cfg.use_capacity
    m = orpr_jax.evaluate(env, params, orpr_jax.policies.inventory_days(10.0),
                          jax.random.key(0), days, 7)
    for k in ("cost_per_row_day", "total_cost", "holding_cost", "lost_sales_cost",
              "turnover_days", "in_stock_rate", "fill_rate"):
        assert np.isfinite(float(m[k])), k
    assert 0 < float(m["in_stock_rate"]) <= 1 and 0 < float(m["fill_rate"]) <= 1


def test_make_jd_synthetic_periods():
    env, params = orpr_jax.make("jd_synthetic", num_skus=30, num_days=100, period="train")
    assert params.demand_trace.shape == (50 - 28, env.num_rows)
    with pytest.raises(ValueError, match=r"period='later' is not allowed"):
        orpr_jax.make("jd_synthetic", num_skus=30, num_days=100, period="later")


def test_synthetic_spec_validation():
    with pytest.raises(ValueError, match=r"num_skus=0 is not allowed"):
        SyntheticSpec(num_skus=0)


def test_make_jd_synthetic_demand_models():
    # Demand with memory is the default; the independent-days generator stays an option.
    kw = dict(num_skus=12, num_days=100, period="all")
    _, memory = orpr_jax.make("jd_synthetic", **kw)
    _, iid = orpr_jax.make("jd_synthetic", demand_model="iid", **kw)
    assert memory.demand_trace.shape == iid.demand_trace.shape
    assert not np.array_equal(np.asarray(memory.demand_trace), np.asarray(iid.demand_trace))
    with pytest.raises(ValueError, match="demand_model='ar'"):
        orpr_jax.make("jd_synthetic", demand_model="ar", **kw)
