"""Exact lost-sales optimum (relative value iteration) and exact base-stock costs.

Checks: (a) the JAX solver against an independent NumPy value iteration written here
with plain loops (other truncation: demand cut at 40 with the tail folded in, positions
up to Morton's bound + 3); (b) optimum <= best base stock, and the exact base-stock cost
against the simulator; (c) the optimal table played in the simulator against the VI
cost; (d) every bad input. Monte-Carlo checks use independent rows, so the standard
error comes from the per-row averages, and each asserts its own power.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.exact import (
    OptimalPolicy,
    base_stock_cost,
    best_base_stock,
    chain,
    lost_sales_optimum,
    optimal,
    position_bound,
)

ROWS, DAYS, WARMUP = 1000, 400, 100


# ---------------------------------------------------------------------------------------
# (a) an independent NumPy reference.


def _numpy_optimum(lead_time, p, h=1.0, mu=5.0, cap=None, dmax=40, tol=1e-9):
    """Relative value iteration with loops over states and actions.

    States (x, w_1..w_{L-1}) with x + sum(w) <= cap; actions a <= cap - x - sum(w);
    demand 0..dmax with P(d >= dmax) folded into dmax; next state ((x - d)^+ + w_1,
    w_2, ..., a), or (x - d)^+ + a for L = 1; cost h (x - d)^+ + p (d - x)^+.
    """
    pmf = np.array([math.exp(-mu) * mu**k / math.factorial(k) for k in range(dmax + 1)])
    pmf[-1] += 1.0 - pmf.sum()
    d = np.arange(dmax + 1)
    states = [s for s in itertools.product(range(cap + 1), repeat=lead_time)
              if sum(s) <= cap]
    index = {s: i for i, s in enumerate(states)}
    model = []
    for s in states:
        x, w = s[0], s[1:]
        y = np.maximum(x - d, 0)
        cost = float(pmf @ (h * y + p * np.maximum(d - x, 0)))
        nexts = []
        for a in range(cap - sum(s) + 1):
            if lead_time == 1:
                nexts.append(np.array([index[(int(k) + a,)] for k in y]))
            else:
                nexts.append(np.array([index[(int(k) + w[0],) + w[1:] + (a,)] for k in y]))
        model.append((cost, nexts))
    v = np.zeros(len(states))
    for _ in range(10_000):
        tv = np.empty_like(v)
        act = np.empty(len(states), int)
        for i, (cost, nexts) in enumerate(model):
            q = [pmf @ v[n] for n in nexts]
            act[i] = int(np.argmin(q))
            tv[i] = cost + q[act[i]]
        diff = tv - v
        v = tv - tv[0]
        if diff.max() - diff.min() < tol:
            break
    g = 0.5 * (diff.max() + diff.min())
    return g, {s: int(act[i]) for i, s in enumerate(states)}


@pytest.mark.parametrize(("lead_time", "p"), [(1, 4.0), (1, 19.0), (2, 4.0)])
def test_optimum_matches_numpy_reference(lead_time, p):
    res = lost_sales_optimum(lead_time, p)
    cap = position_bound(lead_time, p) + 3
    g_ref, act_ref = _numpy_optimum(lead_time, p, cap=cap)
    assert res.converged and res.span <= 1e-6
    assert res.lower_bound <= res.average_cost <= res.upper_bound
    # The 1e-6 bracket plus the reference's 40-unit demand cut (tail mass ~1e-13).
    assert res.average_cost == pytest.approx(g_ref, abs=2e-6)
    # Same optimal order in every state both spaces hold.
    for s, a in act_ref.items():
        if sum(s) <= res.max_on_hand:
            assert res.order_table[s] == a, (s, res.order_table[s], a)


def test_hand_computed_one_day_costs():
    # Poisson(5), x = 0: nothing is sold, E lost = 5, so the day costs p * 5 = 20 (p = 4).
    # x = 1: E(1 - d)^+ = P(d = 0) = e^-5; E(d - 1)^+ = 5 - 1 + e^-5.
    space = chain._build_space(1, 5, 5, 5.0, 1.0, 4.0)
    e5 = math.exp(-5.0)
    assert space.cost[0] == pytest.approx(20.0)
    assert space.cost[1] == pytest.approx(e5 + 4.0 * (4.0 + e5))
    # Kernel rows are distributions of the next on hand (x = 2, w = 3: z in 3..5).
    assert space.kernel.sum(axis=-1)[3, 2] == pytest.approx(1.0)
    assert space.kernel[3, 2, 5] == pytest.approx(e5)  # d = 0 keeps both units


def test_optimum_is_exact_under_wider_truncation_and_table_structure():
    res = lost_sales_optimum(2, 4.0)
    assert res.max_on_hand == position_bound(2, 4.0) + 1
    assert res.orders_at_position_cap == 0 and res.orders_at_max_order == 0
    wider = lost_sales_optimum(2, 4.0, max_on_hand=res.max_on_hand + 4)
    assert wider.average_cost == pytest.approx(res.average_cost, abs=2e-6)
    # Zipkin (2008b): the optimal order is non-increasing in every state component, with
    # slope >= -1, so the largest order is the one at the empty state.
    feasible = np.isfinite(res.relative_values)
    table = res.order_table.astype(int)
    for axis in range(2):
        diff = np.diff(table, axis=axis)
        inside = np.take(feasible, np.arange(1, feasible.shape[axis]), axis=axis)
        assert diff[inside].min() >= -1 and diff[inside].max() <= 0
    assert table[0, 0] == res.largest_order
    # A cap on one order below the largest optimal order binds, is reported and costs.
    capped = lost_sales_optimum(2, 4.0, max_order=res.largest_order - 2)
    assert capped.orders_at_max_order > 0
    assert capped.average_cost > res.average_cost + 1e-3


def test_iteration_limit_is_reported():
    res = lost_sales_optimum(2, 4.0, max_iters=1)
    assert res.iterations == 1 and not res.converged
    assert res.lower_bound < res.upper_bound


# ---------------------------------------------------------------------------------------
# (b) base stock: exact chain vs optimum and vs simulation.


def _simulate(policy, lead_time, p, seed):
    env, params = orpr_jax.make("lost_sales", num_rows=ROWS, lead_time=lead_time,
                                lost_sales_cost=p, demand_mean=5.0, holding_cost=1.0)
    m = orpr_jax.evaluate(env, params, policy, jax.random.key(seed), DAYS, WARMUP)
    per_row = np.asarray(m["per_row"]["cost_per_day"], np.float64)
    assert float(m["cost_per_row_day"]) == pytest.approx(per_row.mean(), rel=1e-4)
    return per_row


def test_best_base_stock_is_above_optimum_and_matches_simulation():
    opt = lost_sales_optimum(2, 4.0)
    best = best_base_stock(2, 4.0)
    assert best.converged
    assert opt.average_cost <= best.average_cost
    # The best level beats both neighbours, which the walk evaluated.
    assert best.costs[best.level - 1] > best.average_cost < best.costs[best.level + 1]
    # On the smallest space (S = level, no transient states) the cost is the same.
    one = base_stock_cost(2, 4.0, best.level)
    assert one.average_cost == pytest.approx(best.average_cost, abs=2e-6)

    rows = _simulate(orpr_jax.policies.base_stock(float(best.level)), 2, 4.0, seed=0)
    se = rows.std(ddof=1) / math.sqrt(ROWS)
    assert abs(rows.mean() - best.average_cost) < 4 * se, (rows.mean(), best.average_cost, se)
    # Power: a level off by one is far outside the band (4.70 and 4.76 vs 4.64).
    for wrong in (best.costs[best.level + 1], best.costs[best.level - 1]):
        assert abs(rows.mean() - wrong) > 4 * se, wrong


# (c) the optimal table in the simulator.


def test_optimal_policy_in_simulator_matches_vi_cost():
    opt = lost_sales_optimum(2, 4.0)
    best = best_base_stock(2, 4.0)
    opt_rows = _simulate(opt.policy(), 2, 4.0, seed=1)
    se = opt_rows.std(ddof=1) / math.sqrt(ROWS)
    assert abs(opt_rows.mean() - opt.average_cost) < 4 * se, (opt_rows.mean(), se)
    # Common random numbers: the same days under the best base stock cost more, by about
    # the exact gap (about 5% here, many standard errors).
    bs_rows = _simulate(orpr_jax.policies.base_stock(float(best.level)), 2, 4.0, seed=1)
    gap = bs_rows - opt_rows
    gap_se = gap.std(ddof=1) / math.sqrt(ROWS)
    exact_gap = best.average_cost - opt.average_cost
    assert exact_gap > 10 * gap_se
    assert abs(gap.mean() - exact_gap) < 4 * gap_se, (gap.mean(), exact_gap, gap_se)


def test_optimal_policy_reads_on_hand_and_pipeline():
    table = jnp.arange(4 * 3 * 3, dtype=jnp.float32).reshape(4, 3, 3)
    policy = OptimalPolicy(table=table, lead_time=3)
    env, params = orpr_jax.make("lost_sales", num_rows=4, lead_time=3)
    obs, _ = jax.jit(env.reset)(jax.random.key(0), params)
    # Rows: in range; on hand above the table (clipped to 3); pipeline above (clipped to
    # 2) and negative (clipped to 0); fractional values rounded.
    obs = obs.replace(
        on_hand=jnp.array([1.0, 9.0, 2.0, 0.2]),
        pipeline=jnp.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [5.0, -1.0, 0.0],
                            [0.9, 1.6, 0.0]]),
    )
    got = np.asarray(policy(obs, jax.random.key(1)))
    want = np.asarray(table)[[1, 3, 2, 0], [2, 0, 2, 1], [1, 1, 0, 2]]
    np.testing.assert_array_equal(got, want)
    # A pytree: it runs under jit with the table as a traced leaf.
    f = jax.jit(lambda pol, o: pol(o, jax.random.key(0)))
    np.testing.assert_array_equal(np.asarray(f(policy, obs)), want)


# ---------------------------------------------------------------------------------------
# (d) bad inputs.


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lead_time": 0}, "lead_time"),
        ({"lead_time": 1.5}, "lead_time"),
        ({"lead_time": True}, "lead_time"),
        ({"lost_sales_cost": 0.0}, "lost_sales_cost"),
        ({"lost_sales_cost": -1.0}, "lost_sales_cost"),
        ({"lost_sales_cost": float("nan")}, "lost_sales_cost"),
        ({"lost_sales_cost": "9"}, "lost_sales_cost"),
        ({"demand_mean": 0.0}, "demand_mean"),
        ({"demand_mean": float("inf")}, "demand_mean"),
        ({"holding_cost": 0.0}, "holding_cost"),
        ({"tol": 0.0}, "tol"),
        ({"max_iters": 0}, "max_iters"),
        ({"max_on_hand": 0}, "max_on_hand"),
        ({"max_on_hand": 3.0}, "max_on_hand"),
        ({"max_order": 0}, "max_order"),
        ({"lead_time": 9}, "lead_time"),  # state space beyond MAX_ENTRIES
    ],
)
def test_optimum_bad_inputs(kwargs, field):
    args = {"lead_time": 2, "lost_sales_cost": 9.0} | kwargs
    with pytest.raises(ValueError, match=field):
        lost_sales_optimum(**args)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: base_stock_cost(2, 9.0, 0), "level"),
        (lambda: base_stock_cost(2, 9.0, 17.0), "level"),
        (lambda: base_stock_cost(0, 9.0, 17), "lead_time"),
        (lambda: base_stock_cost(2, 9.0, 17, holding_cost=-1.0), "holding_cost"),
        (lambda: best_base_stock(2, 0.0), "lost_sales_cost"),
        (lambda: best_base_stock(2, 9.0, tol=float("nan")), "tol"),
        (lambda: position_bound(2, 9.0, demand_mean=-5.0), "demand_mean"),
    ],
)
def test_base_stock_bad_inputs(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_policy_rejects_env_with_shorter_pipeline():
    policy = OptimalPolicy(table=jnp.zeros((5, 3, 3), jnp.float32), lead_time=3)
    env, params = orpr_jax.make("lost_sales", num_rows=2, lead_time=1)
    obs, _ = jax.jit(env.reset)(jax.random.key(0), params)
    with pytest.raises(ValueError, match="lead_time"):
        policy(obs, jax.random.key(1))


def test_optimal_module_keeps_its_names():
    # orpr_jax.exact.optimal (the command of the classic table) still exports every name
    # it had before the package was split into modules, as the same objects.
    import orpr_jax.exact as exact

    for name in optimal.__all__:
        assert getattr(optimal, name) is getattr(exact, name), name
    assert callable(optimal._main)
