"""Tuned base-stock and capped base-stock per instance, and policy costs on each instance.

L <= 4: exact (the best level / pair by exact evaluation on the chain, and
:func:`orpr_jax.exact.policy_cost` for any policy). L >= 6: simulation with common random
numbers (CRN): tuning on one set of draws, then an evaluation on fresh draws, run in
batches until the standard error of each policy's gap to capped base-stock (paired by row
on the same draws) is at most ``target_se`` of the capped cost.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from orpr_jax.exact import best_base_stock, best_capped_base_stock, policy_cost, position_bound
from orpr_jax.policies.capped import capped_base_stock, tune_capped_base_stock
from orpr_jax.policies.heuristics import base_stock
from orpr_jax.policies.tuning import grid_search
from orpr_jax.sim.rollout import evaluate_sums
from orpr_jax.suite.instances import Instance


@dataclasses.dataclass(frozen=True)
class SimSettings:
    """Simulation budget of the instances with L >= 6.

    Attributes:
        tune_rows: rows per candidate while tuning.
        tune_days: days per candidate while tuning (after ``warmup_days``).
        eval_rows: rows per evaluation batch.
        eval_days: days per evaluation batch (after ``warmup_days``).
        warmup_days: leading days left out (the simulator starts at round(mu (L + 1)) on
            hand, nothing on order).
        target_se: stop when the SE of every gap to capped base-stock is at most this
            share of the capped cost (0.0005 = 0.05%).
        max_batches: limit on evaluation batches (the SE reached is reported).
    """

    tune_rows: int = 500
    tune_days: int = 2_000
    eval_rows: int = 2_000
    eval_days: int = 5_000
    warmup_days: int = 200
    target_se: float = 0.0005
    max_batches: int = 8


@dataclasses.dataclass(frozen=True)
class Tuned:
    """A tuned heuristic on one instance.

    Attributes:
        policy: the simulator policy (``policy(obs, key) -> orders``).
        params: its parameters (``{"level": S}`` or ``{"level": S, "cap": r}``).
        cost: its cost: exact (L <= 4), or the tuning run's mean (L >= 6, biased low by
            the selection; :func:`crn_costs` gives the unbiased one).
        exact: True when ``cost`` is exact.
        evaluated: candidates evaluated.
        seconds: tuning time.
    """

    policy: object
    params: dict
    cost: float
    exact: bool
    evaluated: int
    seconds: float


def tune_base_stock(inst: Instance, key: jax.Array | None = None,
                    settings: SimSettings | None = None) -> Tuned:
    """The best base-stock level: exact for L <= 4, by CRN simulation for L >= 6.

    The simulated search evaluates a window of 9 levels on the same draws and slides it
    until its cheapest level is inside it (not at an edge).
    """
    start = time.perf_counter()
    if inst.exact:
        res = best_base_stock(inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                              inst.holding_cost, demand=inst.demand)
        return Tuned(base_stock(float(res.level)), {"level": res.level}, res.average_cost,
                     True, len(res.costs), time.perf_counter() - start)
    s = settings or SimSettings()
    key = jax.random.key(0) if key is None else key
    env, params = inst.make(s.tune_rows)
    days = s.tune_days + s.warmup_days
    centre = position_bound(inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                            inst.holding_cost, inst.demand) - 2
    costs: dict[int, float] = {}
    for _ in range(20):
        grid = np.arange(centre - 4, centre + 5, dtype=np.float32)
        _, rows = grid_search(env, params, base_stock, grid, key, days, s.warmup_days,
                              per_row=False)
        per_day = np.asarray(rows, np.float64).mean(axis=1) / s.tune_days
        costs.update({int(g): float(c) for g, c in zip(grid, per_day, strict=True)})
        best = int(grid[int(np.argmin(per_day))])
        if abs(best - centre) < 4:
            break
        centre = best
    return Tuned(base_stock(float(best)), {"level": best}, costs[best], False, len(costs),
                 time.perf_counter() - start)


def tune_capped(inst: Instance, key: jax.Array | None = None,
                settings: SimSettings | None = None, start: tuple[int, int] | None = None
                ) -> Tuned:
    """The best capped base-stock (S, r): exact for L <= 4, by CRN simulation for L >= 6.

    The simulated search (:func:`orpr_jax.policies.capped.tune_capped_base_stock`) starts
    from ``start`` (default: Morton's bound and ``r = ceil(1.5 mu)``).
    """
    t0 = time.perf_counter()
    if inst.exact:
        res = best_capped_base_stock(inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                                     inst.holding_cost, demand=inst.demand)
        return Tuned(capped_base_stock(float(res.level), float(res.cap)),
                     {"level": res.level, "cap": res.cap}, res.average_cost, True,
                     len(res.costs), time.perf_counter() - t0)
    s = settings or SimSettings()
    key = jax.random.key(0) if key is None else key
    env, params = inst.make(s.tune_rows)
    if start is None:
        bound = position_bound(inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                               inst.holding_cost, inst.demand)
        start = (bound, int(np.ceil(1.5 * inst.demand_mean)))
    (level, cap), costs = tune_capped_base_stock(env, params, key, start,
                                                 s.tune_days + s.warmup_days, s.warmup_days)
    return Tuned(capped_base_stock(float(level), float(cap)), {"level": level, "cap": cap},
                 costs[(level, cap)], False, len(costs), time.perf_counter() - t0)


def _row_costs(env, params, policy, key, s: SimSettings) -> np.ndarray:
    sums = evaluate_sums(env, params, policy, key, s.eval_days + s.warmup_days, s.warmup_days)
    total = sums.holding_cost + sums.penalty_cost + sums.ordering_cost + sums.purchase_cost
    return np.asarray(total / sums.days, np.float64)


def crn_costs(inst: Instance, policies: dict[str, object], key: jax.Array,
              settings: SimSettings | None = None) -> dict[str, dict]:
    """Simulated cost of each policy on the same draws, with gaps to the first one.

    Batches of ``eval_rows x eval_days`` (each batch its own key, shared by every policy)
    run until the SE of every gap to the first policy (the baseline, capped base-stock in
    the suite) is at most ``target_se`` of the baseline's cost, or ``max_batches``.

    Returns:
        Per policy name: ``cost`` and ``cost_se`` (per day, SE over independent rows),
        ``gap_pct`` and ``gap_se_pct`` (to the baseline, paired by row), ``row_days``.
    """
    s = settings or SimSettings()
    env, params = inst.make(s.eval_rows)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in policies}
    names = list(policies)
    for b in range(s.max_batches):
        batch_key = jax.random.fold_in(key, b)
        for name in names:
            rows[name].append(_row_costs(env, params, policies[name], batch_key, s))
        base = np.concatenate(rows[names[0]])
        ses = [(np.concatenate(rows[n]) - base).std(ddof=1) / np.sqrt(base.size)
               for n in names[1:]]
        if all(se <= s.target_se * base.mean() for se in ses):
            break
    base = np.concatenate(rows[names[0]])
    out = {}
    for name in names:
        r = np.concatenate(rows[name])
        diff = r - base
        out[name] = {
            "cost": float(r.mean()),
            "cost_se": float(r.std(ddof=1) / np.sqrt(r.size)),
            "gap_pct": float(100 * diff.mean() / base.mean()),
            "gap_se_pct": float(100 * diff.std(ddof=1) / np.sqrt(r.size) / base.mean()),
            "row_days": int(r.size * s.eval_days),
        }
    return out


def policy_cost_on(inst: Instance, policy, key: jax.Array | None = None,
                   capped: Tuned | None = None, settings: SimSettings | None = None) -> dict:
    """The cost of any stationary policy on one instance.

    L <= 4: exact (:func:`orpr_jax.exact.policy_cost`), with its gap to the exact best
    capped base-stock. L >= 6: simulated with CRN against the tuned capped base-stock
    (``capped``, tuned here if None) until the gap's SE is at most ``target_se``.

    Returns:
        ``cost``, ``exact``, and ``gap_to_capped_pct`` with ``gap_se_pct`` (0 when exact)
        and, when simulated, ``cost_se`` and ``row_days``.

    Raises:
        ValueError: from :func:`orpr_jax.exact.policy_cost` (a reachable order that leaves
            the truncated space, a non-Markov policy, a space too large).
    """
    key = jax.random.key(0) if key is None else key
    tune_key, eval_key = jax.random.split(key)
    capped = capped or tune_capped(inst, tune_key, settings)
    if inst.exact:
        res = policy_cost(policy, inst.lead_time, inst.lost_sales_cost, inst.demand_mean,
                          inst.holding_cost, demand=inst.demand)
        return {"cost": res.average_cost, "exact": True,
                "gap_to_capped_pct": 100 * (res.average_cost / capped.cost - 1),
                "gap_se_pct": 0.0}
    sims = crn_costs(inst, {"capped": capped.policy, "policy": policy}, eval_key, settings)
    p = sims["policy"]
    return {"cost": p["cost"], "exact": False, "cost_se": p["cost_se"],
            "gap_to_capped_pct": p["gap_pct"], "gap_se_pct": p["gap_se_pct"],
            "row_days": p["row_days"]}
