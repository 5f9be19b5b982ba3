"""Exact long-run cost of base-stock policies on the lost-sales chain, and the best level.

Policy evaluation by relative value iteration (:func:`orpr_jax.exact.rvi._solve_eval`)
on the states a base-stock policy can reach, in float64 under ``jax.enable_x64``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.exact.chain import (
    _build_space,
    _check_demand,
    _check_size,
    _count_tails,
    _device_arrays,
    _Space,
    position_bound,
)
from orpr_jax.exact.results import BaseStockResult
from orpr_jax.exact.rvi import _solve_eval
from orpr_jax.exact.validation import _validate


def base_stock_cost(
    lead_time: int,
    lost_sales_cost: float,
    level: int,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    demand: str = "poisson",
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> BaseStockResult:
    """Exact long-run average cost of the base-stock policy with ``level``.

    Policy evaluation (RVI with the action fixed to ``max(0, level - x - sum(w))``) on the
    states with inventory position <= ``level``, which the policy never leaves once its
    first order is placed, so the chain is exact (no truncation; demand lumped as in
    :func:`lost_sales_optimum`). Matches ``orpr_jax.policies.base_stock(level)`` in the
    simulator.

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        level: order-up-to level of the inventory position, an integer >= 1.
        demand_mean: mean demand mu > 0.
        holding_cost: h > 0.
        demand: ``"poisson"`` or ``"geometric"`` (see :func:`lost_sales_optimum`).
        tol: stopping span (> 0).
        max_iters: iteration limit (>= 1).

    Returns:
        A :class:`BaseStockResult` with ``costs == {level: average_cost}``.

    Raises:
        ValueError: naming the first invalid argument.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 1:
        raise ValueError(f"level={level!r} is not allowed; expected an integer >= 1")
    space = _base_stock_space(lead_time, int(level), mu, h, p, _check_demand(demand))
    lo, hi, iters, _ = _evaluate_base_stock(space, int(level), tol, max_iters)
    cost = 0.5 * (lo + hi)
    return BaseStockResult(
        lead_time=lead_time,
        lost_sales_cost=p,
        demand_mean=mu,
        holding_cost=h,
        level=int(level),
        average_cost=cost,
        lower_bound=lo,
        upper_bound=hi,
        costs={int(level): cost},
        iterations=iters,
        converged=hi - lo <= tol,
        seconds=time.perf_counter() - start,
        demand=demand,
    )


def _evaluate_base_stock(space: _Space, level: int, tol: float, max_iters: int, v0=None):
    """``(lower, upper, iterations, v)`` of base stock ``level`` on a space with S >= level.

    ``v0`` (the relative values of a nearby level on the same space) warm-starts RVI.
    """
    n = space.max_on_hand + 1
    t, x = np.nonzero((np.arange(n)[None, :] + space.tail_sum[:, None]) <= space.max_on_hand)
    with jax.enable_x64(True):
        if v0 is None:
            v0 = jnp.zeros((space.tails.shape[0], n), jnp.float64)
        out = _solve_eval(*_device_arrays(space), (jnp.asarray(t), jnp.asarray(x)), level,
                          v0, tol, max_iters, lead_time=space.lead_time)
        out = jax.block_until_ready(out)
        lower, upper, it = jax.device_get((out.lower, out.upper, out.it))
    return float(lower), float(upper), int(it), out.v


def _base_stock_space(lead_time, box, mu, h, p, demand="poisson") -> _Space:
    _check_size(_count_tails(lead_time, box, box), 1, box + 1, lead_time)
    return _build_space(lead_time, box, box, mu, h, p, demand)


def best_base_stock(
    lead_time: int,
    lost_sales_cost: float,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    demand: str = "poisson",
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> BaseStockResult:
    """The best base-stock level and its exact long-run average cost.

    Evaluates levels by :func:`base_stock_cost`, starting at :func:`position_bound` and
    walking down, then up, until two levels in a row are worse than the best so far (the
    cost of a base-stock level is unimodal in practice; the walk stops on a plateau only
    after two non-improvements, so a single flat step does not end it).

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        demand_mean: mean demand mu > 0.
        holding_cost: h > 0.
        demand: ``"poisson"`` or ``"geometric"`` (see :func:`lost_sales_optimum`).
        tol: stopping span per level (> 0).
        max_iters: iteration limit per level (>= 1).

    Returns:
        A :class:`BaseStockResult` of the best level, with every level tried in
        ``costs``.

    Raises:
        ValueError: naming the first invalid argument.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    results: dict[int, tuple[float, float, int]] = {}
    first = max(position_bound(lead_time, p, mu, h, _check_demand(demand)), 1)
    # One space (one compilation) for every level up to first + 3; levels above it (rare:
    # the best level is below the bound in practice) get a larger one.
    spaces = {first + 3: _base_stock_space(lead_time, first + 3, mu, h, p, demand)}
    warm = {}  # box -> relative values of the last level evaluated on it

    def cost(level: int) -> float:
        if level not in results:
            box = max(spaces)
            if level > box:
                box = level + 3
                spaces[box] = _base_stock_space(lead_time, box, mu, h, p, demand)
            lo, hi, it, warm[box] = _evaluate_base_stock(spaces[box], level, tol, max_iters,
                                                         warm.get(box))
            results[level] = (lo, hi, it)
        lo, hi, _ = results[level]
        return 0.5 * (lo + hi)

    best = first
    for step in (-1, 1):
        level, misses = first, 0
        while misses < 2 and level + step >= 1:
            level += step
            if cost(level) < cost(best):
                best, misses = level, 0
            else:
                misses += 1
    lo, hi, _ = results[best]
    return BaseStockResult(
        lead_time=lead_time,
        lost_sales_cost=p,
        demand_mean=mu,
        holding_cost=h,
        level=best,
        average_cost=0.5 * (lo + hi),
        lower_bound=lo,
        upper_bound=hi,
        costs={k: 0.5 * (v[0] + v[1]) for k, v in sorted(results.items())},
        iterations=sum(v[2] for v in results.values()),
        converged=all(v[1] - v[0] <= tol for v in results.values()),
        seconds=time.perf_counter() - start,
        demand=demand,
    )
