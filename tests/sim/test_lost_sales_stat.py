"""Statistical check: the JAX env against an independent NumPy lost-sales simulation.

Classic lost-sales model, Poisson(5) demand, lead time 2, h = 1, p = 9, base-stock
level 17. The JAX side samples demand from the inverse-CDF table, the reference draws its
own Poisson demand with a NumPy generator; the average cost per row-day must agree
within 4 standard errors (rows are independent replications, so the SE comes from the
per-row averages of both runs).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from orpr_jax.policies.heuristics import base_stock
from orpr_jax.sim.demand import poisson_cdf_table
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.params import make_params
from orpr_jax.sim.rollout import evaluate
from orpr_jax.sim.types import SimConfig
from tests.reference.numpy_sim import simulate_lost_sales_poisson

ROWS, DAYS, WARMUP = 2000, 300, 50
MEAN, LEAD, H, P = 5.0, 2, 1.0, 9.0


def _jax_costs(level: float, seed: int) -> np.ndarray:
    config = SimConfig(
        num_rows=ROWS,
        max_lead_time=LEAD,
        history_length=2,
        promo_lookahead=1,
        lead_time_mode="shared",
        demand_mode="table",
    )
    params = make_params(
        config,
        lead_time=LEAD,
        holding_cost=H,
        penalty_cost=P,
        demand_cdf=poisson_cdf_table(MEAN),
    )
    metrics = evaluate(
        InventoryEnv(config),
        params,
        base_stock(level),
        jax.random.key(seed),
        num_days=DAYS,
        warmup_days=WARMUP,
    )
    per_row = np.asarray(metrics["per_row"]["cost_per_day"], np.float64)
    assert float(metrics["cost_per_row_day"]) == pytest.approx(per_row.mean(), rel=1e-4)
    return per_row


@pytest.mark.slow
def test_lost_sales_base_stock_cost_matches_numpy_reference():
    # Level 17 is near the optimum (cost ~6.6 per row-day); level 12 is short of stock
    # (~12.7, mostly lost sales). The second level reuses the compiled evaluation.
    means = {}
    for seed, level in enumerate((17.0, 12.0)):
        jax_rows = _jax_costs(level, seed=seed)
        ref = simulate_lost_sales_poisson(
            level, MEAN, LEAD, H, P, days=DAYS, rows=ROWS, seed=1000 + seed, warmup=WARMUP
        )
        ref_rows = ref["per_row"]
        se = np.sqrt(jax_rows.var(ddof=1) / ROWS + ref_rows.var(ddof=1) / ROWS)
        diff = jax_rows.mean() - ref_rows.mean()
        assert abs(diff) < 4 * se, (level, jax_rows.mean(), ref_rows.mean(), se)
        means[level] = (ref_rows.mean(), se)
    # The check has power: the two levels differ by far more than their standard errors.
    (m17, se17), (m12, se12) = means[17.0], means[12.0]
    assert abs(m12 - m17) > 20 * np.hypot(se17, se12)
