"""Demand of one day: replayed, looked up from a stationary table, or sampled.

The parametric model (``poisson`` / ``negbin`` modes) has daily mean

.. math::
    \\lambda_{i,t} = b_i \\cdot w_{i, dow(t)} \\cdot (1 + a_i \\cos(2\\pi (doy(t) - \\phi_i) / 365))
                  \\cdot \\max(0, 1 + g_i t / 365) \\cdot (u_i \\text{ if promo}_{i,t} \\text{ else } 1)

and demand ``D = 0`` with probability ``zero_prob_i`` (intermittent slow movers), else
Poisson(lambda) or negative binomial with mean lambda and shape ``dispersion_i``
(variance ``lambda + lambda^2 / r``, drawn as a gamma-Poisson mixture).

The ``table`` mode draws a stationary per-row distribution by inverse-CDF lookup
(``D = #{k : cdf_k < U}``), several times faster than ``jax.random.poisson`` on a CPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from orpr_jax.sim.types import SimConfig, SimParams

DAYS_PER_YEAR = 365


def day_of_week(params: SimParams, t: jax.Array) -> jax.Array:
    """Day of week (0 = Monday) of day ``t``."""
    return (params.start_day_of_week + t) % 7


def day_of_year(params: SimParams, t: jax.Array) -> jax.Array:
    """Day of year (0 = 1 January, 365-day years) of day ``t``."""
    return (params.start_day_of_year + t) % DAYS_PER_YEAR


def promo_on(config: SimConfig, params: SimParams, t: jax.Array) -> jax.Array:
    """``[R]`` promotion flags of day ``t`` (zeros when promotions are off)."""
    if not config.use_promotions:
        return jnp.zeros((config.num_rows,), params.holding_cost.dtype)
    cal = params.promo_calendar
    return jax.lax.dynamic_index_in_dim(cal, t % cal.shape[0], axis=0, keepdims=False)


def mean_demand(config: SimConfig, params: SimParams, t: jax.Array) -> jax.Array:
    """``[R]`` mean demand of day ``t`` under the parametric model (before zero-inflation)."""
    dow = day_of_week(params, t)
    doy = day_of_year(params, t).astype(params.base_demand.dtype)
    weekly = jnp.take(params.weekly, dow, axis=1)
    yearly = 1.0 + params.yearly_amplitude * jnp.cos(
        2.0 * jnp.pi * (doy - params.yearly_phase) / DAYS_PER_YEAR
    )
    trend = jnp.maximum(0.0, 1.0 + params.trend * t.astype(doy.dtype) / DAYS_PER_YEAR)
    lam = params.base_demand * weekly * yearly * trend
    if config.use_promotions:
        promo = promo_on(config, params, t)
        lam = lam * jnp.where(promo > 0, params.promo_uplift, 1.0)
    return lam


def sample_demand(
    key: jax.Array, config: SimConfig, params: SimParams, t: jax.Array
) -> jax.Array:
    """``[R]`` demand of day ``t`` (float, integer-valued).

    Args:
        key: PRNG key for this day's demand (unused in trace mode).
        config: static configuration; ``demand_mode`` picks the source.
        params: traced parameters.
        t: ``[]`` int32 day index.

    Returns:
        ``[R]`` demand in units.
    """
    dtype = params.holding_cost.dtype
    mode = config.demand_mode
    if mode == "trace":
        trace = params.demand_trace
        return jax.lax.dynamic_index_in_dim(trace, t % trace.shape[0], 0, keepdims=False)
    if mode == "table":
        u = jax.random.uniform(key, (config.num_rows,), dtype)
        # cdf is [R or 1, K]: count support points whose CDF is below u.
        return jnp.sum(params.demand_cdf < u[:, None], axis=1).astype(dtype)
    lam = mean_demand(config, params, t)
    zero_key, gamma_key, poisson_key = jax.random.split(key, 3)
    if mode == "negbin":
        r = params.dispersion
        lam = lam * jax.random.gamma(gamma_key, r, dtype=dtype) / r
    d = jax.random.poisson(poisson_key, lam, dtype=jnp.int32).astype(dtype)
    keep = jax.random.uniform(zero_key, (config.num_rows,), dtype) >= params.zero_prob
    return jnp.where(keep, d, 0.0)


def poisson_cdf_table(mean, tail: float = 1e-7, xp_dtype=None):
    """Host-side CDF table of Poisson(mean) on 0..K-1, K covering all but ``tail`` mass.

    Args:
        mean: scalar or ``[R]`` array of means (>= 0).
        tail: probability mass allowed beyond the table (it is folded into the largest
            support point, K - 1).
        xp_dtype: NumPy dtype of the result (default float32).

    Returns:
        NumPy ``[R or 1, K]`` array, non-decreasing along K, with the last column 1.
    """
    import numpy as np
    from scipy import stats

    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    k_max = int(stats.poisson.ppf(1.0 - tail, max(float(mean.max()), 1e-9))) + 2
    ks = np.arange(k_max)
    cdf = stats.poisson.cdf(ks[None, :], mean[:, None])
    cdf[:, -1] = 1.0
    return cdf.astype(xp_dtype or np.float32)


def negbin_cdf_table(mean, dispersion, tail: float = 1e-7, xp_dtype=None):
    """Host-side CDF table of a negative binomial with ``mean`` and shape ``dispersion``.

    Args:
        mean: ``[R]`` means (>= 0).
        dispersion: ``[R]`` shapes r > 0 (variance ``mean + mean^2 / r``).
        tail: probability mass allowed beyond the table.
        xp_dtype: NumPy dtype of the result (default float32).

    Returns:
        NumPy ``[R, K]`` array with the last column 1.
    """
    import numpy as np
    from scipy import stats

    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    r = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), mean.shape)
    p = r / (r + mean)
    k_max = int(np.max(stats.nbinom.ppf(1.0 - tail, r, p))) + 2
    ks = np.arange(k_max)
    cdf = stats.nbinom.cdf(ks[None, :], r[:, None], p[:, None])
    cdf[:, -1] = 1.0
    return cdf.astype(xp_dtype or np.float32)
