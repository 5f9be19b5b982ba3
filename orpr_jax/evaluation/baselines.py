"""Tuned baselines on a train/test split of a data set: the incumbent rule (one
safety-days value), and per row: inventory days, base-stock at a fixed level, base-stock
whose level follows the forecast, and (s, S).

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
    ForecastBaseStock,
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


#: Safety factors (standard deviations of protection-period demand) tried per row for the
#: forecast-following base-stock.
Z_GRID = tuple(float(x) for x in (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0,
                                  6.0, 8.0))


def tune_planner_baselines(data: InventoryData, env, params, period: tuple[int, int], key,
                           warmup_days: int, window: int = 28) -> dict[str, object]:
    """The per-row baselines a planner would field, each tuned per row on ``period`` (the
    env's days: the training period) by a common-random-numbers grid search.

    Returns:
        Policies by table name: inventory days (:data:`COVER_GRID`), base-stock at a
        fixed level (:func:`tune_base_stock`), base-stock following the forecast
        (:data:`Z_GRID`) and (s, S) (:data:`SS_REORDER` x :data:`SS_GAP` days of cover).
    """
    mu = jnp.asarray(data.demand[period[0] : period[0] + period[1]].mean(axis=0), jnp.float32)
    ones = jnp.ones_like(mu)[None, :]
    out: dict[str, object] = {}
    best_v, _ = grid_search(env, params, lambda v: InventoryDays(v=v, window=window),
                            jnp.asarray(COVER_GRID, jnp.float32)[:, None] * ones, key,
                            period[1], warmup_days)
    out["inventory days (tuned per row)"] = InventoryDays(v=best_v, window=window)
    out["base-stock (tuned per row)"] = BaseStock(
        tune_base_stock(data, env, params, period, key, warmup_days))
    best_z, _ = grid_search(env, params, lambda z: ForecastBaseStock(z=z, window=window),
                            jnp.asarray(Z_GRID, jnp.float32)[:, None] * ones, key,
                            period[1], warmup_days)
    out["base-stock following the forecast (tuned per row)"] = ForecastBaseStock(
        z=best_z, window=window)
    s_grid, gap_grid = np.meshgrid(SS_REORDER, SS_GAP, indexing="ij")
    s_days = jnp.asarray(s_grid.ravel(), jnp.float32)
    S_days = s_days + jnp.asarray(gap_grid.ravel(), jnp.float32)

    def ss_policy(i):
        g = i.astype(jnp.int32)
        return SS(s=jnp.round(s_days[g] * mu), S=jnp.round(S_days[g] * mu))

    best_i, _ = grid_search(env, params, ss_policy,
                            jnp.arange(s_days.shape[0], dtype=jnp.float32)[:, None] * ones,
                            key, period[1], warmup_days)
    out["(s, S) (tuned per row)"] = ss_policy(best_i)
    return jax.block_until_ready(out)


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


def fielded_baselines(data: InventoryData, tuning: tuple, train: tuple[int, int],
                      testing: tuple, test: tuple[int, int], tune_key, eval_key,
                      warmup_days: int,
                      window: int = 28, incumbent: IncumbentRule | None = None,
                      ) -> tuple[list[HeuristicResult], dict[str, object]]:
    """The baselines of every jd table: the incumbent rule and the per-row baselines of
    :func:`tune_planner_baselines`, tuned on ``tuning`` (``(env, params)`` of the rows
    over the training period ``train``) and measured on ``testing`` over ``test``.

    Args:
        data: the rows' data set (its training-period demand scales the grids).
        tuning: ``(env, params)`` over ``train``.
        train: ``(start, num_days)`` of the training period.
        testing: ``(env, params)`` over ``test``.
        test: ``(start, num_days)`` of the evaluation period.
        tune_key: PRNG key of the tuning runs.
        eval_key: PRNG key of the test runs (give every policy of a table the same one).
        warmup_days: leading days excluded from every cost.
        window: forecast window of the inventory-days rules.
        incumbent: an incumbent already tuned (else tuned here on ``tuning``).

    Returns:
        ``(results, policies)`` in table order, policies by result name.
    """
    (env_tr, p_tr), (env_te, p_te) = tuning, testing
    t0 = time.perf_counter()
    if incumbent is None:
        incumbent = tune_incumbent(env_tr, p_tr, train, tune_key, warmup_days, window)
    policies = {f"incumbent rule (L + R + {float(incumbent.safety_days):g} days)": incumbent}
    seconds = {next(iter(policies)): time.perf_counter() - t0}
    t0 = time.perf_counter()
    tuned = tune_planner_baselines(data, env_tr, p_tr, train, tune_key, warmup_days, window)
    seconds.update({name: (time.perf_counter() - t0) / len(tuned) for name in tuned})
    policies.update(tuned)
    results = [evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days,
                         seconds[name]) for name, policy in policies.items()]
    return results, policies


def compare_heuristics(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    *,
    warmup_days: int = 28,
    history_length: int = 28,
) -> list[HeuristicResult]:
    """Tunes the incumbent and the per-row baselines of :func:`tune_planner_baselines` on
    ``train``; evaluates them on ``test``.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key (lead-time draws).
        warmup_days: leading days of each period excluded from the metrics.
        history_length: sales window of the observation.

    Returns:
        One :class:`HeuristicResult` per policy, the untuned constant-order rule first
        (the per-row baselines share their tuning time equally).
    """
    env_tr, p_tr = env_from_data(data, start=train[0], num_days=train[1],
                                 history_length=history_length)
    env_te, p_te = env_from_data(data, start=test[0], num_days=test[1],
                                 history_length=history_length)
    mu = jnp.asarray(data.demand[train[0] : train[0] + train[1]].mean(axis=0), jnp.float32)
    tune_key, eval_key = jax.random.split(key)
    results = [evaluated("constant (mean demand)", env_te, p_te, constant(jnp.round(mu)),
                         eval_key, test[1], warmup_days)]
    tuned, _ = fielded_baselines(data, (env_tr, p_tr), train, (env_te, p_te), test,
                                 tune_key, eval_key, warmup_days)
    return results + tuned
