"""Capped base-stock (Xin 2021): order up to S, never more than r in one day.

``q = min((S - inventory_position)^+, r)``. :func:`capped_base_stock` builds the policy
(usable with :func:`orpr_jax.evaluate` like any heuristic); :func:`tune_capped_base_stock`
picks (S, r) by simulation with common random numbers (every candidate sees the same
demand draws) and a local search on the integer grid. The exact cost of one pair on the
lost-sales chain is :func:`orpr_jax.exact.capped_base_stock_cost` (L <= 4), and the exact
best pair :func:`orpr_jax.exact.best_capped_base_stock`.

References:
    Xin, L. (2021). Understanding the performance of capped base-stock policies in
    lost-sales inventory models. Operations Research 69(1), 61-70.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.rollout import evaluate_sums
from orpr_jax.sim.types import Observation, SimParams


@struct.dataclass
class CappedBaseStock:
    """Order ``min((level - inventory_position)^+, cap)``.

    Attributes:
        level: ``[]`` or ``[R]`` order-up-to level S of the inventory position (units).
        cap: ``[]`` or ``[R]`` largest order r (units, >= 0).
    """

    level: jax.Array
    cap: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        return jnp.minimum(jnp.maximum(self.level - obs.inventory_position, 0.0), self.cap)


def capped_base_stock(level, cap) -> CappedBaseStock:
    """Capped base-stock policy with level S and cap r (scalars or per-row ``[R]``).

    Raises:
        ValueError: a non-finite value or a negative cap.
    """
    level = jnp.asarray(level, jnp.float32)
    cap = jnp.asarray(cap, jnp.float32)
    if not bool(jnp.all(jnp.isfinite(level))):
        raise ValueError(f"level={level} is not allowed; expected finite units")
    if not bool(jnp.all(jnp.isfinite(cap))) or bool(jnp.any(cap < 0)):
        raise ValueError(f"cap={cap} is not allowed; expected finite units >= 0")
    return CappedBaseStock(level=level, cap=cap)


def pair_costs(env: InventoryEnv, params: SimParams, pairs, key: jax.Array, num_days: int,
               warmup_days: int) -> np.ndarray:
    """``[G, R]`` cost per day of each ``(S, r)`` pair and row, on the same draws.

    Args:
        env: the environment (a lost-sales env of :func:`orpr_jax.make`).
        params: its parameters.
        pairs: ``[G, 2]`` candidates (level, cap).
        key: PRNG key shared by every candidate (common random numbers).
        num_days: days per run, warm-up included.
        warmup_days: leading days left out of the cost.
    """
    pairs = jnp.asarray(pairs, jnp.float32).reshape(-1, 2)

    def cost(pair):
        sums = evaluate_sums(env, params, CappedBaseStock(pair[0], pair[1]), key, num_days,
                             warmup_days)
        total = sums.holding_cost + sums.penalty_cost + sums.ordering_cost + sums.purchase_cost
        return total / sums.days

    return np.asarray(jax.lax.map(cost, pairs), np.float64)


def tune_capped_base_stock(
    env: InventoryEnv,
    params: SimParams,
    key: jax.Array,
    start: tuple[int, int],
    num_days: int = 2_000,
    warmup_days: int = 200,
    *,
    window: int = 9,
    max_moves: int = 20,
) -> tuple[tuple[int, int], dict[tuple[int, int], float]]:
    """The best integer (S, r) by a profile search with common random numbers.

    For a cap r, ``window`` levels around a centre are evaluated at once on the same
    draws; the window slides until its cheapest level is inside it, giving the best S
    for r (its centre is the best S of the nearest cap done). The caps are walked from
    ``start[1]`` down, then up, until two caps in a row are no better (as
    :func:`orpr_jax.exact.best_capped_base_stock` does exactly). S and r trade off (a
    lower cap needs a higher level), so a search over both at once along the grid stalls
    in the wrong valley; the profile does not. With common random numbers the comparison
    of candidates is far more precise than each cost; evaluate the chosen pair again on
    fresh draws for an unbiased cost.

    Args:
        env, params: the environment and its parameters.
        key: PRNG key shared by every candidate.
        start: initial ``(S, r)``, integers with r >= 1.
        num_days: days per run, warm-up included.
        warmup_days: leading days left out.
        window: levels evaluated at once (odd, >= 3).
        max_moves: limit on window moves per cap.

    Returns:
        ``(best, costs)``: the chosen pair and the mean cost per day of every pair tried.

    Raises:
        ValueError: a start with r < 1, a non-integer start, or a bad window.
    """
    s0, r0 = start
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in start) or r0 < 1:
        raise ValueError(f"start={start!r} is not allowed; expected integers (S, r), r >= 1")
    if isinstance(window, bool) or not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise ValueError(f"window={window!r} is not allowed; expected an odd integer >= 3")
    costs: dict[tuple[int, int], float] = {}
    levels: dict[int, int] = {}
    half = window // 2

    def best_level(cap: int) -> int:
        if cap in levels:
            return levels[cap]
        near = sorted(levels, key=lambda c: abs(c - cap))
        centre = levels[near[0]] if near else int(s0)
        for _ in range(max_moves):
            grid = [(max(centre + i, 0), cap) for i in range(-half, half + 1)]
            rows = pair_costs(env, params, np.asarray(grid), key, num_days, warmup_days)
            costs.update({c: float(v.mean()) for c, v in zip(grid, rows, strict=True)})
            best = min(grid, key=lambda c: costs[c])[0]
            if abs(best - centre) < half or best == 0:
                break
            centre = best
        levels[cap] = best
        return best

    def cap_cost(cap: int) -> float:
        return costs[(best_level(cap), cap)]

    best_cap = int(r0)
    for step in (-1, 1):
        cap, misses = int(r0), 0
        while misses < 2 and cap + step >= 1:
            cap += step
            if cap_cost(cap) < cap_cost(best_cap):
                best_cap, misses = cap, 0
            else:
                misses += 1
    return (best_level(best_cap), best_cap), costs
