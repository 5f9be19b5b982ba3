"""Heuristic policies: hand-computed orders, per-row parameters, tuning by grid search."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.policies import base_stock, constant, grid_search, inventory_days, s_S
from orpr_jax.sim.dynamics import observe


def _obs(on_hand, pipeline_total=0.0, history=None, rows=3):
    env, params = orpr_jax.make("lost_sales", num_rows=rows, lead_time=2, history_length=4)
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(on_hand=jnp.asarray(on_hand, jnp.float32),
                          pipeline_total=jnp.broadcast_to(jnp.float32(pipeline_total), (rows,)))
    if history is not None:
        state = state.replace(sales_ring=jnp.asarray(history, jnp.float32))
    return observe(env.config, params, state)


def test_base_stock_orders_up_to_level():
    obs = _obs([3.0, 10.0, 20.0], pipeline_total=2.0)
    # IP = [5, 12, 22]; level 12 -> [7, 0, 0]
    np.testing.assert_allclose(base_stock(12.0)(obs, None), [7.0, 0.0, 0.0])
    # per-row levels [5, 20, 30] -> [0, 8, 8]
    np.testing.assert_allclose(base_stock([5.0, 20.0, 30.0])(obs, None), [0.0, 8.0, 8.0])


def test_s_S_orders_only_at_or_below_s():
    obs = _obs([3.0, 8.0, 9.0])
    # s=8, S=15: IP 3 -> 12, IP 8 -> 7, IP 9 -> 0
    np.testing.assert_allclose(s_S(8.0, 15.0)(obs, None), [12.0, 7.0, 0.0])
    with pytest.raises(ValueError, match="expected S >= s"):
        s_S(10.0, 5.0)


def _with_censoring(obs, stockout, level):
    return obs.replace(stockout_history=jnp.asarray(stockout, jnp.float32),
                       long_run_level=jnp.asarray(level, jnp.float32))


def test_inventory_days_forecast_ignores_stock_out_days():
    # history [H=4, R=3] in ring order; at t=0 the window is the ring as is.
    hist = np.array([[2, 0, 1], [4, 0, 1], [6, 0, 1], [8, 0, 1]], np.float32)
    obs = _obs([5.0, 5.0, 5.0], history=hist)
    # Row 0: both window days in stock, sales 6 and 8, long-run 4: (14 + 3 * 4) / (2 + 3) = 5.2.
    # Row 1: both days stocked out: the long-run level 2 alone.
    # Row 2: day 8's flag set, so only the 1 of the other day: (1 + 3 * 0.01->0.05) / 4.
    stockout = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], np.float32)
    obs = _with_censoring(obs, stockout, [4.0, 2.0, 0.01])
    f = np.asarray(orpr_jax.policies.censored_forecast(obs, 2))
    np.testing.assert_allclose(f, [5.2, 2.0, (1.0 + 3 * 0.05) / 4.0], rtol=1e-6)
    # v = 3: levels [15.6, 6, 0.8625] -> orders [10.6, 1, 0]
    np.testing.assert_allclose(inventory_days(3.0, window=2)(obs, None), [10.6, 1.0, 0.0],
                               rtol=1e-6)
    share, run = orpr_jax.policies.censoring_features(obs, 4)
    np.testing.assert_allclose(share, [0.0, 1.0, 0.25])
    np.testing.assert_allclose(run, [0.0, 4.0, 1.0])
    with pytest.raises(ValueError, match=r"window=0 is not allowed"):
        inventory_days(3.0, window=0)
    with pytest.raises(ValueError, match=r"v=.* is not allowed"):
        inventory_days(-1.0)


def test_a_row_that_stocked_out_keeps_ordering():
    env, params = orpr_jax.make("lost_sales", num_rows=4, lead_time=2, demand_mean=3.0)
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    # 60 days in stock under base-stock 12, then 40 days without an order: the stock runs
    # out within days, and the last 28 days are zero-sale days, all censored.
    for day in range(100):
        q = base_stock(12.0)(obs, None) if day < 60 else jnp.zeros((4,), jnp.float32)
        obs, state, *_ = env.step(jax.random.fold_in(key, day), state, q, params)
    np.testing.assert_allclose(obs.sales_history.sum(axis=1), 0.0)
    np.testing.assert_allclose(obs.stockout_history, 1.0)
    np.testing.assert_allclose(obs.on_hand, 0.0)
    # A moving average of censored sales is 0 here, so no v would ever order again; the
    # forecast falls back to the long-run level learnt while in stock (near the mean 3).
    level = np.asarray(obs.long_run_level)
    assert np.all((level > 1.5) & (level < 4.5)), level
    orders = inventory_days(7.0)(obs, None)
    np.testing.assert_allclose(orders, 7.0 * level, rtol=1e-5)
    # The incumbent rule (v = L + R + safety) orders too.
    assert bool(jnp.all(orpr_jax.policies.incumbent_rule(2.0)(obs, None) > 0))


def test_forecast_base_stock_hand_computed():
    hist = np.array([[2, 0, 1], [4, 0, 1], [6, 0, 1], [8, 0, 1]], np.float32)
    obs = _obs([0.0, 0.0, 0.0], history=hist)
    obs = _with_censoring(obs, np.zeros((3, 4)), [5.0, 0.0, 1.0])
    # Row 0 over the 4 days: f = (20 + 3 * 5) / 7 = 5, sample var = 5 (mean 5, devs 3,1,1,3)
    # -> sigma = sqrt(max(5, 5)); cover = L + R = 2 + 1 = 3.
    # level(z = 1) = 3 * 5 + sqrt(5) * sqrt(3).
    q = orpr_jax.policies.forecast_base_stock(1.0, window=4)(obs, None)
    np.testing.assert_allclose(q[0], 15.0 + np.sqrt(15.0), rtol=1e-5)
    # Row 1 never sold: f = 3 * 0.05 / 7, sigma = sqrt(f).
    f1 = 0.15 / 7.0
    np.testing.assert_allclose(q[1], 3 * f1 + np.sqrt(f1) * np.sqrt(3.0), rtol=1e-5)
    with pytest.raises(ValueError, match=r"window=0 is not allowed"):
        orpr_jax.policies.forecast_base_stock(1.0, window=0)


def test_constant():
    obs = _obs([1.0, 2.0, 3.0])
    np.testing.assert_allclose(constant(4.0)(obs, None), [4.0, 4.0, 4.0])


def test_grid_search_finds_the_best_level_per_row():
    env, params = orpr_jax.make("lost_sales", num_rows=64, lead_time=1, demand_mean=5.0,
                                lost_sales_cost=9.0)
    key = jax.random.key(0)
    grid = jnp.arange(6.0, 20.0)
    best_shared, costs = grid_search(env, params, base_stock, grid, key, 200, 20,
                                     per_row=False)
    assert costs.shape == (14, 64)
    # The shared optimum is the argmin of the summed costs, and an interior point.
    assert float(best_shared) == float(grid[int(jnp.argmin(costs.sum(1)))])
    assert 6.0 < float(best_shared) < 19.0
    best_rows, _ = grid_search(env, params, base_stock, grid, key, 200, 20, batch_size=5)
    assert best_rows.shape == (64,)
    np.testing.assert_allclose(best_rows, grid[jnp.argmin(costs, axis=0)])
    with pytest.raises(ValueError, match=r"grid has shape \(3, 5\)"):
        grid_search(env, params, base_stock, jnp.ones((3, 5)), key, 10)


def test_policy_change_does_not_recompile():
    env, params = orpr_jax.make("lost_sales", num_rows=4)
    key = jax.random.key(0)
    rollout_mod = importlib.import_module("orpr_jax.sim.rollout")

    orpr_jax.evaluate(env, params, base_stock(10.0), key, 20, 0)
    before = rollout_mod._evaluate_sums._cache_size()
    a = orpr_jax.evaluate(env, params, base_stock(12.0), key, 20, 0)
    b = orpr_jax.evaluate(env, params, base_stock(15.0), key, 20, 0)
    assert rollout_mod._evaluate_sums._cache_size() == before
    assert float(a["total_cost"]) != float(b["total_cost"])
    # A different policy class with the same layout compiles its own program.
    c = orpr_jax.evaluate(env, params, constant(12.0), key, 20, 0)
    assert rollout_mod._evaluate_sums._cache_size() == before + 1
    assert float(c["total_cost"]) != float(a["total_cost"])
