"""Tuned baselines on a train/test split of a data set: per-row base-stock, (s, S) and
inventory days, and the incumbent rule (one safety-days value).

Each heuristic's parameters are tuned per row on the training period by a vmapped grid
search in the simulator (:func:`orpr_jax.policies.grid_search`), then held fixed and
evaluated on the test period. Grids are in days of cover of the row's mean demand over
the training period, so one grid fits slow and fast movers alike.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.policies import (
    SS,
    BaseStock,
    IncumbentRule,
    InventoryDays,
    constant,
    grid_search,
)
from orpr_jax.sim.rollout import evaluate, metrics_to_floats

#: Days of cover tried for order-up-to levels and inventory days.
COVER_GRID = tuple(float(x) for x in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20,
                                      23, 26, 30, 35, 40))
#: (s, S) candidates in days of cover: reorder point s and the gap S - s.
SS_REORDER = (2.0, 4.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0)
SS_GAP = (1.0, 3.0, 7.0, 14.0)


@dataclasses.dataclass
class HeuristicResult:
    """A tuned heuristic: its name, test metrics and tuning time."""

    name: str
    metrics: dict
    tune_seconds: float


def evaluated(name, env, params, policy, key, num_days, warmup_days, seconds=0.0):
    """A :class:`HeuristicResult` of ``policy`` run through ``evaluate``."""
    m = evaluate(env, params, policy, key, num_days, warmup_days)
    return HeuristicResult(name, metrics_to_floats(m), seconds)


def tune_base_stock(data: InventoryData, env, params, period: tuple[int, int], key,
                    warmup_days: int) -> jax.Array:
    """``[R]`` base-stock levels tuned per row on ``period`` over :data:`COVER_GRID`
    days of cover of the row's mean demand in that period."""
    mu = jnp.asarray(data.demand[period[0] : period[0] + period[1]].mean(axis=0), jnp.float32)
    levels = jnp.round(jnp.asarray(COVER_GRID, jnp.float32)[:, None] * mu[None, :])
    best, _ = grid_search(env, params, BaseStock, levels, key, period[1], warmup_days)
    return jax.block_until_ready(best)


#: Safety days tried for the incumbent rule (one value for all rows).
SAFETY_GRID = tuple(float(x) for x in range(-3, 15))


def tune_incumbent(env, params, period: tuple[int, int], key, warmup_days: int,
                   window: int = 28) -> IncumbentRule:
    """The incumbent rule with its one safety-days value (from :data:`SAFETY_GRID`) tuned
    on ``period`` (the env's days)."""
    safety, _ = grid_search(
        env, params, lambda s: IncumbentRule(safety_days=s, window=window),
        jnp.asarray(SAFETY_GRID, jnp.float32), key, period[1], warmup_days, per_row=False,
    )
    return IncumbentRule(safety_days=safety, window=window)


def compare_heuristics(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    *,
    warmup_days: int = 28,
    history_length: int = 28,
) -> list[HeuristicResult]:
    """Tunes base-stock, (s, S) and inventory-days per row on ``train``; evaluates on ``test``.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key (lead-time draws).
        warmup_days: leading days of each period excluded from the metrics.
        history_length: sales window of the observation.

    Returns:
        One :class:`HeuristicResult` per policy, the untuned constant-order rule first.
    """
    env_tr, p_tr = env_from_data(data, start=train[0], num_days=train[1],
                                 history_length=history_length)
    env_te, p_te = env_from_data(data, start=test[0], num_days=test[1],
                                 history_length=history_length)
    tune_key, eval_key = jax.random.split(key)
    mu = jnp.asarray(data.demand[train[0] : train[0] + train[1]].mean(axis=0), jnp.float32)
    cover = jnp.asarray(COVER_GRID, jnp.float32)
    results = []

    def run(name, policy, seconds):
        results.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days,
                                 seconds))

    run("constant (mean demand)", constant(jnp.round(mu)), 0.0)

    t0 = time.perf_counter()
    best_level = tune_base_stock(data, env_tr, p_tr, train, tune_key, warmup_days)
    run("base-stock (tuned per row)", BaseStock(best_level), time.perf_counter() - t0)

    t0 = time.perf_counter()
    best_v, _ = grid_search(env_tr, p_tr, lambda v: InventoryDays(v=v), cover[:, None]
                            * jnp.ones_like(mu)[None, :], tune_key, train[1], warmup_days)
    jax.block_until_ready(best_v)
    run("inventory days (tuned per row)", InventoryDays(v=best_v), time.perf_counter() - t0)

    t0 = time.perf_counter()
    s_grid, gap_grid = np.meshgrid(SS_REORDER, SS_GAP, indexing="ij")
    s_days = jnp.asarray(s_grid.ravel(), jnp.float32)
    S_days = s_days + jnp.asarray(gap_grid.ravel(), jnp.float32)
    idx = jnp.arange(s_days.shape[0], dtype=jnp.float32)

    def ss_policy(i, mu=mu):
        g = i.astype(jnp.int32)
        return SS(s=jnp.round(s_days[g] * mu), S=jnp.round(S_days[g] * mu))

    best_i, _ = grid_search(env_tr, p_tr, ss_policy, idx[:, None] * jnp.ones_like(mu)[None, :],
                            tune_key, train[1], warmup_days)
    jax.block_until_ready(best_i)
    run("(s, S) (tuned per row)", ss_policy(best_i), time.perf_counter() - t0)
    return results
