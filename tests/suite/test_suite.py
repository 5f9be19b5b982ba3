"""The suite: its grid, references, tuned heuristics and policy costs, and bad input.

The exact paths (L <= 4) are checked against the exact solvers; the simulated paths
(L >= 6) run on a tiny budget here (the recorded run uses :class:`SimSettings()`), so
they check the plumbing, the common random numbers and the stopping rule, not the costs.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

import orpr_jax
from orpr_jax import suite
from orpr_jax.exact import lost_sales_optimum

TINY = suite.SimSettings(tune_rows=32, tune_days=200, eval_rows=64, eval_days=300,
                         warmup_days=50, max_batches=1)


def test_grid_has_56_distinct_instances_with_references():
    grid = suite.instances()
    assert len(grid) == len(set(grid)) == 56
    assert {i.lead_time for i in grid} == {1, 2, 3, 4, 6, 8, 10}
    for inst in grid:
        if not inst.exact:
            ref = suite.reference(inst)
            assert ref.kind == "published" and ref.cost > 0 and "arXiv" in ref.source
    # Published costs rise with L and p within each demand (a transcription check).
    for (demand, p), by_lead in suite.PUBLISHED.items():
        costs = [by_lead[lt] for lt in (6, 8, 10)]
        assert costs == sorted(costs), (demand, p)
    for lt in (6, 8, 10):
        for demand in suite.DEMANDS:
            col = [suite.PUBLISHED[(demand, p)][lt] for p in suite.PENALTIES]
            assert col == sorted(col)


def test_exact_reference_is_the_value_iteration():
    inst = suite.instance("geometric", 9.0, 1)
    ref = suite.reference(inst)
    opt = lost_sales_optimum(1, 9.0, demand="geometric")
    assert ref.kind == "exact" and ref.cost == pytest.approx(opt.average_cost)
    assert ref.bracket <= 1e-6 and ref.states == opt.num_states


def test_geometric_instances_simulate_geometric_demand():
    env, params = suite.instance("geometric", 4.0, 2).make(3)
    cdf = np.asarray(params.demand_cdf[0], np.float64)
    ks = np.arange(cdf.size - 1)
    # P(d <= k) = 1 - q^(k + 1), q = 5/6 (float32 table).
    np.testing.assert_allclose(cdf[:-1], 1 - (5 / 6) ** (ks + 1), atol=1e-6)
    _, pois = suite.instance("poisson", 4.0, 2).make(3)
    np.testing.assert_allclose(np.asarray(pois.demand_cdf[0, :10]),
                               stats.poisson.cdf(np.arange(10), 5.0), atol=1e-6)


def test_exact_heuristics_and_policy_cost():
    inst = suite.instance("poisson", 9.0, 2)
    bs = suite.tune_base_stock(inst)
    cp = suite.tune_capped(inst)
    assert bs.exact and cp.exact and bs.params == {"level": 19}
    assert round(bs.cost, 4) == 6.3163 and cp.cost < bs.cost
    res = suite.policy_cost_on(inst, bs.policy, capped=cp)
    assert res["exact"] and res["cost"] == pytest.approx(bs.cost, abs=2e-6)
    assert res["gap_to_capped_pct"] == pytest.approx(100 * (bs.cost / cp.cost - 1), abs=1e-4)


def test_simulated_path_uses_common_random_numbers():
    inst = suite.instance("poisson", 4.0, 6)
    cp = suite.tune_capped(inst, jax.random.key(0), TINY, start=(34, 5))
    assert not cp.exact and cp.params["cap"] >= 1
    # The same policy twice on the same draws: a zero gap with zero SE.
    out = suite.crn_costs(inst, {"a": cp.policy, "b": cp.policy}, jax.random.key(1), TINY)
    assert out["b"]["gap_pct"] == 0.0 and out["b"]["gap_se_pct"] == 0.0
    assert out["a"]["row_days"] == TINY.eval_rows * TINY.eval_days
    # Stopping rule: an unreachable SE target runs every batch; a loose one stops at one.
    strict = suite.SimSettings(**(TINY.__dict__ | {"target_se": 1e-12, "max_batches": 2}))
    bs = orpr_jax.policies.base_stock(33.0)
    out = suite.crn_costs(inst, {"capped": cp.policy, "bs": bs}, jax.random.key(1), strict)
    assert out["bs"]["row_days"] == 2 * TINY.eval_rows * TINY.eval_days
    res = suite.policy_cost_on(inst, bs, capped=cp, settings=TINY)
    assert not res["exact"] and res["gap_se_pct"] > 0 and res["cost_se"] > 0


@pytest.mark.parametrize(("args", "field"), [
    (("poisson", 9.0, 5), "lead_time"),
    (("poisson", 9.0, 12), "lead_time"),
    (("poisson", 9.0, 0), "lead_time"),
    (("poisson", 10.0, 2), "lost_sales_cost"),
    (("poisson", True, 2), "lost_sales_cost"),
    (("negbin", 9.0, 2), "demand"),
])
def test_instances_outside_the_suite_are_named(args, field):
    with pytest.raises(ValueError, match=field):
        suite.instance(*args)


def test_policy_leaving_the_space_is_named_through_the_suite():
    inst = suite.instance("poisson", 9.0, 1)
    cp = suite.tune_capped(inst)
    with pytest.raises(ValueError, match="truncated space"):
        suite.policy_cost_on(inst, orpr_jax.policies.base_stock(60.0), capped=cp)


def test_tuning_start_is_checked():
    env, params = suite.instance("poisson", 4.0, 6).make(4)
    from orpr_jax.policies.capped import tune_capped_base_stock
    with pytest.raises(ValueError, match="start"):
        tune_capped_base_stock(env, params, jax.random.key(0), (30, 0))
    with pytest.raises(ValueError, match="window"):
        tune_capped_base_stock(env, params, jax.random.key(0), (30, 5), window=4)
