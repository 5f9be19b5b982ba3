"""Exact long-run cost of capped base-stock policies and the best (S, r) by local search.

The capped base-stock policy (Xin 2021) orders ``min((S - inventory position)^+, r)``:
order up to S, but never more than r in one day. Under it every outstanding order is at
most r and the inventory position after ordering at most ``max(S, position)``, so the
chain lives on the states with tails in ``[0, r]^(L-1)`` and position <= S' for any box
``S' >= S`` (states above S order nothing and are transient): no truncation. The cost of
one (S, r) is found by relative value iteration with the action table fixed
(:func:`orpr_jax.exact.evaluation.evaluate_table`); the same rule in the simulator is
:func:`orpr_jax.policies.capped_base_stock`.

References:
    Xin, L. (2021). Understanding the performance of capped base-stock policies in
    lost-sales inventory models. Operations Research 69(1), 61-70.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from orpr_jax.exact.chain import (
    _build_space,
    _check_demand,
    _check_size,
    _count_tails,
    _Space,
    position_bound,
)
from orpr_jax.exact.evaluation import evaluate_table
from orpr_jax.exact.validation import _validate


@dataclasses.dataclass(frozen=True)
class CappedResult:
    """Exact cost of capped base-stock policies (host-side numbers).

    Attributes:
        lead_time, lost_sales_cost, demand_mean, holding_cost, demand: the instance.
        level: S of the (best) policy.
        cap: r of the (best) policy.
        average_cost: its long-run average cost per day (midpoint of the bounds).
        lower_bound, upper_bound: Odoni's bounds on that cost.
        costs: every ``(S, r)`` evaluated and its cost.
        converged: every evaluation reached ``tol``.
        seconds: wall time.
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    demand: str
    level: int
    cap: int
    average_cost: float
    lower_bound: float
    upper_bound: float
    costs: dict[tuple[int, int], float]
    converged: bool
    seconds: float


def _capped_actions(space: _Space, level: int, cap: int) -> np.ndarray:
    """``[N, S' + 1]`` orders ``min((level - position)^+, cap)`` on the space's states."""
    n = space.max_on_hand + 1
    position = space.tail_sum[:, None] + np.arange(n)[None, :]
    return np.clip(level - position, 0, cap).astype(np.int64)


class _Evaluator:
    """Caches the spaces (caps rounded up to a multiple of 4, boxes to one of 8, so a few
    compiled programs serve every pair and instance) and warm-starts RVI on each."""

    def __init__(self, lead_time, p, mu, h, demand, tol, max_iters):
        self.args = (lead_time, p, mu, h, demand)
        self.tol, self.max_iters = tol, max_iters
        self.spaces: dict[tuple[int, int], _Space] = {}
        self.warm: dict[tuple[int, int], object] = {}
        self.results: dict[tuple[int, int], tuple[float, float]] = {}

    def space(self, level: int, cap: int) -> tuple[tuple[int, int], _Space]:
        lead_time, p, mu, h, demand = self.args
        # States with outstanding orders above the cap, or positions above the level,
        # are transient under the policy: a larger space gives the same cost.
        key = (4 * -(-cap // 4), 8 * -(-(level + 3) // 8))
        if key not in self.spaces:
            a_box, box = key
            _check_size(_count_tails(lead_time, box, a_box), 1, box + 1, lead_time)
            self.spaces[key] = _build_space(lead_time, box, a_box, mu, h, p, demand)
            self.warm[key] = None
        return key, self.spaces[key]

    def __call__(self, level: int, cap: int) -> float:
        if (level, cap) not in self.results:
            key, space = self.space(level, cap)
            # Every state of the box is evaluated (the policy is unichain on it), so the
            # mask and the compiled program are the same for every pair on this space.
            lo, hi, _, v, _ = evaluate_table(space, _capped_actions(space, level, cap), (0, 0),
                                             self.tol, self.max_iters, reachable_only=False,
                                             v0=self.warm[key])
            self.warm[key] = v
            self.results[(level, cap)] = (lo, hi)
        lo, hi = self.results[(level, cap)]
        return 0.5 * (lo + hi)


def _result(ev: _Evaluator, level: int, cap: int, start: float) -> CappedResult:
    lead_time, p, mu, h, demand = ev.args
    lo, hi = ev.results[(level, cap)]
    return CappedResult(
        lead_time=lead_time, lost_sales_cost=p, demand_mean=mu, holding_cost=h,
        demand=demand, level=level, cap=cap, average_cost=0.5 * (lo + hi), lower_bound=lo,
        upper_bound=hi, costs={k: 0.5 * (a + b) for k, (a, b) in sorted(ev.results.items())},
        converged=all(b - a <= ev.tol for a, b in ev.results.values()),
        seconds=time.perf_counter() - start)


def _check_policy_ints(level, cap) -> None:
    for name, value in (("level", level), ("cap", cap)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= 1")


def capped_base_stock_cost(
    lead_time: int, lost_sales_cost: float, level: int, cap: int, demand_mean: float = 5.0,
    holding_cost: float = 1.0, *, demand: str = "poisson", tol: float = 1e-6,
    max_iters: int = 10_000,
) -> CappedResult:
    """Exact long-run average cost of the capped base-stock policy ``(level, cap)``.

    Raises:
        ValueError: naming the first invalid argument, or a space over ``MAX_ENTRIES``.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    _check_demand(demand)
    _check_policy_ints(level, cap)
    ev = _Evaluator(lead_time, p, mu, h, demand, tol, max_iters)
    ev(int(level), int(cap))
    return _result(ev, int(level), int(cap), start)


def _walk(cost, start: int, lowest: int) -> int:
    """Best integer near ``start``: walk down, then up, until two misses in a row."""
    best = start
    for step in (-1, 1):
        value, misses = start, 0
        while misses < 2 and value + step >= lowest:
            value += step
            if cost(value) < cost(best):
                best, misses = value, 0
            else:
                misses += 1
    return best


def best_capped_base_stock(
    lead_time: int, lost_sales_cost: float, demand_mean: float = 5.0,
    holding_cost: float = 1.0, *, demand: str = "poisson", tol: float = 1e-6,
    max_iters: int = 10_000,
) -> CappedResult:
    """The best capped base-stock policy (S, r) and its exact cost, by local search.

    For each cap r the best level S is found by a walk (down, then up, until two levels in
    a row are no better), starting from the best level of the previous cap; the caps are
    walked the same way from ``r = ceil(1.5 mu)``. The cost is unimodal along both axes
    in practice (as for base stock); every pair tried is in ``costs``.

    Raises:
        ValueError: naming the first invalid argument, or a space over ``MAX_ENTRIES``.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    _check_demand(demand)
    ev = _Evaluator(lead_time, p, mu, h, demand, tol, max_iters)
    levels: dict[int, int] = {}
    first_level = max(position_bound(lead_time, p, mu, h, demand), 1)

    def best_level(cap: int) -> int:
        if cap not in levels:
            near = [levels[c] for c in sorted(levels, key=lambda c: abs(c - cap))]
            levels[cap] = _walk(lambda s: ev(s, cap), near[0] if near else first_level, 1)
        return levels[cap]

    def cap_cost(cap: int) -> float:
        return ev(best_level(cap), cap)

    cap = _walk(cap_cost, int(np.ceil(1.5 * mu)), 1)
    return _result(ev, best_level(cap), cap, start)
