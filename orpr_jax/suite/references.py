"""The reference cost of each instance: the exact optimum (L <= 4) or the best published.

For L <= 4 the reference is the optimum by relative value iteration on the exact chain
(:func:`orpr_jax.exact.lost_sales_optimum`, Poisson or geometric). For L >= 6 the state
space is too large for it (Poisson, p = 4, L = 6 already has about 10^7 states before
actions), and the reference is the lowest published cost, below.
"""

from __future__ import annotations

import dataclasses
import time

from orpr_jax.exact import lost_sales_optimum
from orpr_jax.suite.instances import Instance

#: Where the published references come from.
PUBLISHED_SOURCE = (
    "lowest of Deep Controlled Learning (Temizoz, Imdahl, Dijkman, Lamghari-Idrissi and "
    "van Jaarsveld, Deep controlled learning for inventory control, European Journal of "
    "Operational Research 2025, arXiv:2011.15122; policies evaluated with 20,000 "
    "samples) and GC-LSN (arXiv:2411.00515); simulated costs, about +-0.1%"
)

#: Best published long-run average cost, mean-5 demand, h = 1: (demand, p) -> {L: cost}.
#: Source: :data:`PUBLISHED_SOURCE`.
PUBLISHED: dict[tuple[str, float], dict[int, float]] = {
    ("poisson", 4.0): {6: 4.872, 8: 4.949, 10: 4.992},
    ("poisson", 9.0): {6: 7.229, 8: 7.480, 10: 7.646},
    ("poisson", 19.0): {6: 9.648, 8: 10.168, 10: 10.549},
    ("poisson", 39.0): {6: 11.948, 8: 12.803, 10: 13.469},
    ("geometric", 4.0): {6: 10.751, 8: 10.833, 10: 10.870},
    ("geometric", 9.0): {6: 17.133, 8: 17.478, 10: 17.705},
    ("geometric", 19.0): {6: 24.200, 8: 25.073, 10: 25.712},
    ("geometric", 39.0): {6: 31.458, 8: 33.025, 10: 34.263},
}

#: Capped base-stock costs in the same source (Poisson, p = 4): L -> cost. A check on
#: :func:`orpr_jax.exact.best_capped_base_stock` (L <= 4, exact) and the simulated tuning
#: of :mod:`orpr_jax.suite.heuristics` (L >= 6).
PUBLISHED_CAPPED_POISSON_P4: dict[int, float] = {2: 4.406, 4: 4.800, 6: 5.037, 8: 5.193,
                                                 10: 5.269}

#: Relative noise of the published (simulated) costs.
PUBLISHED_NOISE = 0.001


@dataclasses.dataclass(frozen=True)
class Reference:
    """The reference of one instance.

    Attributes:
        cost: long-run average cost per day.
        kind: ``"exact"`` (value iteration) or ``"published"``.
        source: where it comes from.
        bracket: for ``"exact"`` the width of Odoni's bracket on the optimum; for
            ``"published"`` the noise of the simulated figure (``PUBLISHED_NOISE * cost``).
        states: states of the truncated space (exact only; 0 otherwise).
        seconds: time to compute it (0 for a published figure).
    """

    cost: float
    kind: str
    source: str
    bracket: float
    states: int
    seconds: float


def reference(inst: Instance) -> Reference:
    """The reference cost of ``inst`` (solves the value iteration when L <= 4).

    Raises:
        ValueError: if the optimum did not converge or its position cap binds (the
            truncation would not be exact).
    """
    if not inst.exact:
        cost = PUBLISHED[(inst.demand, inst.lost_sales_cost)][inst.lead_time]
        return Reference(cost, "published", PUBLISHED_SOURCE, PUBLISHED_NOISE * cost, 0, 0.0)
    start = time.perf_counter()
    opt = lost_sales_optimum(inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                             inst.holding_cost, demand=inst.demand)
    if not opt.converged or opt.orders_at_position_cap or opt.orders_at_max_order:
        raise ValueError(f"the value iteration of {inst.name} is not exact: converged="
                         f"{opt.converged}, orders at the position cap "
                         f"{opt.orders_at_position_cap}, at the order cap "
                         f"{opt.orders_at_max_order}")
    return Reference(opt.average_cost, "exact",
                     "relative value iteration on the exact chain (orpr_jax.exact)",
                     opt.span, opt.num_states, time.perf_counter() - start)
