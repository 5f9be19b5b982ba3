"""Difference-in-differences: the two-way fixed-effects estimate of a treated x post
effect on a row x period panel, row-clustered (CRV1) standard errors and a pre-trend
check. Plain NumPy/SciPy on host arrays.

References:
    Bertrand, M., Duflo, E., Mullainathan, S. (2004). How much should we trust
        differences-in-differences estimates? QJE 119(1), 249-275.
    Cameron, A. C., Miller, D. L. (2015). A practitioner's guide to cluster-robust
        inference. Journal of Human Resources 50(2), 317-372.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Float
from scipy import stats

from orpr_jax.evaluation.field_test._arrays import _bool_vector, _real_array

__all__ = ["DiDResult", "did_estimate"]


@dataclasses.dataclass(frozen=True)
class DiDResult:
    """A two-way fixed-effects difference-in-differences estimate.

    Attributes:
        effect: coefficient of ``treated x post`` in ``y ~ row FE + period FE +
            treated x post`` (for a balanced panel, ``(T_post - T_pre) - (C_post -
            C_pre)`` of the group-period means).
        se: its standard error (row-clustered CRV1, or classical with ``cluster="none"``).
        t_stat: ``effect / se``.
        p_value: two-sided p-value from a t distribution with ``dof`` degrees of freedom.
        ci_low, ci_high: 95% confidence interval, same t distribution.
        dof: degrees of freedom (``G - 1`` clusters when clustered).
        num_rows: rows with at least one observed cell (the clusters G).
        num_treated: treated rows among them.
        num_obs: observed (non-NaN) cells used.
        treated_pre, treated_post, control_pre, control_post: means of the observed
            cells of each group and phase.
        pretrend_slope: difference between the treated and control linear trends over the
            pre-periods, per period (the coefficient of ``treated x period index`` in a
            two-way fixed-effects regression on the pre-period cells); NaN with fewer than
            two pre-periods.
        pretrend_se: its standard error (same ``cluster`` choice).
        pretrend_p: its two-sided p-value; a small value flags differential pre-trends,
            i.e. evidence against the parallel-trends assumption.
        cluster: ``"row"`` or ``"none"``.
    """

    effect: float
    se: float
    t_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    dof: int
    num_rows: int
    num_treated: int
    num_obs: int
    treated_pre: float
    treated_post: float
    control_pre: float
    control_post: float
    pretrend_slope: float
    pretrend_se: float
    pretrend_p: float
    cluster: str


def _two_way_demean(z: np.ndarray, w: np.ndarray, tol: float = 1e-11,
                    max_iter: int = 10_000) -> np.ndarray:
    """Residual of ``z`` on row and column effects over the cells where ``w == 1``.

    Alternating projections (demean rows, then columns, until the row means vanish); a
    balanced panel converges in one sweep (``z - row mean - column mean + grand mean``),
    an unbalanced one geometrically.
    """
    z = np.where(w > 0, z, 0.0)
    row_n = np.maximum(w.sum(axis=1), 1.0)
    col_n = np.maximum(w.sum(axis=0), 1.0)
    scale = 1.0 + np.max(np.abs(z))
    for _ in range(max_iter):
        z = z - w * (z.sum(axis=1) / row_n)[:, None]
        z = z - w * (z.sum(axis=0) / col_n)[None, :]
        if np.max(np.abs(z.sum(axis=1) / row_n)) <= tol * scale:
            break
    return z


def _interaction_fit(y: np.ndarray, x: np.ndarray, w: np.ndarray, cluster: str):
    """Coefficient of ``x`` in ``y ~ row FE + column FE + x`` on cells ``w == 1``.

    Returns ``(beta, se, dof, n, G)`` or None when ``x`` has no variation left after the
    fixed effects (the coefficient is not identified).

    The clustered variance is the CRV1 sandwich ``c * sum_g (sum_t x~_gt e_gt)^2 /
    (sum x~^2)^2`` (by Frisch-Waugh-Lovell the residualised regressor ``x~`` gives the
    coefficient's row of ``(X'X)^-1 X'``) with ``c = G/(G-1) * (n-1)/(n-K)``, ``K`` the
    column effects plus the coefficient; row effects are nested in the row clusters and
    not counted, as in Stata's ``xtreg, fe vce(cluster)`` and fixest's default.
    """
    rows = w.sum(axis=1) > 0
    cols = w.sum(axis=0) > 0
    y, x, w = y[rows][:, cols], x[rows][:, cols], w[rows][:, cols]
    g, t = w.shape
    n = float(w.sum())
    yt = _two_way_demean(y, w)
    xt = _two_way_demean(x, w)
    sxx = float(np.sum(xt * xt))
    if sxx <= 1e-12 * max(1.0, float(np.sum(w * x * x))):
        return None
    beta = float(np.sum(xt * yt)) / sxx
    resid = w * (yt - beta * xt)
    if cluster == "row":
        k = t
        if g < 2 or n <= k:
            return None
        score = np.sum(xt * resid, axis=1)
        c = g / (g - 1.0) * (n - 1.0) / (n - k)
        var = c * float(np.sum(score * score)) / sxx**2
        dof = g - 1
    else:
        dof = int(n) - g - t
        if dof < 1:
            return None
        var = float(np.sum(resid * resid)) / dof / sxx
    return beta, float(np.sqrt(var)), dof, int(n), g


def _t_inference(est: float, se: float, dof: int) -> tuple[float, float, float, float]:
    """``(t, p, ci_low, ci_high)`` for a t distribution with ``dof`` degrees of freedom."""
    if not se > 0:
        t = 0.0 if est == 0 else float(np.sign(est)) * np.inf
        p = 1.0 if est == 0 else 0.0
        return t, p, est, est
    t = est / se
    p = float(2.0 * stats.t.sf(abs(t), dof))
    q = float(stats.t.ppf(0.975, dof))
    return float(t), p, est - q * se, est + q * se


def _cell_mean(y: np.ndarray, w: np.ndarray) -> float:
    n = float(w.sum())
    return float(np.sum(np.where(w > 0, y, 0.0)) / n) if n > 0 else float("nan")



def did_estimate(
    panel_y: Float[np.ndarray, "N T"],
    treated: Bool[np.ndarray, " N"],
    post: Bool[np.ndarray, " T"],
    *,
    cluster: str = "row",
) -> DiDResult:
    """Difference-in-differences by two-way fixed effects, clustered by row.

    Fits ``y_it = a_i + g_t + beta * treated_i * post_t + e_it`` by OLS on the observed
    cells. For a balanced panel ``beta = (T_post - T_pre) - (C_post - C_pre)``, the
    difference of the group-phase means; NaN cells are treated as missing (the fixed
    effects are then swept out by alternating projections and ``beta`` is the OLS
    coefficient of the unbalanced panel). Rows are the clusters (Bertrand et al. 2004:
    serially correlated outcomes make unclustered DiD standard errors far too small).

    The pre-trend check regresses the pre-period cells on row and period effects plus
    ``treated_i * k`` (k the index of the pre-period, 0, 1, ...); its coefficient is the
    treated-minus-control difference in linear trends per period. Under parallel trends
    it is zero; a small ``pretrend_p`` flags a violation (or selection on a
    trending outcome).

    Args:
        panel_y: ``[N, T]`` outcome per row and period (float; NaN = missing cell).
        treated: ``[N]`` bool, True for treated rows.
        post: ``[T]`` bool, True for periods after the switch.
        cluster: ``"row"`` for row-clustered CRV1 standard errors with the small-sample
            factor ``G/(G-1) * (n-1)/(n-K)`` and ``G - 1`` degrees of freedom (Cameron and
            Miller 2015), or ``"none"`` for classical i.i.d. standard errors.

    Returns:
        A :class:`DiDResult`.

    Raises:
        ValueError: if ``panel_y`` is not a 2-D real array with finite or NaN cells,
            ``treated`` / ``post`` do not have one entry per row / period, there are no
            treated or no control rows (with an observed cell), no pre or no post periods,
            ``cluster`` is not ``"row"`` or ``"none"``, or the effect is not identified
            (no treated post cell or no variation left after the fixed effects).

    References:
        Bertrand, Duflo and Mullainathan (2004); Cameron and Miller (2015).
    """
    y = _real_array("panel_y", panel_y)
    if y.ndim != 2:
        raise ValueError(f"panel_y has shape {y.shape}; expected [rows, periods]")
    n_rows, n_periods = y.shape
    treated = _bool_vector("treated", treated, n_rows, "row of panel_y")
    post = _bool_vector("post", post, n_periods, "period (column) of panel_y")
    if cluster not in ("row", "none"):
        raise ValueError(f"cluster={cluster!r} is not allowed; use 'row' or 'none'")
    w = np.isfinite(y).astype(np.float64)
    has_obs = w.sum(axis=1) > 0
    if not np.any(treated & has_obs):
        raise ValueError("treated has no True entry with an observed cell; expected at "
                         "least one treated row")
    if not np.any(~treated & has_obs):
        raise ValueError("treated has no False entry with an observed cell; expected at "
                         "least one control row")
    if not np.any(post):
        raise ValueError("post has no True entry; expected at least one post period")
    if np.all(post):
        raise ValueError("post has no False entry; expected at least one pre period")
    y = np.where(w > 0, y, 0.0)
    d = (treated[:, None] & post[None, :]).astype(np.float64)
    fit = _interaction_fit(y, d, w, cluster)
    if fit is None:
        raise ValueError("the effect is not identified: treated x post has no variation "
                         "after the row and period effects (check panel_y's NaN cells)")
    effect, se, dof, n_obs, g = fit
    t, p, lo, hi = _t_inference(effect, se, dof)

    pre_cols = np.flatnonzero(~post)
    slope = slope_se = slope_p = float("nan")
    if pre_cols.size >= 2:
        k = np.arange(pre_cols.size, dtype=np.float64)
        x_trend = treated[:, None].astype(np.float64) * (k - k.mean())[None, :]
        trend = _interaction_fit(y[:, pre_cols], x_trend, w[:, pre_cols], cluster)
        if trend is not None:
            slope, slope_se, trend_dof = trend[0], trend[1], trend[2]
            slope_p = _t_inference(slope, slope_se, trend_dof)[1]

    tr, co = treated[:, None], ~treated[:, None]
    pre_m, post_m = ~post[None, :], post[None, :]
    return DiDResult(
        effect=effect,
        se=se,
        t_stat=t,
        p_value=p,
        ci_low=lo,
        ci_high=hi,
        dof=dof,
        num_rows=g,
        num_treated=int(np.sum(treated & has_obs)),
        num_obs=n_obs,
        treated_pre=_cell_mean(y, w * (tr & pre_m)),
        treated_post=_cell_mean(y, w * (tr & post_m)),
        control_pre=_cell_mean(y, w * (co & pre_m)),
        control_post=_cell_mean(y, w * (co & post_m)),
        pretrend_slope=slope,
        pretrend_se=slope_se,
        pretrend_p=slope_p,
        cluster=cluster,
    )

