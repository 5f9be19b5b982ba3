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


def test_inventory_days_uses_moving_average_of_censored_sales():
    # history [H=4, R=3] in ring order; at t=0 the window is the ring as is.
    hist = np.array([[2, 0, 1], [4, 0, 1], [6, 0, 1], [8, 0, 1]], np.float32)
    obs = _obs([5.0, 5.0, 5.0], history=hist)
    # forecasts over window 2: [7, 0, 1]; v=3 -> levels [21, 0, 3] -> orders [16, 0, 0]
    np.testing.assert_allclose(inventory_days(3.0, window=2)(obs, None), [16.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"window=0 is not allowed"):
        inventory_days(3.0, window=0)
    with pytest.raises(ValueError, match=r"v=.* is not allowed"):
        inventory_days(-1.0)


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
