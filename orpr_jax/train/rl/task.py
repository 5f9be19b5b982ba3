"""The per-row data of the objective (:class:`Task`) and the rule-based promotion expert."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from orpr_jax.sim.types import SimParams

#: Floor of a row's demand level (units per day), in the reward scale and turnover.
_LEVEL_EPS = 0.1


@struct.dataclass
class Task:
    """Per-row data of the objective (traced).

    Attributes:
        reward_scale: ``[R]`` costs are divided by this (e.g. penalty x mean demand).
        group: ``[R]`` int32 service-constraint group in ``[0, num_groups)``.
        expert_bins: ``[T, R]`` int32 expert bin on day ``t mod T``, ``-1`` where there is
            no expert decision (outside promotion windows).
        service_target: ``[G]`` (or ``[1]``) in-stock target of each constraint group;
            a negative entry means ``HParams.service_target`` (the one pooled target).
    """

    reward_scale: jax.Array
    group: jax.Array
    expert_bins: jax.Array
    service_target: jax.Array = struct.field(
        default_factory=lambda: jnp.full((1,), -1.0, jnp.float32))


def group_targets(task: Task, hp, num_groups: int) -> jax.Array:
    """``[G]`` the in-stock target of each group: the task's own where it sets one, else
    ``hp.service_target``."""
    own = jnp.broadcast_to(task.service_target, (num_groups,))
    return jnp.where(own >= 0, own, hp.service_target)


def make_task(
    sim_params: SimParams,
    num_rows: int,
    *,
    reward_scale=None,
    group=None,
    expert_bins=None,
    service_target=None,
) -> Task:
    """A :class:`Task` with defaults: scale = penalty x mean demand, one group, no expert,
    the pooled ``HParams.service_target`` for every group.

    Args:
        service_target: ``[G]`` per-group in-stock targets in [0, 1] (default: pooled).

    Raises:
        ValueError: for a non-positive or non-finite scale, targets outside [0, 1], or badly
            shaped arrays.
    """
    if reward_scale is None:
        demand = np.asarray(sim_params.initial_sales_history, np.float64).mean(axis=0)
        base = np.broadcast_to(np.asarray(sim_params.base_demand, np.float64), (num_rows,))
        demand = np.where(demand > 0, demand, base)
        pen = np.broadcast_to(np.asarray(sim_params.penalty_cost, np.float64), (num_rows,))
        reward_scale = np.maximum(pen * np.maximum(demand, _LEVEL_EPS), 1e-3)
    scale = np.broadcast_to(np.asarray(reward_scale, np.float64), (num_rows,))
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"reward_scale has non-positive or non-finite entries "
                         f"(min {scale.min()!r}); expected finite values > 0")
    g = np.zeros(num_rows, np.int32) if group is None else np.asarray(group)
    if g.shape != (num_rows,) or np.any(g < 0):
        raise ValueError(f"group has shape {g.shape} / min {g.min()}; expected [R={num_rows}] "
                         "indices >= 0")
    e = np.full((1, num_rows), -1, np.int32) if expert_bins is None else np.asarray(expert_bins)
    if e.ndim != 2 or e.shape[1] != num_rows:
        raise ValueError(f"expert_bins has shape {e.shape}; expected [T, R={num_rows}]")
    if service_target is None:
        targets = np.full((1,), -1.0)
    else:
        targets = np.asarray(service_target, np.float64).reshape(-1)
        if targets.shape[0] <= int(g.max(initial=0)) or not np.all(
                np.isfinite(targets) & (targets >= 0) & (targets <= 1)):
            raise ValueError(f"service_target={targets.tolist()!r} is not allowed; expected "
                             f"one target in [0, 1] per group (at least {int(g.max()) + 1})")
    return Task(reward_scale=jnp.asarray(scale, jnp.float32),
                group=jnp.asarray(g, jnp.int32), expert_bins=jnp.asarray(e, jnp.int32),
                service_target=jnp.asarray(targets, jnp.float32))


def promotion_expert_bins(
    sim_params: SimParams,
    values,
    base_days,
    *,
    uplift=None,
    lookahead: int = 7,
) -> np.ndarray:
    """Expert reference decisions for promotion windows (the rule-based expert).

    On day t a row is in a promotion window when a promotion day falls in ``t..t+lookahead``;
    the expert then plays uplift-adjusted inventory days,
    ``base_days x (1 + (uplift - 1) x share of promotion days in the window)``, snapped to
    the nearest bin of ``values``. Outside windows the entry is ``-1``.

    Args:
        sim_params: parameters with ``promo_calendar`` ``[T, R]``.
        values: ``[V]`` inventory days of the bins.
        base_days: ``[]`` or ``[R]`` the expert's days of cover outside promotions (e.g. lead
            time + review period + safety days).
        uplift: ``[]`` or ``[R]`` demand multiplier on promotion days (default
            ``sim_params.promo_uplift``; for replayed data, where the trace already holds the
            uplift, pass an estimate such as :func:`estimate_uplift`).
        lookahead: window length in days.

    Returns:
        ``[T, R]`` int32 expert bins.
    """
    cal = np.asarray(sim_params.promo_calendar, np.float64)
    t_len, r = cal.shape
    ext = np.concatenate([cal, cal[: lookahead + 1]], axis=0)
    csum = np.concatenate([np.zeros((1, r)), np.cumsum(ext, axis=0)], axis=0)
    share = (csum[lookahead + 1: lookahead + 1 + t_len] - csum[:t_len]) / (lookahead + 1)
    uplift = sim_params.promo_uplift if uplift is None else uplift
    uplift = np.broadcast_to(np.asarray(uplift, np.float64), (r,))
    days = np.broadcast_to(np.asarray(base_days, np.float64), (r,)) * (
        1.0 + (uplift - 1.0) * share)
    v = np.asarray(values, np.float64)
    bins = np.abs(days[..., None] - v).argmin(axis=-1).astype(np.int32)
    return np.where(share > 0, bins, -1).astype(np.int32)


def estimate_uplift(demand, promo, *, group=None) -> np.ndarray:
    """``[R]`` promotion uplift: mean demand on promotion days over mean demand on other
    days, pooled within ``group`` (e.g. category; default per row), 1 where unknown."""
    d, p = np.asarray(demand, np.float64), np.asarray(promo, np.float64) > 0
    r = d.shape[1]
    g = np.arange(r) if group is None else np.asarray(group)
    on = np.bincount(g, (d * p).sum(0)) / np.maximum(np.bincount(g, p.sum(0)), 1)
    off = np.bincount(g, (d * ~p).sum(0)) / np.maximum(np.bincount(g, (~p).sum(0)), 1)
    ratio = np.where((on > 0) & (off > 0), on / np.where(off > 0, off, 1.0), 1.0)
    return np.maximum(ratio, 1.0)[g]
