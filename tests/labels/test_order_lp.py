"""The SAA ordering LP: hand cases, DPP layer vs fresh cvxpy, constraints, simulator replay."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from benchmarks.order_lp_instances import benchmark_order_lp, random_inputs
from orpr_jax.labels.order_lp.inputs import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RETRIED,
    lp_inputs_from_state,
    order_lp_inputs,
    stack_inputs,
)
from orpr_jax.labels.order_lp.lp import OrderLP, make_order_lp
from orpr_jax.labels.order_lp.plan import plan_costs
from orpr_jax.sim.dynamics import initial_state, transition
from orpr_jax.sim.types import SimConfig


def _one(**kw):
    base = dict(on_hand=[3.0], demand=[[[3.0, 3.0, 3.0, 3.0]]], lead_time=[1],
                holding_cost=[1.0], penalty_cost=[10.0], purchase_cost=[0.0])
    base.update(kw)
    return order_lp_inputs(**base)


def _solve(inputs):
    _, n, h, s = inputs.shape
    lp = make_order_lp(n, h, s)
    sol = lp.solve_batch(stack_inputs([inputs]))
    assert sol.status[0] == STATUS_OK
    return sol.orders[0], sol.objective[0]


# --------------------------------------------------------------------------------------
# Tiny hand-checkable cases (one row, S = 1, no capacity)
# --------------------------------------------------------------------------------------


def test_orders_net_requirements_when_penalty_exceeds_holding():
    # Demand 3/day, on hand 3 covers day 0; L = 1: the order of day t arrives on day t+1
    # and covers its demand exactly. Day 3's order would arrive after the horizon: 0.
    orders, obj = _solve(_one(purchase_cost=[0.5]))
    np.testing.assert_allclose(orders, [[3, 3, 3, 0]], atol=1e-6)
    # No stock left at any day's end, nothing lost: cost = c * 9 = 4.5.
    assert obj == pytest.approx(4.5, rel=1e-6)


def test_lead_time_two_loses_day_one():
    # L = 2: nothing can arrive on day 1, so its 3 units are lost (p = 10 -> 30); orders
    # of days 0 and 1 cover days 2 and 3.
    orders, obj = _solve(_one(lead_time=[2]))
    np.testing.assert_allclose(orders, [[3, 3, 0, 0]], atol=1e-6)
    assert obj == pytest.approx(30.0, rel=1e-6)


def test_orders_nothing_when_buying_costs_more_than_losing():
    # c = 12 > p = 10: every unit bought costs more than the sale it saves.
    orders, obj = _solve(_one(purchase_cost=[12.0]))
    np.testing.assert_allclose(orders, 0.0, atol=1e-6)
    assert obj == pytest.approx(10.0 * 9, rel=1e-6)  # days 1-3 lost


@pytest.mark.parametrize("h,p,expected,cost", [
    # Review on days 0 and 2 only. p > h: day 0 orders days 1 and 2 (6 units; 3 held
    # overnight at day 1's end, h = 1), day 2 orders day 3: cost 3 * h = 3.
    (1.0, 10.0, [6, 0, 3, 0], 3.0),
    # p < h: holding a unit overnight (h = 2) costs more than losing it (p = 1), so day
    # 2's demand is lost (3 * p = 3) and each order covers only the next day.
    (2.0, 1.0, [3, 0, 3, 0], 3.0),
])
def test_review_days_trade_holding_against_penalty(h, p, expected, cost):
    orders, obj = _solve(_one(holding_cost=[h], penalty_cost=[p],
                              review_mask=[[1.0, 0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(orders, [expected], atol=1e-6)
    assert obj == pytest.approx(cost, rel=1e-6)


@pytest.mark.parametrize("horizon,lead", [(1, 1), (3, 3)])
def test_no_order_can_arrive_inside_the_horizon(horizon, lead):
    # L >= H: every order would arrive after the horizon, so none is placed; all demand
    # beyond the 3 units on hand is lost.
    x = _one(demand=np.full((1, 1, horizon), 3.0), lead_time=[lead])
    orders, obj = _solve(x)
    np.testing.assert_allclose(orders, 0.0)
    assert obj == pytest.approx(10.0 * 3 * (horizon - 1), abs=1e-6)


def test_pipeline_arrivals_reduce_orders():
    # 5 units due on day 2 cover day 2's demand and 2 of day 3's: orders 3, 0, 1, 0.
    orders, _ = _solve(_one(arrivals=[[0.0, 0.0, 5.0, 0.0]]))
    np.testing.assert_allclose(orders, [[3, 0, 1, 0]], atol=1e-6)


# --------------------------------------------------------------------------------------
# The batched DPP layer against fresh cvxpy solves
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    x = random_inputs(0, 4, 3, 10, 3, capacity_frac=0.8)
    lp = make_order_lp(3, 10, 3)
    return x, lp, lp.solve_batch(x)


def test_layer_is_dpp_and_cached():
    lp = make_order_lp(3, 10, 3)
    assert lp.problem.is_dpp()
    assert make_order_lp(3, 10, 3) is lp
    assert lp.layer is lp.layer


def test_batched_equals_fresh(small):
    x, lp, sol = small
    assert sol.orders.shape == (4, 3, 10) and sol.label.shape == (4, 3)
    np.testing.assert_array_equal(sol.status, STATUS_OK)
    for b in range(4):
        one = jax.tree.map(lambda a, b=b: a[b], x)
        fresh = lp.solve_one_fresh(one)
        assert fresh.status == STATUS_OK and fresh.orders.shape == (3, 10)
        assert sol.objective[b] == pytest.approx(fresh.objective, rel=1e-4)
        # The batched plan is optimal for the fresh problem (robust to tied optima) ...
        assert plan_costs(one, sol.orders[b]).mean() == pytest.approx(fresh.objective,
                                                                       rel=1e-4)
        # ... and, the optimum of these instances being unique, the same plan.
        scale = max(one.demand.max(), one.on_hand.max())
        np.testing.assert_allclose(sol.orders[b], fresh.orders, atol=1e-4 * scale)


def test_objective_is_exact_cost_of_plan(small):
    # Lost-sales linearisation: the LP value equals its plan's replayed SAA cost.
    x, _, sol = small
    np.testing.assert_allclose(plan_costs(x, sol.orders).mean(axis=1), sol.objective,
                               rtol=1e-6)


def test_batch_size_chunks_match_one_call(small):
    x, lp, sol = small
    chunked = lp.solve_batch(x, batch_size=3, n_jobs=1)
    np.testing.assert_allclose(chunked.objective, sol.objective, rtol=1e-7)


def test_capacity_binds():
    x = random_inputs(3, 4, 3, 10, 3, capacity_frac=0.4, review=False)
    sol = make_order_lp(3, 10, 3).solve_batch(x)
    np.testing.assert_array_equal(sol.status, STATUS_OK)
    daily = sol.orders.sum(axis=1)  # [B, H]
    cap = x.capacity
    assert np.all(daily <= cap * (1 + 1e-6) + 1e-9)
    # It binds: some day of every problem orders the full capacity.
    np.testing.assert_allclose(daily.max(axis=1), cap[:, 0], rtol=1e-5)
    loose = make_order_lp(3, 10, 3).solve_batch(x.replace(capacity=np.full_like(cap, np.inf)))
    assert np.all(loose.orders.sum(axis=1).max(axis=1) > cap[:, 0] * 1.01)
    assert np.all(loose.objective < sol.objective)


def test_review_mask_respected(small):
    x, _, sol = small
    assert (x.review_mask == 0).any()
    off = sol.orders[x.review_mask == 0]
    assert np.all(off == 0.0)  # clipped to the bound 0
    assert np.all(sol.orders >= 0.0)


def test_padding_rows_change_nothing():
    x = random_inputs(11, 2, 4, 8, 2, active_frac=0.5)  # rows 2, 3 are padding
    sol = make_order_lp(4, 8, 2).solve_batch(x)
    real = jax.tree.map(lambda a: a[:, :2] if a.ndim == 2 else a, x)
    real = real.replace(demand=x.demand[:, :, :2], arrivals=x.arrivals[:, :2],
                        review_mask=x.review_mask[:, :2], capacity=x.capacity)
    ref = make_order_lp(2, 8, 2).solve_batch(real)
    np.testing.assert_allclose(sol.orders[:, 2:], 0.0)
    np.testing.assert_allclose(sol.objective, ref.objective, rtol=1e-6)
    np.testing.assert_allclose(sol.orders[:, :2], ref.orders, atol=1e-4 * x.demand.max())


def test_failed_solve_is_retried_then_flagged(small):
    x, lp, sol = small
    # One Clarabel iteration cannot solve: the check flags it and SCS solves it.
    retried = lp.solve_batch(x, solver_args={"max_iter": 1})
    np.testing.assert_array_equal(retried.status, STATUS_RETRIED)
    np.testing.assert_allclose(retried.objective, sol.objective, rtol=1e-4)
    # Both methods crippled: reported per problem, no exception.
    failed = lp.solve_batch(x, solver_args={"max_iter": 1},
                            fallback_solver_args={"solve_method": "SCS", "max_iters": 2})
    np.testing.assert_array_equal(failed.status, STATUS_FAILED)
    assert not failed.ok.any() and np.isnan(failed.objective).all()
    np.testing.assert_array_equal(failed.orders, 0.0)


def test_fresh_failure_is_flagged(small):
    x, lp, _ = small
    one = jax.tree.map(lambda a: a[0], x)
    out = lp.solve_one_fresh(one, solver="NOT_A_SOLVER", fallback_solver=None)
    assert out.status == STATUS_FAILED and math.isnan(out.objective)


# --------------------------------------------------------------------------------------
# From a simulator state, and the plan replayed through the simulator
# --------------------------------------------------------------------------------------


def _sim(horizon=9, warehouse=(0, 0, 1), **cfg_kw):
    rng = np.random.default_rng(4)
    cfg = SimConfig(num_rows=3, num_warehouses=2, max_lead_time=3, history_length=4,
                    demand_mode="trace", use_review=True, **cfg_kw)
    trace = rng.integers(0, 7, (horizon + 4, 3)).astype(np.float32)
    pipe = np.zeros((4, 3))
    pipe[1, 0], pipe[2, 1], pipe[3, 2] = 4, 6, 2
    kw = dict(
        demand_trace=trace, review_period=[1, 2, 1], review_offset=[0, 1, 0],
        holding_cost=[1.0, 0.5, 2.0], penalty_cost=[9.0, 6.0, 20.0],
        purchase_cost=[1.0, 2.0, 0.5], initial_on_hand=[4, 10, 2], initial_pipeline=pipe,
        warehouse=list(warehouse), capacity=[100.0, 100.0],
    )
    if cfg.lead_time_mode == "stochastic":
        kw["lead_time_probs"] = [[0.2, 0.5, 0.3], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
    else:
        kw["lead_time"] = [1, 2, 3]
    return cfg, orpr_jax.make_params(cfg, **kw), trace


def _advance(cfg, params, trace, days):
    state = initial_state(cfg, params)
    for t in range(days):
        state, _ = transition(cfg, params, state, jnp.full((3,), 5.0, jnp.float32),
                              jnp.asarray(trace[t]), params.lead_time)
    return state


def test_inputs_from_state_read_pipeline_review_and_costs():
    cfg, params, trace = _sim()
    state = _advance(cfg, params, trace, 2)  # day 2: orders of 5 from days 0 and 1 in flight
    h = 6
    scen = np.stack([trace[2:2 + h], trace[2:2 + h] + 1.0])  # [S=2, H, R]
    x = lp_inputs_from_state(cfg, params, state, scen, [0, 1], h, num_rows=3)
    assert x.shape == (1, 3, h, 2) and not x.batched
    np.testing.assert_array_equal(x.active, [True, True, False])
    np.testing.assert_allclose(x.on_hand[:2], np.asarray(state.on_hand)[:2])
    # Row 1 (L = 2): day 1's order arrives on day 3 (1 day ahead); the initial pipeline
    # had 6 units due on day 2, already on hand. Row 0 (L = 1): nothing in flight.
    np.testing.assert_allclose(x.arrivals[0], 0.0)
    np.testing.assert_allclose(x.arrivals[1], [0, 5, 0, 0, 0, 0])
    # Days 2..7; row 1 reviews when (t - 1) mod 2 == 0, i.e. days 3, 5, 7.
    np.testing.assert_allclose(x.review_mask[0], 1.0)
    np.testing.assert_allclose(x.review_mask[1], [0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(x.review_mask[2], 0.0)  # padding never orders
    np.testing.assert_array_equal(x.lead_time, [1, 2, 1])
    np.testing.assert_allclose(x.demand[1, 1], trace[2:2 + h, 1] + 1.0)
    np.testing.assert_allclose(x.holding_cost[:2], [1.0, 0.5])
    np.testing.assert_allclose(x.capacity, math.inf)  # use_capacity is off


def test_inputs_from_state_stochastic_and_capacity():
    cfg, params, trace = _sim(warehouse=(1, 1, 1), lead_time_mode="stochastic",
                              use_capacity=True, use_max_order=True)
    state = initial_state(cfg, params)
    x = lp_inputs_from_state(cfg, params, state, trace[None, :5], [2, 0, 1], 5)
    # Means 2.1, 2.5, 1.0 round (half up) to 2, 3, 1; rows are in the given order.
    np.testing.assert_array_equal(x.lead_time, [1, 2, 3])
    np.testing.assert_allclose(x.capacity, 100.0)
    assert np.isfinite(x.max_order).all()


def test_plan_replayed_through_simulator_costs_what_the_lp_predicts():
    cfg, params, trace = _sim(warehouse=(0, 0, 0))
    state = _advance(cfg, params, trace, 2)
    h = 9
    x = lp_inputs_from_state(cfg, params, state, trace[None, 2:2 + h], [0, 1, 2], h)
    sol = make_order_lp(3, h, 1).solve_batch(stack_inputs([x]))
    assert sol.status[0] == STATUS_OK
    plan = sol.orders[0]
    # Integer data, unique optimum: the LP vertex is whole units (the simulator rounds).
    np.testing.assert_allclose(plan, np.round(plan), atol=1e-5)
    total = 0.0
    for t in range(h):
        state, out = transition(cfg, params, state, jnp.asarray(np.round(plan[:, t]),
                                                                jnp.float32),
                                jnp.asarray(trace[2 + t]), params.lead_time)
        np.testing.assert_allclose(out.order, np.round(plan[:, t]))
        total += float(out.cost.sum())
    assert sol.objective[0] > 0
    assert total == pytest.approx(sol.objective[0], rel=1e-5)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,match", [
    (dict(demand=[3.0, 3.0]), r"demand has shape \(2,\)"),
    (dict(demand=[[[3.0, -1.0, 3.0, 3.0]]]), r"demand=-1\.0 .* allowed range \[0, inf\)"),
    (dict(demand=[[[3.0, np.nan, 3.0, 3.0]]]), "demand must be finite"),
    (dict(demand=np.zeros((1, 1, 0))), "H=0 is not allowed"),
    (dict(demand=np.zeros((0, 1, 4))), "S=0 is not allowed"),
    (dict(on_hand=[math.inf]), "on_hand must be finite"),
    (dict(on_hand=[1.0, 2.0]), r"on_hand has shape \(2,\); expected \(1,\)"),
    (dict(arrivals=[[0.0, -2.0, 0.0, 0.0]]), "arrivals=-2.0"),
    (dict(lead_time=[0]), "lead_time=0.0 .* integer >= 1"),
    (dict(lead_time=[1.5]), "lead_time=1.5"),
    (dict(lead_time=[5]), "horizon=4 is shorter than the longest lead time 5"),
    (dict(holding_cost=[-1.0]), r"holding_cost=-1\.0 .* \[0, inf\)"),
    (dict(penalty_cost=[0.0]), r"penalty_cost=0\.0 .* \(0, inf\)"),
    (dict(purchase_cost=[np.nan]), "purchase_cost must be finite"),
    (dict(review_mask=[[1.0, 0.5, 1.0, 1.0]]), "review_mask must be 0 or 1; got 0.5"),
    (dict(capacity=[1.0, np.nan, 1.0, 1.0]), "capacity must be not NaN or -inf"),
    (dict(capacity=-1.0), r"capacity=-1\.0 .* \[0, inf\]"),
    (dict(max_order=[-3.0]), "max_order=-3.0"),
    (dict(active=[2]), "active must be boolean"),
    (dict(on_hand=np.array(["a"])), "on_hand must be a real numeric array"),
])
def test_input_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        _one(**kw)


def test_inactive_rows_are_not_validated():
    x = _one(on_hand=[3.0, np.nan], demand=[[[3.0] * 4, [-1.0] * 4]], lead_time=[1, 99],
             holding_cost=[1.0, -1.0], penalty_cost=[10.0, 0.0], purchase_cost=[0.0, 0.0],
             active=[True, False])
    orders, _ = _solve(x)
    np.testing.assert_allclose(orders[1], 0.0)


@pytest.mark.parametrize("args,match", [
    ((0, 4, 1), "num_rows=0"), ((1, 0, 1), "horizon=0"), ((1, 4, 0), "scenarios=0"),
    ((True, 4, 1), "num_rows=True"), ((1, 4, 1, 5), r"max_lead_time=5 .* \[1, 4\]"),
])
def test_lp_size_errors(args, match):
    with pytest.raises(ValueError, match=match):
        OrderLP(*args)


def test_solve_errors(small):
    x, lp, _ = small
    one = jax.tree.map(lambda a: a[0], x)
    with pytest.raises(ValueError, match="solve_batch takes a batch"):
        lp.solve_batch(one)
    with pytest.raises(ValueError, match="solve_one_fresh takes one problem"):
        lp.solve_one_fresh(x)
    with pytest.raises(ValueError, match=r"inputs have \(N, H, S\) = \(1, 4, 1\)"):
        lp.solve_batch(stack_inputs([_one()]))
    with pytest.raises(ValueError, match="batch_size=0"):
        lp.solve_batch(x, batch_size=0)
    short = OrderLP(1, 4, 1, max_lead_time=1)
    with pytest.raises(ValueError, match="lead_time=2 exceeds this OrderLP's max_lead_time=1"):
        short.solve_batch(stack_inputs([_one(lead_time=[2])]))
    with pytest.raises(ValueError, match="problems is empty"):
        stack_inputs([])
    with pytest.raises(ValueError, match="different"):
        stack_inputs([_one(), one])
    with pytest.raises(ValueError, match="unbatched"):
        stack_inputs([x])
    with pytest.raises(ValueError, match=r"orders has shape \(3, 9\)"):
        plan_costs(one, np.zeros((3, 9)))
    with pytest.raises(ValueError, match="orders=-1.0"):
        plan_costs(one, -np.ones((3, 10)))


def test_from_state_errors():
    cfg, params, trace = _sim()
    state = initial_state(cfg, params)
    scen = trace[None, :5]
    cases = [
        (dict(rows_of_warehouse=[0, 3]), r"row 3; allowed range \[0, 2\]"),
        (dict(rows_of_warehouse=[0, 0]), "repeated rows"),
        (dict(rows_of_warehouse=[]), "non-empty"),
        (dict(rows_of_warehouse=[0, 2]), r"span warehouses \[0, 1\]"),
        (dict(num_rows=1), r"num_rows=1 is smaller than the warehouse's 2 rows"),
        (dict(demand_scenarios=trace[:5]), r"demand_scenarios has shape \(5, 3\)"),
        (dict(horizon=0, demand_scenarios=trace[None, :0]), "horizon=0"),
        (dict(horizon=1, demand_scenarios=trace[None, :1]),
         "horizon=1 is shorter than the longest lead time 2"),
    ]
    for kw, match in cases:
        args = dict(demand_scenarios=scen, rows_of_warehouse=[0, 1], horizon=5) | kw
        with pytest.raises(ValueError, match=match):
            lp_inputs_from_state(cfg, params, state, **args)
    bcfg, bparams, _ = _sim(backorder=True)
    with pytest.raises(ValueError, match="backorder=True is not supported"):
        lp_inputs_from_state(bcfg, bparams, initial_state(bcfg, bparams), scen, [0], 5)


@pytest.mark.parametrize("kw,match", [
    (dict(B=0), "B=0"), (dict(max_lead=0), "max_lead=0"),
    (dict(capacity_frac=-1.0), "capacity_frac=-1.0"), (dict(active_frac=0.0), "active_frac"),
])
def test_random_inputs_errors(kw, match):
    args = dict(seed=0, B=1, N=1, H=3, S=1) | kw
    with pytest.raises(ValueError, match=match):
        random_inputs(**args)


def test_benchmark_smoke():
    out = benchmark_order_lp(2, 2, 5, 2, n_fresh=1)
    assert out["batched_solves_per_s"] > 0 and out["fresh_solves_per_s"] > 0
    assert out["max_rel_objective_diff"] < 1e-4
    assert out["statuses"] == [2, 0, 0]
