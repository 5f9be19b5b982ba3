"""Demand scenarios drawn at decision time from a forecast fitted on the observed window.

Everything here reads an :class:`~orpr_jax.sim.types.Observation` (and, optionally, the
promotion flags of the days already past), never the demand that follows. Per row, over
the last ``window`` days of censored sales:

* level ``f``: the censored-aware forecast
  (:func:`orpr_jax.policies.forecast.censored_forecast`: in-stock days only, shrunk to the
  long-run level);
* weekday pattern ``w_d``: the in-stock sales of weekday d over ``f``-scaled days,
  ``(S_d + k f) / ((n_d + k) f)`` with a prior of :data:`WEEKDAY_PRIOR_DAYS` days, then
  scaled to mean 1 over the week;
* promotion uplift ``u``: in-stock sales on past promotion days over the non-promotion
  mean, shrunk to ``prior_uplift`` with :data:`UPLIFT_PRIOR_DAYS` days (``prior_uplift``
  alone when no past flags are given); the days ahead are flagged from
  ``obs.promo_today`` and ``obs.promo_ahead`` (no promotion past the look-ahead);
* overdispersion ``phi`` (negative binomial ``var = mu + phi mu^2``): the method of
  moments on the in-stock days, ``sum((s - mu)^2 - mu) / sum(mu^2)``, clipped to
  ``[0, PHI_MAX]``.

Day j ahead (j = 0 is the decision day) has mean ``mu_j = f w_{dow(t+j)} (u if promo)``.
Two samplers share the fit: ``"negbin"`` (gamma-Poisson draws with ``phi``) and
``"bootstrap"`` (``mu_j`` times a ratio ``s / mu`` of a random in-stock day of the
window; Poisson where the window has none). Each row's draws come from its own key
(``fold_in(key, row_id)``), so a row's scenarios do not depend on which other rows are
drawn with it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from orpr_jax.policies.forecast import censored_forecast
from orpr_jax.sim.types import Observation

ScenarioModel = Literal["negbin", "bootstrap"]
SCENARIO_MODELS = ("negbin", "bootstrap")

#: Prior weight (days) of a flat weekday pattern.
WEEKDAY_PRIOR_DAYS = 2.0
#: Prior weight (days) of ``prior_uplift`` in the promotion uplift.
UPLIFT_PRIOR_DAYS = 2.0
#: Largest overdispersion ``phi`` fitted (var = mu + phi mu^2).
PHI_MAX = 4.0
#: Below this ``phi`` the negative binomial is drawn as a Poisson.
PHI_MIN = 1e-3


class DemandFit(NamedTuple):
    """A row-wise forecast distribution (leading axis ``R``).

    Attributes:
        level: ``[R]`` censored forecast (units/day).
        weekday: ``[R, 7]`` multiplicative weekday pattern (mean 1), indexed by weekday.
        uplift: ``[R]`` promotion-day multiplier.
        dispersion: ``[R]`` negative-binomial ``phi`` (variance ``mu + phi mu^2``).
        ratio: ``[R, W]`` bootstrap residual ratios ``s / mu`` of the window's days.
        in_stock: ``[R, W]`` 1.0 on the window's in-stock days (the bootstrap support).
    """

    level: jax.Array
    weekday: jax.Array
    uplift: jax.Array
    dispersion: jax.Array
    ratio: jax.Array
    in_stock: jax.Array


def fit_demand(
    obs: Observation,
    window: int = 28,
    past_promo: Float[Array, "R W"] | None = None,
    prior_uplift: Float[Array, " R"] | float = 2.0,
) -> DemandFit:
    """Fits the forecast distribution of each row on its last ``window`` observed days.

    Args:
        obs: observation of the decision day (``[R, ...]`` leaves).
        window: days of history read (static; at most ``H``).
        past_promo: ``[R, window]`` promotion flags of days ``t - window .. t - 1``
            (oldest first); None: the uplift is ``prior_uplift``.
        prior_uplift: ``[]`` or ``[R]`` promotion multiplier before (or instead of)
            the history.

    Returns:
        A :class:`DemandFit`.
    """
    sales = obs.sales_history[..., -window:]
    dtype = sales.dtype
    in_stock = 1.0 - obs.stockout_history[..., -window:].astype(dtype)
    level = censored_forecast(obs, window)
    dow = (obs.day_of_week[:, None] - window + jnp.arange(window)[None, :]) % 7
    onehot = jax.nn.one_hot(dow, 7, dtype=dtype) * in_stock[..., None]  # [R, W, 7]
    n_d = onehot.sum(axis=1)
    s_d = (onehot * sales[..., None]).sum(axis=1)
    f = level[:, None]
    weekday = (s_d + WEEKDAY_PRIOR_DAYS * f) / ((n_d + WEEKDAY_PRIOR_DAYS) * f)
    weekday = weekday / weekday.mean(axis=1, keepdims=True)
    prior = jnp.broadcast_to(jnp.asarray(prior_uplift, dtype), level.shape)
    if past_promo is None:
        uplift = prior
        promo = jnp.zeros_like(sales)
    else:
        promo = past_promo.astype(dtype)
        base_days = in_stock * (1.0 - promo)
        base = ((sales * base_days).sum(-1) + WEEKDAY_PRIOR_DAYS * level) / (
            base_days.sum(-1) + WEEKDAY_PRIOR_DAYS)
        p_days = in_stock * promo
        uplift = ((sales * p_days).sum(-1) + UPLIFT_PRIOR_DAYS * prior * base) / (
            (p_days.sum(-1) + UPLIFT_PRIOR_DAYS) * base)
    mu = f * jnp.take_along_axis(weekday, dow, axis=1) * (1.0 + (uplift[:, None] - 1.0) * promo)
    num = (in_stock * ((sales - mu) ** 2 - mu)).sum(-1)
    phi = jnp.clip(num / jnp.maximum((in_stock * mu**2).sum(-1), 1e-6), 0.0, PHI_MAX)
    return DemandFit(level, weekday, uplift, phi, sales / mu, in_stock)


def demand_means(fit: DemandFit, obs: Observation, horizon: int) -> Float[Array, "R T"]:
    """``[R, horizon]`` mean demand of days ``t .. t + horizon - 1`` under ``fit``.

    Promotion flags: today from ``obs.promo_today``, the next ``P`` days from
    ``obs.promo_ahead``, none after (the calendar is not shown further ahead).
    """
    dtype = fit.level.dtype
    dow = (obs.day_of_week[:, None] + jnp.arange(horizon)[None, :]) % 7
    flags = jnp.concatenate([obs.promo_today[:, None], obs.promo_ahead], axis=1).astype(dtype)
    p = flags.shape[1]
    flags = flags[:, :horizon] if p >= horizon else jnp.pad(flags, ((0, 0), (0, horizon - p)))
    week = jnp.take_along_axis(fit.weekday, dow, axis=1)
    return fit.level[:, None] * week * (1.0 + (fit.uplift[:, None] - 1.0) * flags)


def _draw_row(key, mu, phi, ratio, in_stock, num_scenarios: int, model: str):
    """``[S, T]`` draws of one row (``mu [T]``, ``phi []``, ``ratio, in_stock [W]``)."""
    shape = (num_scenarios, mu.shape[0])
    mix_key, count_key = jax.random.split(key)
    if model == "negbin":
        shape_k = 1.0 / jnp.maximum(phi, PHI_MIN)
        gamma = jax.random.gamma(mix_key, shape_k, shape, mu.dtype) / shape_k
        lam = mu * jnp.where(phi < PHI_MIN, 1.0, gamma)
        return jax.random.poisson(count_key, lam, shape).astype(mu.dtype)
    has = in_stock.sum() > 0
    logits = jnp.where(in_stock > 0, 0.0, -jnp.inf)
    pick = jax.random.categorical(mix_key, jnp.where(has, logits, 0.0), shape=shape)
    boot = mu * ratio[pick]
    pois = jax.random.poisson(count_key, jnp.broadcast_to(mu, shape), shape).astype(mu.dtype)
    return jnp.where(has, boot, pois)


def scenario_demand(
    key: jax.Array,
    obs: Observation,
    horizon: int,
    num_scenarios: int,
    *,
    model: ScenarioModel = "negbin",
    window: int = 28,
    past_promo: Float[Array, "R W"] | None = None,
    prior_uplift: Float[Array, " R"] | float = 2.0,
    row_ids: jax.Array | None = None,
) -> Float[Array, "S T R"]:
    """``[S, horizon, R]`` demand scenarios of days ``t .. t + horizon - 1``.

    Args:
        key: PRNG key; row ``i`` draws from ``fold_in(key, row_ids[i])``.
        obs: observation of the decision day.
        horizon: days drawn (static).
        num_scenarios: S (static).
        model: ``"negbin"`` or ``"bootstrap"`` (see the module docstring).
        window: days of history fitted (static).
        past_promo: ``[R, window]`` past promotion flags (see :func:`fit_demand`).
        prior_uplift: ``[]`` or ``[R]`` promotion multiplier prior.
        row_ids: ``[R]`` int32 row identities for the keys (default ``0..R-1``).

    Returns:
        Non-negative float demand, the row's dtype.
    """
    if model not in SCENARIO_MODELS:
        raise ValueError(f"model={model!r} is not allowed; use 'negbin' or 'bootstrap'")
    fit = fit_demand(obs, window, past_promo, prior_uplift)
    mu = demand_means(fit, obs, horizon)
    r = mu.shape[0]
    ids = jnp.arange(r, dtype=jnp.int32) if row_ids is None else row_ids
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, ids)
    draws = jax.vmap(lambda k, m, p, q, a: _draw_row(k, m, p, q, a, num_scenarios, model))(
        keys, mu, fit.dispersion, fit.ratio, fit.in_stock)
    return jnp.transpose(draws, (1, 2, 0))


def past_promo_flags(calendar: jax.Array, t: jax.Array, window: int) -> Float[Array, "R W"]:
    """``[R, window]`` promotion flags of days ``t - window .. t - 1`` (0 before day 0).

    ``calendar`` is ``[T, R]`` (day ``s`` uses row ``s mod T``, as the simulator does);
    only days before ``t`` are read.
    """
    days = t - window + jnp.arange(window, dtype=t.dtype)
    flags = jnp.take(calendar, days % calendar.shape[0], axis=0).T
    return jnp.where(days[None, :] >= 0, flags, 0.0)


def sample_crps(samples: Float[Array, "S ..."], observed: jax.Array) -> jax.Array:
    """Mean CRPS of an ensemble (``E|X - y| - E|X - X'| / 2``), lower is better.

    Args:
        samples: ``[S, ...]`` draws.
        observed: ``[...]`` realised values.

    References:
        Gneiting, T. and Raftery, A. E. "Strictly proper scoring rules, prediction, and
        estimation." JASA 102(477), 2007.
    """
    first = jnp.abs(samples - observed[None]).mean(axis=0)
    spread = jnp.abs(samples[:, None] - samples[None, :]).mean(axis=(0, 1))
    return (first - 0.5 * spread).mean()
