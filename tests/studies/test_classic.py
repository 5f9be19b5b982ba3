"""The classic lost-sales comparison: one tiny case end to end and its table."""

import jax
import numpy as np

from orpr_jax.studies.classic import ClassicSettings, classic_case, markdown_table
from orpr_jax.exact import lost_sales_optimum


def test_tiny_case_reports_gaps_to_the_optimum():
    s = ClassicSettings(train_rows=16, updates=(("pathwise", 2), ("ppo", 2), ("rloo", 2)),
                        num_steps=8, eval_rows=64, eval_days=100, warmup_days=20)
    case = classic_case(1, 4.0, jax.random.key(0), s)
    assert case["optimum"] == lost_sales_optimum(1, 4.0).average_cost
    assert abs(case["optimum_simulated"] / case["optimum"] - 1) < 0.05
    assert case["best_base_stock"]["gap_pct"] > 0
    for alg in ("pathwise", "ppo", "rloo"):
        r = case["algorithms"][alg]
        assert np.isfinite(r["cost"]) and r["gap_se_pct"] > 0
        # Gap and cost agree with each other.
        np.testing.assert_allclose(case["optimum_simulated"] * (1 + r["gap_pct"] / 100),
                                   r["cost"], rtol=1e-6)
    table = markdown_table([case])
    assert table.splitlines()[0] == "| L | p | optimum | best base-stock | pathwise | ppo | rloo |"
    assert "| 1 | 4 | 4.0407 |" in table
