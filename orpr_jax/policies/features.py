"""Scale-free model inputs for the foundation model, built from an :class:`Observation`.

Every quantity measured in units (sales, stock, pipeline) is divided by the row's demand
level ``level = max(censored_forecast(obs, H), eps)`` (the mean of the in-stock days,
:mod:`orpr_jax.policies.forecast`), so a row selling 1 unit a day and one
selling 1,000 look alike; the level itself enters once, as ``log1p(level)``, so the model
can still tell slow movers from fast ones. Everything is clipped to a finite range, so
zero sales, zero stock or zero costs never give NaN or inf.

Shapes: ``N`` samples (rows, or dates x rows flattened), ``H`` history days, ``P`` promotion
look-ahead days, ``F_h`` / ``F_a`` / ``F_t`` feature counts (the module constants below).

References:
    ORPR: "Pretrain-then-Reinforce" for inventory replenishment, arXiv:2512.19001 (three
    input streams: history, attributes, business targets).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, Int

from orpr_jax.policies.forecast import censored_forecast, censoring_features
from orpr_jax.sim.types import Observation

#: Demand-level floor (units/day): rows with (near-)zero sales are scaled by this.
LEVEL_EPS = 0.1
#: Days-of-cover features are divided by this (the targets' turnover uses the same scale).
DAYS_SCALE = 30.0
#: Lead times and review periods (days) are divided by this.
LEAD_SCALE = 7.0
#: Sales / level is clipped to [0, MAX_RATIO]; days of cover to +-MAX_RATIO x DAYS_SCALE.
MAX_RATIO = 50.0
#: log(p / h) is clipped to +-MAX_LOG_COST_RATIO.
MAX_LOG_COST_RATIO = 10.0
_COST_EPS = 1e-6

#: F_h: per history day: sales / level, log1p(sales / level), sin and cos of day of week,
#: and the day's stock-out flag (its sales are censored).
num_history_features = 5
#: F_a: lead-time mean and std / 7, review period / 7, log(p/h), on hand, backlog,
#: inventory position and pipeline total in days of cover / 30, log1p(level),
#: is_review_day, sin and cos of day of year, the share of stock-out days in the window
#: and the days since the last in-stock day / H.
num_attr_features = 14
#: F_t: target turnover days / 30, alpha, promo today, fraction of promo days ahead.
num_target_features = 4

#: Index of ``log1p(level)`` in ``attrs``: the one feature that is not scale-free.
LEVEL_ATTR_INDEX = 8


@struct.dataclass
class ModelInputs:
    """The foundation model's three input streams (plus the category index).

    Attributes:
        history: ``[N, H, F_h]`` float32 per-day features of the sales window, oldest first.
        attrs: ``[N, F_a]`` float32 row attributes and stock position.
        category: ``[N]`` int32 category index.
        targets: ``[N, F_t]`` float32 business targets and promotion flags.
    """

    history: Float[Array, "N H Fh"]
    attrs: Float[Array, "N Fa"]
    category: Int[Array, " N"]
    targets: Float[Array, "N Ft"]

    @property
    def num_samples(self) -> int:
        """N, the leading dimension."""
        return self.history.shape[0]


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _days_of_cover(units: jax.Array, level: jax.Array) -> jax.Array:
    return jnp.clip(units / level, -MAX_RATIO * DAYS_SCALE, MAX_RATIO * DAYS_SCALE) / DAYS_SCALE


def make_inputs(
    obs: Observation,
    alpha: float | Float[Array, "*N"],
    target_turnover: float | Float[Array, "*N"],
) -> ModelInputs:
    """Builds scale-free model inputs from an observation (pure JAX, jittable).

    Args:
        obs: observation with ``[N, ...]`` leaves (``sales_history`` ``[N, H]``).
        alpha: service target in (0, 1], scalar or ``[N]``.
        target_turnover: target turnover days, scalar or ``[N]``.

    Returns:
        :class:`ModelInputs` with ``N`` samples; every value finite.
    """
    sales = _f32(obs.sales_history)
    n, h = sales.shape
    stockout = _f32(obs.stockout_history)
    level = jnp.maximum(_f32(censored_forecast(obs, h)), LEVEL_EPS)  # [N]
    out_share, out_run = censoring_features(obs, h)
    ratio = jnp.clip(sales / level[:, None], 0.0, MAX_RATIO)  # [N, H]

    # History day j (oldest first) is H - j days before today.
    lag = jnp.arange(h, 0, -1, dtype=jnp.int32)  # [H]
    dow = jnp.mod(jnp.asarray(obs.day_of_week, jnp.int32)[:, None] - lag[None, :], 7)
    angle = _f32(dow) * _f32(2.0 * np.pi / 7.0)
    history = jnp.stack(
        [ratio, jnp.log1p(ratio), jnp.sin(angle), jnp.cos(angle), stockout], axis=-1
    )

    h_cost = jnp.maximum(_f32(obs.holding_cost), _COST_EPS)
    p_cost = jnp.maximum(_f32(obs.penalty_cost), _COST_EPS)
    log_cost_ratio = jnp.clip(jnp.log(p_cost / h_cost), -MAX_LOG_COST_RATIO, MAX_LOG_COST_RATIO)
    pipeline_total = _f32(obs.pipeline).sum(axis=1)
    year_angle = _f32(jnp.asarray(obs.day_of_year, jnp.int32)) * _f32(2.0 * np.pi / 365.0)
    attrs = jnp.stack(
        [
            jnp.clip(_f32(obs.lead_time_mean) / LEAD_SCALE, 0.0, 100.0),
            jnp.clip(_f32(obs.lead_time_std) / LEAD_SCALE, 0.0, 100.0),
            jnp.clip(_f32(obs.review_period) / LEAD_SCALE, 0.0, 100.0),
            log_cost_ratio,
            _days_of_cover(_f32(obs.on_hand), level),
            _days_of_cover(_f32(obs.backlog), level),
            _days_of_cover(_f32(obs.inventory_position), level),
            _days_of_cover(pipeline_total, level),
            jnp.log1p(level),
            _f32(obs.is_review_day),
            jnp.sin(year_angle),
            jnp.cos(year_angle),
            out_share,
            out_run / h,
        ],
        axis=-1,
    )

    promo_ahead = _f32(obs.promo_ahead)
    targets = jnp.stack(
        [
            jnp.broadcast_to(_f32(target_turnover) / DAYS_SCALE, (n,)),
            jnp.broadcast_to(_f32(alpha), (n,)),
            _f32(obs.promo_today),
            promo_ahead.mean(axis=1) if promo_ahead.shape[1] else jnp.zeros((n,), jnp.float32),
        ],
        axis=-1,
    )
    # Guard against NaN/inf in the raw observation (e.g. a NaN cost) reaching the model.
    history, attrs, targets = (
        jnp.nan_to_num(x, nan=0.0, posinf=MAX_RATIO, neginf=-MAX_RATIO)
        for x in (history, attrs, targets)
    )
    return ModelInputs(
        history=history,
        attrs=attrs,
        category=jnp.asarray(obs.category, jnp.int32),
        targets=targets,
    )


_make_inputs_jit = jax.jit(make_inputs)


def inputs_from_labels(
    labels, target_turnover: float | None = None
) -> tuple[ModelInputs, jax.Array, np.ndarray]:
    """Flattens a :class:`~orpr_jax.labels.LabelSet` into supervised samples.

    Args:
        labels: a ``LabelSet`` with ``features`` leaves ``[D, R, ...]`` and ``choice``
            ``[D, R]``; ``meta["label_config"]["alpha"]`` is the service target.
        target_turnover: target turnover days given to every sample (default 14.0).

    Returns:
        ``(inputs, y, row_ids)``: :class:`ModelInputs` with ``N = D * R`` samples
        (date-major), ``y`` ``[N]`` int32 bin labels, and ``row_ids`` ``[N]`` the row of
        each sample (``np.tile(arange(R), D)``) for row-wise train/validation splits.

    Raises:
        ValueError: if ``choice`` is not ``[D, R]`` matching the features.
    """
    choice = np.asarray(labels.choice)
    if choice.ndim != 2:
        raise ValueError(f"labels.choice has shape {choice.shape}; expected [D, R]")
    d, r = choice.shape
    sales_shape = tuple(np.shape(labels.features.sales_history))
    if sales_shape[:2] != (d, r):
        raise ValueError(
            f"labels.features.sales_history has shape {sales_shape}; expected [D={d}, R={r}, H]"
        )
    flat = jax.tree.map(lambda x: jnp.asarray(x).reshape((d * r, *np.shape(x)[2:])), labels.features)
    alpha = float(labels.meta["label_config"]["alpha"])
    turnover = 14.0 if target_turnover is None else float(target_turnover)
    inputs = _make_inputs_jit(flat, alpha, turnover)
    y = jnp.asarray(choice.reshape(-1), jnp.int32)
    row_ids = np.tile(np.arange(r), d)
    return inputs, y, row_ids
