"""Hand-computed days of the dynamics, and invariants of the JAX simulator.

The hand cases share a few configurations with every constraint switched on and neutral
defaults (case pack 1, MOQ 0, no cap, unlimited capacity, review every day), and a fixed
horizon of 6 days, so they compile a handful of times in total.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orpr_jax.policies.heuristics import BaseStock, base_stock, constant
from orpr_jax.sim.demand import poisson_cdf_table
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.params import make_params
from orpr_jax.sim.rollout import evaluate, rollout
from orpr_jax.sim.types import SimConfig
from tests.sim.test_parity import CONFIGS, SETTINGS, jax_simulate, scenarios

DAYS = 6
ALL_SWITCHES = dict(
    use_review=True, use_case_pack=True, use_moq=True, use_max_order=True, use_capacity=True
)
C1 = SimConfig(num_rows=1, max_lead_time=3, demand_mode="trace", **ALL_SWITCHES)
C1_BACKORDER = C1.replace(backorder=True)
C3 = SimConfig(
    num_rows=3, num_warehouses=2, max_lead_time=3, demand_mode="trace", **ALL_SWITCHES
)


def run(config, requests, demand=None, **fields):
    """Runs ``DAYS`` days; ``requests``/``demand`` are ``[days]`` (one row) or ``[days, R]``,
    zero-padded to ``DAYS``."""
    r = config.num_rows

    def pad(x):
        x = np.asarray(x if x is not None else [], np.float64).reshape(-1, r)
        return np.concatenate([x, np.zeros((DAYS - len(x), r))])

    params = make_params(config, **fields)
    return jax_simulate(config, params, pad(demand), requests=pad(requests))


def col(res, name, row=0):
    return res[name][:, row].tolist()


# ---------------------------------------------------------------------------------------
# Hand-computed cases.


def test_order_arrives_at_start_of_day_t_plus_lead_time():
    # L = 2, on hand 5; order 10 on day 0 is due at the start of day 2.
    # day 0: on hand 5, demand 3 -> sales 3, end 2.
    # day 1: on hand 2, demand 3 -> sales 2, lost 1, end 0.
    # day 2: arrivals 10 -> on hand 10, demand 3 -> end 7.  day 3: 7 - 3 = 4; then 4, 4.
    res = run(C1, [10], [3, 3, 3, 3], lead_time=2, initial_on_hand=5, penalty_cost=9.0)
    assert col(res, "order") == [10, 0, 0, 0, 0, 0]
    assert col(res, "arrivals") == [0, 0, 10, 0, 0, 0]
    assert col(res, "sales") == [3, 2, 3, 3, 0, 0]
    assert col(res, "unmet") == [0, 1, 0, 0, 0, 0]
    assert col(res, "on_hand_end") == [2, 0, 7, 4, 4, 4]
    assert col(res, "penalty_cost") == [0, 9, 0, 0, 0, 0]
    assert col(res, "holding_cost") == [2, 0, 7, 4, 4, 4]  # h = 1 per unit at day end
    # Start of day t+1 (post-arrival) on hand: end of day t + arrivals of day t+1.
    assert col(res, "on_hand_next") == [2, 10, 7, 4, 4, 4]


def test_initial_pipeline_slot_k_arrives_on_day_k():
    # initial_pipeline[0] = 1 arrives on day 0 (on hand 4 + 1), [2] = 7 on day 2.
    pipe = np.zeros((C1.ring_size, 1))
    pipe[0, 0], pipe[2, 0] = 1, 7
    res = run(C1, [], [2, 2, 2], initial_on_hand=4, initial_pipeline=pipe)
    assert col(res, "arrivals") == [1, 0, 7, 0, 0, 0]
    # day 0: 5 - 2 = 3; day 1: 3 - 2 = 1; day 2: 1 + 7 - 2 = 6.
    assert col(res, "on_hand_end") == [3, 1, 6, 6, 6, 6]


def test_rounding_is_half_to_even_and_bad_requests_order_nothing():
    # round(2.5) = 2, round(3.5) = 4, round(0.5) = 0; negative / NaN / inf -> 0.
    res = run(C1, [2.5, 3.5, 0.5, -4.0, np.nan, np.inf])
    assert col(res, "order") == [2, 4, 0, 0, 0, 0]
    assert col(res, "order_placed") == [1, 1, 0, 0, 0, 0]


def test_case_pack_rounds_up():
    # cp = 4: round first (9, 8, 0, 1, 2, 4), then up to whole packs.
    res = run(C1, [9, 8, 0.4, 0.6, 2.5, 3.5], case_pack=4)
    assert col(res, "order") == [12, 8, 0, 4, 4, 4]


def test_moq_raises_positive_orders():
    # MOQ 6: 1 -> 6, 5 -> 6, 6 and 7 unchanged, 0.4 and 0.5 round to 0 and stay 0.
    res = run(C1, [1, 5, 6, 7, 0.4, 0.5], moq=6)
    assert col(res, "order") == [6, 6, 6, 7, 0, 0]


def test_moq_with_case_pack_becomes_whole_packs():
    # cp = 4, MOQ 6 -> effective MOQ 8; 1 -> 4 -> 8; 9 -> 12; 8 -> 8.
    res = run(C1, [1, 9, 8], case_pack=4, moq=6)
    assert col(res, "order") == [8, 12, 8, 0, 0, 0]


def test_max_order_caps_orders():
    # max 10: 15 -> 10, 10 -> 10, 3 -> 3.
    res = run(C1, [15, 10, 3], max_order=10)
    assert col(res, "order") == [10, 10, 3, 0, 0, 0]
    # With cp = 4 the cap is whole packs, 4 * floor(10 / 4) = 8: 15 -> 16 -> 8,
    # 10 -> 12 -> 8, 3 -> 4.
    res = run(C1, [15, 10, 3], max_order=10, case_pack=4)
    assert col(res, "order") == [8, 8, 4, 0, 0, 0]


def test_capacity_scales_floors_and_drops_below_moq():
    # Rows 0, 1 share warehouse 0 (capacity 10); row 2 is alone in warehouse 1 (100).
    # Warehouse 0 total 8 + 7 = 15 -> scale 10/15: 8 * 2/3 = 5.33 -> 5, 7 * 2/3 = 4.67 -> 4.
    # Warehouse 1: 50 <= 100, unchanged.
    base = dict(warehouse=[0, 0, 1], capacity=[10.0, 100.0])
    res = run(C3, [[8, 7, 50]], **base)
    assert res["order"][0].tolist() == [5, 4, 50]
    # Row 1 with MOQ 5: 4 < 5 is dropped (the warehouse then ships less than capacity).
    res = run(C3, [[8, 7, 50]], moq=[0, 5, 0], **base)
    assert res["order"][0].tolist() == [5, 0, 50]
    # Row 0 with cp = 2: 5.33 -> 2 * floor(2.67) = 4.
    res = run(C3, [[8, 7, 50]], case_pack=[2, 1, 1], **base)
    assert res["order"][0].tolist() == [4, 4, 50]
    # Capacity 0 blocks every order of the warehouse.
    res = run(C3, [[8, 7, 50]], warehouse=[0, 0, 1], capacity=[0.0, 100.0])
    assert res["order"][0].tolist() == [0, 0, 50]


def test_review_days_with_offset():
    # Row 0: period 3, offset 1 -> days 1, 4. Row 1: period 2, offset 0 -> days 0, 2, 4.
    # Row 2: period 1 -> every day.
    res = run(
        C3, np.full((DAYS, 3), 5.0), review_period=[3, 2, 1], review_offset=[1, 0, 0]
    )
    assert col(res, "order", 0) == [0, 5, 0, 0, 5, 0]
    assert col(res, "order", 1) == [5, 0, 5, 0, 5, 0]
    assert col(res, "order", 2) == [5] * DAYS


def test_backorder_backlog_cleared_by_arrivals():
    # Backorder, L = 2, on hand 2, p = 9; order 6 on day 0 arrives on day 2.
    # day 0: on hand 2, demand 5 -> ship 2, backlog 3; net 2 > 0: in stock, filled 2.
    # day 1: on hand 0, backlog 3, demand 1 -> ship 0, backlog 4; net -3: out, filled 0.
    # day 2: +6 -> on hand 6, backlog 4, demand 0 -> ship 4 (clears it), end 2;
    #        net 2 > 0: in stock, filled min(2, 0) = 0.
    res = run(C1_BACKORDER, [6], [5, 1], lead_time=2, initial_on_hand=2, penalty_cost=9.0)
    assert col(res, "sales") == [2, 0, 4, 0, 0, 0]
    assert col(res, "unmet") == [3, 4, 0, 0, 0, 0]
    assert col(res, "backlog_next") == [3, 4, 0, 0, 0, 0]
    assert col(res, "on_hand_end") == [0, 0, 2, 2, 2, 2]
    assert col(res, "penalty_cost") == [27, 36, 0, 0, 0, 0]  # charged every day it persists
    assert col(res, "in_stock") == [1, 0, 1, 1, 1, 1]
    assert col(res, "filled") == [2, 0, 0, 0, 0, 0]


def test_backorder_in_stock_and_filled_net_of_backlog():
    # on hand 2 + arrivals 4 on day 1 = 6 vs backlog 5 (net 1): in stock, filled min(1, 3).
    # day 0: on hand 2, demand 7 -> ship 2, backlog 5.
    # day 1: on hand 4, backlog 5, net -1: out of stock, filled 0; demand 3 -> ship 4,
    #        backlog 4.
    pipe = np.zeros((C1.ring_size, 1))
    pipe[1, 0] = 4
    res = run(C1_BACKORDER, [], [7, 3], initial_on_hand=2, initial_pipeline=pipe)
    assert col(res, "in_stock")[:2] == [1, 0]
    assert col(res, "filled")[:2] == [2, 0]
    assert col(res, "sales")[:2] == [2, 4]
    assert col(res, "unmet")[:2] == [5, 4]


def test_cost_components():
    # h 0.5, p 4, K 10, c 2; on hand 5, L = 1.
    # day 0: order 3 (placed), demand 7 -> ship 5, lose 2, end 0:
    #        holding 0, penalty 8, ordering 10, purchase 6 -> 24.
    # day 1: +3, demand 1 -> end 2: holding 1, nothing else -> 1.
    res = run(
        C1,
        [3],
        [7, 1],
        initial_on_hand=5,
        holding_cost=0.5,
        penalty_cost=4.0,
        fixed_order_cost=10.0,
        purchase_cost=2.0,
    )
    assert col(res, "holding_cost")[:2] == [0, 1]
    assert col(res, "penalty_cost")[:2] == [8, 0]
    assert col(res, "ordering_cost")[:2] == [10, 0]
    assert col(res, "purchase_cost")[:2] == [6, 0]
    assert col(res, "cost")[:2] == [24, 1]


def test_in_stock_rate_and_fill_rate_metrics():
    # One row, on hand 6, demand 4 a day, no orders, 4 days.
    # day 0: filled 4, end 2, in stock.  day 1: filled 2, lost 2, end 0, in stock.
    # days 2, 3: on hand 0: out of stock, filled 0, lost 4 each.
    # in-stock rate 2/4; fill rate (4 + 2) / 16; lost 10; turnover 2 / 6.
    config = SimConfig(num_rows=1, max_lead_time=2, demand_mode="trace")
    params = make_params(
        config, demand_trace=np.full((4, 1), 4.0), initial_on_hand=6, penalty_cost=9.0
    )
    env = InventoryEnv(config)
    m = evaluate(env, params, constant(0.0), jax.random.key(0), num_days=4)
    assert float(m["in_stock_rate"]) == pytest.approx(0.5)
    assert float(m["fill_rate"]) == pytest.approx(6 / 16)
    assert float(m["lost_units"]) == pytest.approx(10)
    assert float(m["turnover_days"]) == pytest.approx(2 / 6)
    assert float(m["total_cost"]) == pytest.approx(2 + 9 * 10)
    assert float(m["cost_per_row_day"]) == pytest.approx((2 + 90) / 4)


# ---------------------------------------------------------------------------------------
# Invariants (shapes shared with test_parity, so no new compiles).


@pytest.mark.parametrize("name", ["all_lost_sales", "all_backorder_shared"])
@SETTINGS
@given(data=st.data())
def test_stock_conservation_and_nonnegativity(name, data):
    config = CONFIGS[name]
    kw, demand, lead, requests, levels = data.draw(scenarios(config), label="scenario")
    params = make_params(config, **kw)
    for res in (
        jax_simulate(config, params, demand, lead=lead, requests=requests),
        jax_simulate(config, params, demand, lead=lead, levels=levels),
    ):
        start = np.sum(kw["initial_pipeline"], axis=0) + np.asarray(kw["initial_on_hand"])
        lhs = start + np.cumsum(res["order"], axis=0)
        rhs = res["on_hand_next"] + res["pipeline_total_next"] + np.cumsum(res["sales"], 0)
        np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-4)
        # Every unit of demand is either shipped now or unmet (lost / backlogged).
        backlog_before = np.vstack([np.zeros((1, demand.shape[1])), res["backlog_next"][:-1]])
        np.testing.assert_allclose(res["sales"] + res["unmet"], backlog_before + demand)
        for field in ("order", "on_hand_end", "on_hand_next", "backlog_next", "sales"):
            assert (res[field] >= 0).all(), field
            np.testing.assert_array_equal(res[field], np.round(res[field]), err_msg=field)
        if not config.backorder:
            assert (res["backlog_next"] == 0).all()


def _env_and_params(demand_mode: str, num_rows: int = 8):
    config = SimConfig(
        num_rows=num_rows,
        max_lead_time=4,
        history_length=4,
        promo_lookahead=2,
        lead_time_mode="stochastic",
        demand_mode=demand_mode,
    )
    means = np.linspace(1.0, 8.0, num_rows)
    params = make_params(
        config,
        base_demand=means,
        demand_cdf=poisson_cdf_table(means),
        lead_time_probs=np.full((num_rows, 4), 0.25),
        initial_on_hand=10,
    )
    return InventoryEnv(config), params


def _assert_trees_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


def test_step_jit_equals_no_jit():
    env, params = _env_and_params("table", num_rows=4)
    _, state = env.reset(jax.random.key(0), params)
    action = jnp.asarray([3.0, 0.0, 7.5, np.nan], jnp.float32)
    jitted = jax.jit(env.step)
    state_eager = state_jit = state
    for day in range(2):
        key = jax.random.key(day + 1)
        out_eager = env.step(key, state_eager, action, params)  # op by op
        out_jit = jitted(key, state_jit, action, params)
        _assert_trees_close(out_eager, out_jit)
        state_eager, state_jit = out_eager[1], out_jit[1]


def test_vmap_over_params_equals_loop():
    env, _ = _env_and_params("table", num_rows=4)
    means = np.array([2.0, 4.0, 6.0, 8.0])
    batch = [
        make_params(
            env.config,
            demand_cdf=poisson_cdf_table(np.roll(means, k)),
            lead_time_probs=np.roll(np.array([0.1, 0.2, 0.3, 0.4]), k),
            holding_cost=1.0 + k,
            penalty_cost=9.0 - k,
            initial_on_hand=3 * k,
        )
        for k in range(3)
    ]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)
    policy = base_stock(12.0)
    key = jax.random.key(7)
    days = 10
    _, outs_v, rewards_v = jax.vmap(lambda p: rollout(env, p, policy, key, days))(stacked)
    for k, params in enumerate(batch):
        _, outs, rewards = rollout(env, params, policy, key, days)
        _assert_trees_close(jax.tree.map(lambda x, k=k: x[k], outs_v), outs)
        np.testing.assert_allclose(np.asarray(rewards_v[k]), np.asarray(rewards))
    # The batch members really differ.
    assert not np.allclose(np.asarray(rewards_v[0]), np.asarray(rewards_v[1]))


def test_evaluate_does_not_retrace_for_a_new_base_stock_level(monkeypatch):
    # The policy is traced once per compile: a second trace for a new level fails.
    chex.clear_trace_counter()
    monkeypatch.setattr(BaseStock, "__call__", chex.assert_max_traces(BaseStock.__call__, n=1))
    # A configuration no other test uses, so the first call compiles.
    config = SimConfig(num_rows=3, max_lead_time=2, history_length=3, promo_lookahead=1)
    env = InventoryEnv(config)
    params = make_params(config, demand_cdf=poisson_cdf_table(3.0))
    key = jax.random.key(0)
    low = evaluate(env, params, base_stock(2.0), key, num_days=12, warmup_days=2)
    high = evaluate(env, params, base_stock(9.0), key, num_days=12, warmup_days=2)
    assert float(low["holding_cost"]) < float(high["holding_cost"])


@pytest.mark.parametrize("demand_mode", ["table", "poisson"])
def test_step_same_seed_same_numbers(demand_mode):
    env, params = _env_and_params(demand_mode, num_rows=32)
    _, state = env.reset(jax.random.key(0), params)
    action = jnp.full((32,), 4.0, jnp.float32)
    step = jax.jit(env.step)
    a = step(jax.random.key(1), state, action, params)
    b = step(jax.random.key(1), state, action, params)
    c = step(jax.random.key(2), state, action, params)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    demand_a = np.asarray(a[5]["outcome"].demand)
    demand_c = np.asarray(c[5]["outcome"].demand)
    assert not np.array_equal(demand_a, demand_c)
    # The stochastic lead times differ too: the order sits in different ring slots.
    assert not np.array_equal(np.asarray(a[1].ring), np.asarray(c[1].ring))
    assert demand_a.sum() > 0
