"""Env contract (gymnax 1.0), observation layout, auto-reset, metric definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.sim.demand import poisson_cdf_table
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.metrics import finalize
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import SimConfig


def _trace_env(trace, lead_time, extra=None, **kw):
    trace = np.asarray(trace, np.float32)
    cfg = SimConfig(num_rows=trace.shape[1], max_lead_time=3, history_length=3,
                    promo_lookahead=2, lead_time_mode="per_row", demand_mode="trace", **kw)
    extra = extra or {}
    params = orpr_jax.make_params(cfg, lead_time=lead_time, demand_trace=trace,
                                  initial_sales_history=0.0, **extra)
    return orpr_jax.InventoryEnv(cfg), params


def test_step_contract_and_pipeline_observation():
    env, params = _trace_env([[1, 1]] * 6, lead_time=[1, 3])
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.pipeline.shape == (2, 3) and obs.sales_history.shape == (2, 3)
    out = env.step(jax.random.key(1), state, jnp.array([4.0, 5.0]), params)
    obs, state, reward, terminated, truncated, info = out
    # Row 0 (L=1): due tomorrow, already arrived at the start of day 1 -> on hand.
    # Row 1 (L=3): due on day 3, i.e. in 2 days from day 1 -> pipeline[:, 1].
    np.testing.assert_allclose(obs.pipeline, [[0, 0, 0], [0, 5, 0]])
    np.testing.assert_allclose(obs.on_hand, [4.0, 0.0])
    np.testing.assert_allclose(obs.inventory_position, [4.0, 5.0])
    assert reward.shape == (2,) and terminated.shape == (2,) and truncated.shape == (2,)
    assert not bool(terminated.any()) and not bool(truncated.any())
    # Penalty 9 per lost unit (both rows had no stock on day 0), no holding.
    np.testing.assert_allclose(reward, [-9.0, -9.0])
    assert set(info) == {"outcome"}


def test_sales_history_is_oldest_first():
    env, params = _trace_env([[1], [2], [3], [4]], lead_time=[1],
                             extra={"initial_on_hand": 100.0})
    _, state = env.reset(jax.random.key(0), params)
    for t in range(4):
        obs, state, *_ = env.step(jax.random.key(t), state, jnp.zeros(1), params)
    np.testing.assert_allclose(obs.sales_history, [[2, 3, 4]])
    np.testing.assert_array_equal(obs.t, [4])


def test_promotions_ahead_in_the_observation():
    cal = np.zeros((6, 1), np.float32)
    cal[2] = cal[3] = 1
    env, params = _trace_env(np.ones((6, 1)), lead_time=[1], use_promotions=True,
                             extra={"promo_calendar": cal, "promo_uplift": 2.0})
    obs, _ = env.reset(jax.random.key(0), params)
    np.testing.assert_allclose(obs.promo_today, [0.0])
    np.testing.assert_allclose(obs.promo_ahead, [[0.0, 1.0]])  # days 1 and 2


def test_auto_reset_on_truncation():
    env, params = orpr_jax.make("lost_sales", num_rows=3, max_steps_in_episode=4)
    obs0, state = env.reset(jax.random.key(0), params)
    truncs = []
    for t in range(5):
        obs, state, _, _, trunc, _ = env.step(jax.random.key(t), state, jnp.full(3, 7.0),
                                              params)
        truncs.append(bool(trunc[0]))
    assert truncs == [False, False, False, True, False]
    assert int(state.t) == 1  # one day into the second episode


def test_metric_definitions_by_hand():
    # One row, no orders, 10 on hand, demand 4, 4, 4: sales 4, 4, 2; lost 0, 0, 2;
    # end stock 6, 2, 0; in stock on all three days (stock > 0 before demand).
    env, params = _trace_env([[4], [4], [4]], lead_time=[1],
                             extra={"initial_on_hand": 10.0, "holding_cost": 0.5,
                                    "penalty_cost": 3.0})
    m = orpr_jax.evaluate(env, params, orpr_jax.policies.constant(0.0), jax.random.key(0), 3)
    f = orpr_jax.metrics_to_floats(m)
    assert f["turnover_days"] == pytest.approx((6 + 2 + 0) / 10)
    assert f["in_stock_rate"] == pytest.approx(1.0)
    assert f["fill_rate"] == pytest.approx(10 / 12)
    assert f["holding_cost"] == pytest.approx(0.5 * 8)
    assert f["lost_sales_cost"] == pytest.approx(3.0 * 2)
    assert f["total_cost"] == pytest.approx(10.0)
    assert f["cost_per_row_day"] == pytest.approx(10.0 / 3)
    # Warm-up: only the last day counts.
    w = orpr_jax.metrics_to_floats(orpr_jax.evaluate(
        env, params, orpr_jax.policies.constant(0.0), jax.random.key(0), 3, 2))
    assert w["days"] == 1 and w["lost_units"] == 2 and w["in_stock_rate"] == 1.0


def test_metrics_of_rows_without_sales_are_not_nan():
    from orpr_jax.sim.metrics import init_sums

    sums = init_sums(2).replace(on_hand=jnp.array([5.0, 0.0]), days=jnp.float32(3.0))
    per_row = finalize(sums)["per_row"]
    np.testing.assert_array_equal(per_row["turnover_days"], [np.inf, 0.0])
    np.testing.assert_array_equal(per_row["fill_rate"], [1.0, 1.0])


def test_rollout_matches_evaluate_and_jit():
    env, params = orpr_jax.make("lost_sales", num_rows=5, lead_time=2)
    pol = orpr_jax.policies.base_stock(16.0)
    key = jax.random.key(7)
    _, outcomes, rewards = orpr_jax.rollout(env, params, pol, key, 30)
    assert outcomes.cost.shape == (30, 5)
    m = orpr_jax.evaluate(env, params, pol, key, 30, 10)
    assert float(m["total_cost"]) == pytest.approx(float(outcomes.cost[10:].sum()), rel=1e-6)
    np.testing.assert_allclose(rewards, -outcomes.cost)


@pytest.mark.parametrize(
    ("days", "warmup", "pattern"),
    [(0, 0, r"num_days=0 is not allowed"), (5, 5, r"warmup_days=5 is not allowed"),
     (5, -1, r"warmup_days=-1 is not allowed"), (2.5, 0, r"num_days=2\.5")],
)
def test_evaluate_rejects_bad_windows(days, warmup, pattern):
    env, params = orpr_jax.make("lost_sales", num_rows=2)
    with pytest.raises(ValueError, match=pattern):
        orpr_jax.evaluate(env, params, orpr_jax.policies.base_stock(5.0), jax.random.key(0),
                          days, warmup)


def test_nan_orders_are_ignored_not_propagated():
    env, params = orpr_jax.make("lost_sales", num_rows=3)
    _, state = env.reset(jax.random.key(0), params)
    _, state, reward, *_ = env.step(jax.random.key(1), state,
                                    jnp.array([jnp.nan, jnp.inf, -5.0]), params)
    assert bool(jnp.all(jnp.isfinite(reward))) and bool(jnp.all(state.pipeline_total == 0))


def test_step_refuses_an_action_of_the_wrong_shape():
    # [R, 1] orders would broadcast to [R, R] inside the dynamics without the check.
    config = SimConfig(num_rows=3, max_lead_time=2, history_length=3, promo_lookahead=1)
    env = InventoryEnv(config)
    params = make_params(config, demand_cdf=poisson_cdf_table(3.0))
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(AssertionError, match="shape"):
        env.step(jax.random.key(1), state, jnp.ones((3, 1)), params)
