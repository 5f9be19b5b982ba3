"""Candidate replays equal the simulator run by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.labels.replay import replay_candidates, replay_config, row_horizons
from orpr_jax.sim.dynamics import draw_lead_time, initial_state, observe, transition
from orpr_jax.sim.types import SimConfig


def _env(stochastic: bool):
    rng = np.random.default_rng(0)
    cfg = SimConfig(num_rows=4, num_warehouses=2, max_lead_time=4, history_length=6,
                    lead_time_mode="stochastic" if stochastic else "per_row",
                    demand_mode="trace", use_review=True, use_case_pack=True,
                    use_capacity=True)
    kw = dict(
        demand_trace=rng.poisson(3.0, (30, 4)),
        initial_sales_history=rng.poisson(3.0, (6, 4)),
        review_period=[1, 2, 3, 1], review_offset=[0, 1, 0, 0], case_pack=[1, 2, 1, 3],
        warehouse=[0, 0, 1, 1], capacity=[1.0, 1.0], initial_on_hand=[5, 0, 9, 2],
        holding_cost=[1.0, 2.0, 0.5, 1.0], penalty_cost=[5.0, 9.0, 4.0, 19.0],
    )
    if stochastic:
        kw["lead_time_probs"] = np.tile([0.2, 0.5, 0.3, 0.0], (4, 1))
    else:
        kw["lead_time"] = [1, 2, 4, 3]
    return cfg, orpr_jax.make_params(cfg, **kw)


@pytest.mark.parametrize("stochastic", [False, True])
def test_replay_equals_hand_simulation(stochastic):
    cfg, params = _env(stochastic)
    rcfg = replay_config(cfg)
    assert not rcfg.use_capacity  # capacity (binding at 1 unit here) is off in replays
    state = initial_state(cfg, params)
    horizon = 9
    row_h = jnp.array([9, 5, 7, 3], jnp.int32)
    cands = jnp.array([2.0, 5.0], jnp.float32)
    demand = params.demand_trace[:horizon]
    key = jax.random.key(3)
    rep = replay_candidates(rcfg, params, state, cands, demand[None], row_h, key, horizon, 4)

    day_keys = jax.random.split(key, horizon)
    # At the start every history day counts as in stock: the forecast is the last 4 days'
    # sales shrunk to the long-run level (their overall mean) with a 3-day prior.
    obs = observe(cfg, params, state)
    hist = np.asarray(obs.sales_history, np.float64)
    prior = np.maximum(hist.mean(axis=1), 0.05)
    forecast = ((hist[:, -4:].sum(axis=1) + 3.0 * prior) / 7.0).astype(np.float32)
    for j, v in enumerate([2.0, 5.0]):
        st = state
        stock = np.zeros(4)
        value = np.zeros(4)
        lost = np.zeros(4)
        sales = np.zeros(4)
        for k in range(horizon):
            ip = st.on_hand - st.backlog + st.pipeline_total
            req = jnp.maximum(jnp.float32(v) * forecast - ip, 0.0)
            lead = draw_lead_time(day_keys[k], rcfg, params)
            st, out = transition(rcfg, params, st, req, demand[k], lead)
            w = (k < np.asarray(row_h)).astype(float)
            stock += w * np.asarray(out.on_hand_end)
            value += w * np.asarray(out.holding_cost)
            lost += w * np.asarray(out.demand - out.filled)
            sales += w * np.asarray(out.sales)
        np.testing.assert_allclose(rep.stock_units[j], stock, rtol=1e-6)
        np.testing.assert_allclose(rep.stock_value[j], value, rtol=1e-6)
        np.testing.assert_allclose(rep.lost_units[j], lost, rtol=1e-6)
        np.testing.assert_allclose(rep.sales[j], sales, rtol=1e-6)
    # More days of cover: never less stock, never more lost units.
    assert np.all(np.asarray(rep.stock_units[1]) >= np.asarray(rep.stock_units[0]))
    assert np.all(np.asarray(rep.lost_units[1]) <= np.asarray(rep.lost_units[0]))


def test_row_horizons():
    cfg, params = _env(False)
    h = row_horizons(cfg, params, margin=2, max_horizon=6)
    # ceil(L) + R + margin = [1+1+2, 2+2+2, 4+3+2 -> cap 6, 3+1+2]
    np.testing.assert_array_equal(h, [4, 6, 6, 6])


def test_scenarios_average():
    cfg, params = _env(False)
    state = initial_state(cfg, params)
    d = params.demand_trace[:5]
    one = replay_candidates(replay_config(cfg), params, state, jnp.array([3.0]), d[None],
                            jnp.full(4, 5, jnp.int32), jax.random.key(0), 5, 6)
    two = replay_candidates(replay_config(cfg), params, state, jnp.array([3.0]),
                            jnp.stack([d, d]), jnp.full(4, 5, jnp.int32), jax.random.key(0), 5, 6)
    np.testing.assert_allclose(one.stock_units, two.stock_units)
