"""Demand with memory for the synthetic data set: the ``[T, R]`` multipliers that the
``'memory'`` demand model of :mod:`orpr_jax.data.synthetic` puts on the seasonal mean.

Each row's daily mean is the deterministic seasonal mean of
:func:`orpr_jax.sim.demand.mean_demand` times

.. math::
    m_{i,t} = \\exp(x_{s(i),t} + y_{i,t} - (\\sigma_s^2 + \\sigma_y^2) / 2)
              \\cdot \\exp(\\textstyle\\sum_{k: \\tau_{i,k} \\le t} \\delta_{i,k})
              \\cdot \\ell_{s(i),t} \\cdot \\pi_{i,t}

* ``x``: an AR(1) log level per SKU, ``x_t = phi_s x_{t-1} + sqrt(1 - phi_s^2) sigma_s
  e_t``, started from its stationary law N(0, sigma_s^2) and shared by the SKU's rows in
  every warehouse; ``y`` a smaller row-specific AR(1) part with the same persistence. The
  ``- sigma^2 / 2`` term keeps ``E[m] = 1``, so the long-run mean stays calibrated.
* level shifts: a Poisson number of regime changes per row, each on a uniform day
  ``tau`` multiplying the level from then on by ``exp(delta)``, ``delta ~ N(-s^2/2, s)``
  (mean factor 1).
* ``ell``: the product life cycle: 0 before a launched SKU's launch day, a linear ramp-up
  after it, a linear fade before a discontinued SKU's end day and 0 from the end day on.
* ``pi``: promotion pull-forward and hangover: on the ``P`` non-promotion days just
  before a promotion demand drops by up to ``pre_promo_dip`` (most on the eve), and on the
  ``D`` non-promotion days after one by up to ``min(post_promo_dip (u_i - 1), 0.9)``
  (``u_i`` the row's uplift), decaying linearly.

Everything here is host-side NumPy, vectorised over rows (one short loop over days for
the AR recursions), and deterministic from the generator passed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # the spec lives in synthetic.py, which imports this module
    from orpr_jax.data.synthetic import SyntheticSpec

#: Deepest post-promotion dip (fraction of the mean demand), whatever the uplift.
MAX_POST_DIP = 0.9


class Lifecycle(NamedTuple):
    """Per-SKU active window ``[launch, end)`` and ramp / fade lengths (days)."""

    launch: np.ndarray  # [S] int, 0 when launched before the panel
    end: np.ndarray  # [S] int, num_days when not discontinued inside the panel
    ramp: np.ndarray  # [S] int, ramp-up days after the launch (0 for no ramp)
    fade: np.ndarray  # [S] int, fade-out days before the end (0 for none)


def ar_log_level(rng: np.random.Generator, spec: SyntheticSpec, sku_idx: np.ndarray,
                 num_days: int) -> tuple[np.ndarray, np.ndarray]:
    """``[T, R]`` mean-corrected log multiplier of the AR(1) levels, and ``[S]`` phi.

    Args:
        rng: generator.
        spec: the ``ar_*`` and ``row_log_sd`` fields.
        sku_idx: ``[R]`` SKU of each row.
        num_days: T.

    Returns:
        ``(log_m, phi)``: ``log_m[t, i] = x[t, s(i)] + y[t, i] - (sigma_s^2 + sigma_y^2)/2``
        (so ``E[exp(log_m)] = 1`` on every day) and each SKU's persistence.
    """
    n_sku, n_rows = spec.num_skus, len(sku_idx)
    phi = rng.uniform(spec.ar_phi_low, spec.ar_phi_high, n_sku)
    sd = rng.uniform(spec.ar_log_sd_low, spec.ar_log_sd_high, n_sku)
    # One column per SKU, then one per row (the row part shares its SKU's phi).
    col_phi = np.concatenate([phi, phi[sku_idx]])
    col_sd = np.concatenate([sd, np.full(n_rows, spec.row_log_sd)])
    shocks = rng.standard_normal((num_days, n_sku + n_rows))
    shocks[1:] *= col_sd * np.sqrt(1.0 - col_phi**2)
    shocks[0] *= col_sd  # stationary start
    for t in range(1, num_days):
        shocks[t] += col_phi * shocks[t - 1]
    log_m = shocks[:, :n_sku][:, sku_idx] + shocks[:, n_sku:]
    return log_m - 0.5 * (sd[sku_idx] ** 2 + spec.row_log_sd**2), phi


def level_shifts(rng: np.random.Generator, spec: SyntheticSpec, n_rows: int,
                 num_days: int) -> np.ndarray:
    """``[T, R]`` cumulative log level of each row's regime changes.

    A row has Poisson(``level_shift_rate * T / 365``) changes on uniform days in
    ``1..T-1``; each adds ``N(-s^2/2, s^2)`` (``s = level_shift_log_sd``) to the log level
    from its day on.
    """
    counts = rng.poisson(spec.level_shift_rate * num_days / 365.0, n_rows)
    rows = np.repeat(np.arange(n_rows), counts)
    days = rng.integers(1, max(num_days, 2), rows.size)
    s = spec.level_shift_log_sd
    jumps = rng.normal(-0.5 * s * s, s, rows.size)
    delta = np.zeros((num_days, n_rows))
    np.add.at(delta, (np.minimum(days, num_days - 1), rows), jumps)
    return np.cumsum(delta, axis=0)


def draw_lifecycle(rng: np.random.Generator, spec: SyntheticSpec, num_days: int) -> Lifecycle:
    """Launch and end days per SKU.

    A ``launch_share`` of SKUs is launched on a uniform day in ``1 .. 0.9 T``; a
    ``discontinue_share`` ends on a day in the last 80% of its active span (at least one
    active day remains). Ramp and fade lengths are uniform in ``0..launch_ramp_days`` and
    ``0..fade_days``.
    """
    n_sku, t_max = spec.num_skus, num_days
    launched = rng.random(n_sku) < spec.launch_share
    launch = np.where(launched, rng.integers(1, max(int(0.9 * t_max), 1) + 1, n_sku), 0)
    launch = np.minimum(launch, t_max - 1)
    ended = rng.random(n_sku) < spec.discontinue_share
    span = t_max - launch
    end = launch + np.ceil(rng.uniform(0.2, 1.0, n_sku) * (span - 1)).astype(int)
    end = np.where(ended & (span > 1), np.clip(end, launch + 1, t_max - 1), t_max)
    ramp = np.where(launched, rng.integers(0, spec.launch_ramp_days + 1, n_sku), 0)
    fade = np.where(end < t_max, rng.integers(0, spec.fade_days + 1, n_sku), 0)
    return Lifecycle(launch, end, ramp, fade)


def lifecycle_factor(life: Lifecycle, num_days: int) -> np.ndarray:
    """``[T, S]`` life-cycle multiplier: 0 outside ``[launch, end)``, ramps in [0, 1].

    On day ``t`` the ramp is ``min(1, (t - launch + 1) / (ramp + 1))`` and the fade
    ``min(1, (end - t) / (fade + 1))``, so both are 1 without a ramp or fade.
    """
    t = np.arange(num_days)[:, None]
    up = np.clip((t - life.launch + 1) / (life.ramp + 1.0), 0.0, 1.0)
    down = np.clip((life.end - t) / (life.fade + 1.0), 0.0, 1.0)
    return up * down


def promo_dips(promo: np.ndarray, uplift: np.ndarray, spec: SyntheticSpec) -> np.ndarray:
    """``[T, R]`` pull-forward (before) and hangover (after) multipliers of promotions.

    Args:
        promo: ``[T, R]`` 0/1 calendar.
        uplift: ``[R]`` promotion uplift (>= 1).
        spec: ``pre_promo_days``, ``pre_promo_dip``, ``post_promo_days``,
            ``post_promo_dip``.

    Returns:
        ``[T, R]`` factors in ``(0, 1]``, 1 on promotion days.
    """
    on = promo > 0
    before = np.zeros_like(on)
    before[1:] = on[:-1]
    starts = on & ~before  # first day of a promotion
    ends = ~on & before  # first day after one
    pre = np.zeros(on.shape)
    for k in range(1, spec.pre_promo_days + 1):  # k days before the start
        weight = 1.0 - (k - 1) / spec.pre_promo_days
        pre[:-k] = np.maximum(pre[:-k], weight * starts[k:])
    post = np.zeros(on.shape)
    for k in range(min(spec.post_promo_days, on.shape[0])):  # k days after the first
        weight = 1.0 - k / spec.post_promo_days
        post[k:] = np.maximum(post[k:], weight * ends[: on.shape[0] - k])
    depth = np.minimum(spec.post_promo_dip * np.maximum(uplift - 1.0, 0.0), MAX_POST_DIP)
    factor = (1.0 - spec.pre_promo_dip * pre) * (1.0 - depth * post)
    return np.where(on, 1.0, factor)


def memory_multiplier(rng: np.random.Generator, spec: SyntheticSpec, sku_idx: np.ndarray,
                      promo: np.ndarray, uplift: np.ndarray,
                      life_factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[T, R]`` multiplier ``m`` of the module docstring, and ``[S]`` AR persistence.

    Args:
        rng: generator (for the AR shocks and level shifts).
        spec: the memory fields of :class:`~orpr_jax.data.synthetic.SyntheticSpec`.
        sku_idx: ``[R]`` SKU of each row.
        promo: ``[T, R]`` 0/1 promotion calendar (already cleared outside the active
            window).
        uplift: ``[R]`` promotion uplift.
        life_factor: ``[T, S]`` :func:`lifecycle_factor`.
    """
    num_days, n_rows = promo.shape
    log_m, phi = ar_log_level(rng, spec, sku_idx, num_days)
    log_m += level_shifts(rng, spec, n_rows, num_days)
    mult = np.exp(log_m)
    mult *= life_factor[:, sku_idx]
    mult *= promo_dips(promo, uplift, spec)
    return mult, phi
