"""Results of the exact solvers: :class:`OptimalResult` and :class:`BaseStockResult`."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from orpr_jax.exact.policy import OptimalPolicy


@dataclasses.dataclass(frozen=True)
class OptimalResult:
    """The optimum of one lost-sales instance (host-side NumPy and Python numbers).

    Attributes:
        lead_time: L (days).
        lost_sales_cost: p per lost unit.
        demand_mean: mean demand mu per day.
        holding_cost: h per unit of end-of-day stock.
        average_cost: long-run average cost per day, the midpoint of the bounds.
        lower_bound: ``min_s (T v - v)(s)`` at the last iteration, <= the optimal gain.
        upper_bound: ``max_s (T v - v)(s)``, >= the optimal gain and >= the average cost
            of ``order_table`` (the table is greedy for that same v).
        span: ``upper_bound - lower_bound`` (<= ``tol`` when converged).
        order_table: ``[S + 1] + [A + 1] * (L - 1)`` int32 optimal order at state
            ``(x, w_1, ..., w_{L-1})``; 0 where ``x + sum(w) > S`` (outside the truncated
            space, where ordering nothing is optimal by the bound S).
        relative_values: same shape, float64 relative value v (0 at the empty state,
            NaN outside the truncated space).
        max_on_hand: S, the cap on the inventory position after ordering (hence on stock
            on hand).
        max_order: A, the cap on one order (S unless set smaller).
        iterations: RVI iterations used (Bellman updates, the final greedy one included).
        converged: ``span <= tol``.
        largest_order: the largest entry of ``order_table``.
        orders_at_max_order: states whose optimal order equals A while the position cap
            would allow more (0 means the cap on one order never binds).
        orders_at_position_cap: states whose optimal order fills the inventory position
            to exactly S (a positive order); 0 means the cap S never binds. Ties break
            towards the smaller order, so these states strictly prefer S to every
            smaller position.
        seconds: wall time of the solve (compilation included).
        demand: ``"poisson"`` or ``"geometric"``.
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    average_cost: float
    lower_bound: float
    upper_bound: float
    span: float
    order_table: np.ndarray
    relative_values: np.ndarray
    max_on_hand: int
    max_order: int
    iterations: int
    converged: bool
    largest_order: int
    orders_at_max_order: int
    orders_at_position_cap: int
    seconds: float
    demand: str = "poisson"

    @property
    def num_states(self) -> int:
        """Number of states in the truncated space."""
        return int(np.isfinite(self.relative_values).sum())

    def policy(self) -> OptimalPolicy:
        """The :class:`OptimalPolicy` that plays ``order_table`` in the simulator."""
        return OptimalPolicy(
            table=jnp.asarray(self.order_table, jnp.float32), lead_time=self.lead_time
        )


@dataclasses.dataclass(frozen=True)
class BaseStockResult:
    """Exact long-run cost of base-stock levels (host-side numbers).

    Attributes:
        lead_time, lost_sales_cost, demand_mean, holding_cost: the instance.
        level: the base-stock level (order up to ``level`` in inventory position); for
            :func:`best_base_stock` the best one.
        average_cost: long-run average cost per day of ``level`` (midpoint of the bounds).
        lower_bound: lower bound on that cost from the last iteration.
        upper_bound: upper bound on that cost.
        costs: every level evaluated and its average cost.
        iterations: iterations summed over the levels evaluated.
        converged: every evaluation reached ``tol``.
        seconds: wall time (compilation included).
        demand: ``"poisson"`` or ``"geometric"``.
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    level: int
    average_cost: float
    lower_bound: float
    upper_bound: float
    costs: dict[int, float]
    iterations: int
    converged: bool
    seconds: float
    demand: str = "poisson"
