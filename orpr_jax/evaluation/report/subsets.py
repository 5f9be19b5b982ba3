"""The paper's metrics over subsets of row-days of a ``[T, R]``
:class:`~orpr_jax.sim.types.DayOutcome` (per category, inside and outside promotion
windows) and the few rows of a trajectory that the report plots."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from orpr_jax.sim.types import DayOutcome

__all__ = ["per_category_metrics", "promotion_window_metrics", "trajectory_series"]


def _leaves(outcomes: DayOutcome, warmup_days: int) -> dict[str, np.ndarray]:
    demand = np.asarray(outcomes.demand)
    if demand.ndim != 2:
        raise ValueError(f"outcomes must have [T, R] leaves; demand has shape {demand.shape}")
    num_days = demand.shape[0]
    if isinstance(warmup_days, bool) or not isinstance(warmup_days, int) or not (
            0 <= warmup_days < num_days):
        raise ValueError(f"warmup_days={warmup_days!r} must be an int in [0, {num_days})")
    fields = ("demand", "sales", "filled", "unmet", "on_hand_end", "in_stock",
              "holding_cost", "penalty_cost", "cost")
    return {f: np.asarray(getattr(outcomes, f), np.float64)[warmup_days:] for f in fields}


def _subset_metrics(x: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """The paper's metrics over the row-days where ``mask`` is True."""
    s = {k: float(v[mask].sum()) for k, v in x.items()}
    row_days = int(mask.sum())
    if s["sales"] > 0:
        turnover = s["on_hand_end"] / s["sales"]
    else:  # as orpr_jax.sim.metrics: stock that never sells turns over never
        turnover = math.inf if s["on_hand_end"] > 0 else 0.0
    return {
        "total_cost": s["cost"],
        "cost_per_row_day": s["cost"] / row_days if row_days else math.nan,
        "holding_cost": s["holding_cost"],
        "lost_sales_cost": s["penalty_cost"],
        "lost_units": s["unmet"],
        "turnover_days": turnover,
        "in_stock_rate": s["in_stock"] / row_days if row_days else math.nan,
        "fill_rate": s["filled"] / s["demand"] if s["demand"] > 0 else 1.0,
        "demand": s["demand"],
        "sales": s["sales"],
        "row_days": float(row_days),
    }


def per_category_metrics(
    outcomes: DayOutcome,
    category,
    names: Sequence[str] | Mapping[int, str] | None = None,
    *,
    warmup_days: int = 0,
) -> dict:
    """The paper's metrics of each category's rows over days ``warmup_days..T``.

    Args:
        outcomes: ``[T, R]`` leaves, as returned by :func:`orpr_jax.rollout`.
        category: ``[R]`` int category of each row (``params.category``).
        names: category index -> display name (a sequence indexed by category or a
            mapping); keys of the result are the indices when None.
        warmup_days: leading days left out (as ``evaluate``'s ``warmup_days``).

    Returns:
        Category (index or name, in ascending index order) -> metrics: ``total_cost``,
        ``cost_per_row_day``, ``holding_cost``, ``lost_sales_cost``, ``lost_units``,
        ``turnover_days`` (sum of end-of-day stock / sum of sales), ``in_stock_rate``
        (mean of ``in_stock``), ``fill_rate`` (filled / demand, 1 without demand),
        ``demand``, ``sales``, ``row_days``; all Python floats.

    Raises:
        ValueError: for leaves that are not ``[T, R]``, a ``category`` that is not ``[R]``,
            a bad ``warmup_days`` or a category without a name.
    """
    x = _leaves(outcomes, warmup_days)
    num_rows = x["demand"].shape[1]
    cat = np.asarray(category)
    if cat.shape != (num_rows,):
        raise ValueError(f"category must have shape ({num_rows},); got {cat.shape}")
    out = {}
    for c in np.unique(cat):
        c = int(c)
        if names is None:
            label = c
        else:
            try:
                label = names[c]
            except (KeyError, IndexError):
                raise ValueError(f"category {c} has no entry in names") from None
        mask = np.broadcast_to(cat == c, x["demand"].shape)
        out[label] = _subset_metrics(x, mask)
    return out


def promotion_window_metrics(outcomes: DayOutcome, promo, *, warmup_days: int = 0) -> dict:
    """The paper's metrics on promotion row-days and on the other row-days.

    Args:
        outcomes: ``[T, R]`` leaves, as returned by :func:`orpr_jax.rollout`.
        promo: ``[T, R]`` promotion flags (> 0 on promotion days) of the same days; for a
            simulation, ``params.promo_calendar`` taken at ``arange(T) % len(calendar)``.
        warmup_days: leading days left out.

    Returns:
        ``{"promo": metrics, "regular": metrics}`` with the keys of
        :func:`per_category_metrics`; an empty window has ``row_days`` 0, NaN in-stock
        rate and cost per row-day, fill rate 1.

    Raises:
        ValueError: for leaves that are not ``[T, R]``, a ``promo`` of another shape or a
            bad ``warmup_days``.
    """
    x = _leaves(outcomes, warmup_days)
    flags = np.asarray(promo)
    full_shape = (x["demand"].shape[0] + warmup_days, x["demand"].shape[1])
    if flags.shape != full_shape:
        raise ValueError(f"promo must have shape {full_shape} (as the outcomes); "
                         f"got {flags.shape}")
    on = flags[warmup_days:] > 0
    return {"promo": _subset_metrics(x, on), "regular": _subset_metrics(x, ~on)}


def trajectory_series(outcomes: DayOutcome, rows: Sequence[int]) -> dict[str, np.ndarray]:
    """``{"on_hand", "demand", "orders"}``, each ``[T, len(rows)]``, of a few rows of a
    ``[T, R]`` trajectory: the per-policy input of :func:`plot_trajectories`."""
    idx = np.asarray(rows, np.int64)
    return {"on_hand": np.asarray(outcomes.on_hand_end)[:, idx],
            "demand": np.asarray(outcomes.demand)[:, idx],
            "orders": np.asarray(outcomes.order)[:, idx]}
