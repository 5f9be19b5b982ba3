"""Per-row tuning of a policy's parameters by a vmapped grid search in the simulator."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.rollout import Policy, evaluate_sums
from orpr_jax.sim.types import SimParams


def grid_search(
    env: InventoryEnv,
    params: SimParams,
    make_policy: Callable[[jax.Array], Policy],
    grid: jax.Array,
    key: jax.Array,
    num_days: int,
    warmup_days: int = 0,
    *,
    per_row: bool = True,
    batch_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Evaluates every candidate in ``grid`` and keeps the cheapest, per row or overall.

    All candidates see the same demand and lead-time draws (common random numbers), so
    differences between them are not sampling noise. Rows are independent unless they
    share warehouse capacity; with capacity on, per-row selection is a heuristic.

    Args:
        env: the environment.
        params: traced parameters.
        make_policy: maps one candidate (``grid[g]``) to a policy, e.g.
            ``orpr_jax.policies.base_stock``.
        grid: ``[G]`` candidates shared by all rows, or ``[G, R]`` per-row candidates.
        key: PRNG key (shared by all candidates).
        num_days: days per evaluation, warm-up included.
        warmup_days: leading days excluded from the cost.
        per_row: pick the best candidate for each row (else one for all rows).
        batch_size: candidates evaluated at once (``jax.lax.map`` batching); default all.

    Returns:
        ``(best, costs)``: ``best`` is ``[R]`` (per_row) or the chosen ``grid[g]``, and
        ``costs`` is ``[G, R]`` total cost per candidate and row.

    Raises:
        ValueError: an empty grid or one whose second axis is not the number of rows.
    """
    grid = jnp.asarray(grid, jnp.float32)
    r = env.num_rows
    if grid.ndim not in (1, 2) or grid.shape[0] < 1 or (grid.ndim == 2 and grid.shape[1] != r):
        raise ValueError(
            f"grid has shape {grid.shape}; expected [G] or [G, num_rows={r}] with G >= 1"
        )

    def cost(candidate):
        sums = evaluate_sums(env, params, make_policy(candidate), key, num_days, warmup_days)
        return sums.holding_cost + sums.penalty_cost + sums.ordering_cost + sums.purchase_cost

    costs = jax.lax.map(cost, grid, batch_size=batch_size)
    full = jnp.broadcast_to(grid.reshape(grid.shape[0], -1), costs.shape)
    if per_row:
        best = jnp.argmin(costs, axis=0)
        return jnp.take_along_axis(full, best[None, :], axis=0)[0], costs
    g = jnp.argmin(costs.sum(axis=1))
    return grid[g], costs
