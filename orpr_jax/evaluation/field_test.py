"""A simulated field test: a new policy on treated rows against the incumbent on control
rows, analysed by difference-in-differences and propensity-score matching.

The ORPR paper validates its policy in a field experiment: a set of SKU x warehouse rows
switches to the new policy while the others stay on the incumbent rule, and the effect
on the field metrics (turnover days, in-stock rate, holding cost) is the
difference-in-differences (DiD) of treated against control rows before and after the
switch. :func:`run_field_test` replays that design in the simulator:

1. one simulation of ``warmup_days + pre_days + post_days`` days in which every row plays
   the incumbent until the switch day and the treated rows play the new policy from then
   on (:class:`Mixed`, a per-row switch inside one ``rollout``);
2. per-row, per-period (weekly by default) panels of the field metrics
   (:func:`field_panels`);
3. per metric: the two-way fixed-effects DiD with row-clustered standard errors and a
   pre-trend check (:func:`did_estimate`), and a propensity-score matched ATT on the
   pre-to-post change (:func:`propensity_matched_effect`);
4. a report table (:func:`field_test_table`, :func:`field_test_markdown`).

Treatment is assigned at random (``treatment="random"``), or the way a manager would
pick rows (``treatment="rule"``): preferentially the rows with the highest pre-period
turnover days. The second design is selected on a (noisy) pre-period outcome, so the
plain DiD suffers from mean reversion; the pre-trend check and the match on pre-period
covariates are the diagnostics and the remedy for that.

The estimators are plain NumPy/SciPy on host arrays and know nothing of the simulator.

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory management, arXiv 2512.19001
        (the field experiment and its DiD analysis).
    Bertrand, M., Duflo, E., Mullainathan, S. (2004). How much should we trust
        differences-in-differences estimates? QJE 119(1), 249-275.
    Cameron, A. C., Miller, D. L. (2015). A practitioner's guide to cluster-robust
        inference. Journal of Human Resources 50(2), 317-372.
    Abadie, A., Imbens, G. W. (2006). Large sample properties of matching estimators for
        average treatment effects. Econometrica 74(1), 235-267.
    Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when
        estimating differences in means and differences in proportions in observational
        studies. Pharmaceutical Statistics 10(2), 150-161.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Bool, Float
from scipy import stats

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.rollout import Policy, rollout
from orpr_jax.sim.types import DayOutcome, Observation, SimParams

__all__ = [
    "METRICS",
    "DiDResult",
    "FieldTestResult",
    "MatchedResult",
    "MetricResult",
    "Mixed",
    "did_estimate",
    "field_panels",
    "field_test_markdown",
    "field_test_table",
    "propensity_matched_effect",
    "run_field_test",
]

#: Field metrics of the per-row, per-period panels, in report order.
METRICS = ("turnover_days", "in_stock_rate", "holding_cost", "total_cost")

#: Row-level pre-period covariates used for the propensity score in :func:`run_field_test`.
COVARIATES = (
    "log1p_turnover_days",
    "in_stock_rate",
    "log1p_demand",
    "log1p_holding_cost",
    "lead_time_mean",
    "review_period",
)

# ---------------------------------------------------------------------------------------
# Difference-in-differences.


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


def _bool_vector(name: str, value: Any, length: int, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({length},), one per {what}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name} must be boolean (or 0/1); got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def _real_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.any(np.isinf(arr)):
        raise ValueError(f"{name} contains {arr[np.isinf(arr)][0]!r}; expected finite values "
                         "(NaN marks a missing cell)")
    return arr


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


# ---------------------------------------------------------------------------------------
# Propensity-score matching.


@dataclasses.dataclass(frozen=True)
class MatchedResult:
    """A propensity-score matched ATT on the pre-to-post change.

    Attributes:
        att: mean over matched treated rows of ``change_i - change_j(i)``, ``change = y_post
            - mean(y_pre)`` and ``j(i)`` the nearest control in the logit propensity score.
        se: Abadie-Imbens (2006) standard error for matching with replacement (see
            :func:`propensity_matched_effect`).
        t_stat: ``att / se``.
        p_value: two-sided normal p-value.
        ci_low, ci_high: 95% normal confidence interval.
        naive: unmatched difference of mean changes, treated minus control (the 2x2 DiD
            of the rows used), for comparison.
        num_treated: treated rows with a usable outcome.
        num_matched: those with a control within the caliper (the ATT is over these).
        num_unmatched: treated rows dropped by the caliper.
        num_controls: control rows with a usable outcome.
        num_controls_used: distinct controls used as matches.
        caliper: the caliper in logit-propensity units.
        propensity: ``[N]`` fitted propensity scores (NaN for rows without a usable
            outcome).
        smd_before: ``[F]`` standardised mean differences of the covariates, treated
            minus control, over all usable rows.
        smd_after: ``[F]`` the same for matched treated rows against their matches
            (controls weighted by how often they are used); same denominators.
    """

    att: float
    se: float
    t_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    naive: float
    num_treated: int
    num_matched: int
    num_unmatched: int
    num_controls: int
    num_controls_used: int
    caliper: float
    propensity: np.ndarray
    smd_before: np.ndarray
    smd_after: np.ndarray


def _logistic_fit(x: np.ndarray, t: np.ndarray, ridge: float, steps: int) -> np.ndarray:
    """Newton-Raphson logistic regression of ``t`` on ``[1, x]`` (``x`` standardised);
    a small ridge on the slopes keeps it finite under (quasi-)separation."""
    design = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], ridge)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (t - p) - penalty * beta
        hess = (design * (p * (1.0 - p))[:, None]).T @ design
        hess = hess + np.diag(penalty + 1e-10)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return design @ beta


def _nearest(sorted_scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index into ``sorted_scores`` of the nearest value to each ``query`` (ties: lower)."""
    right = np.clip(np.searchsorted(sorted_scores, query), 0, sorted_scores.size - 1)
    left = np.clip(right - 1, 0, sorted_scores.size - 1)
    use_left = np.abs(query - sorted_scores[left]) <= np.abs(sorted_scores[right] - query)
    return np.where(use_left, left, right)


def _smd(xt: np.ndarray, xc: np.ndarray, wc: np.ndarray, denom: np.ndarray) -> np.ndarray:
    diff = xt.mean(axis=0) - (wc[:, None] * xc).sum(axis=0) / wc.sum()
    return np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)


def propensity_matched_effect(
    y_pre: Float[np.ndarray, "N k"],
    y_post: Float[np.ndarray, " N"],
    covariates: Float[np.ndarray, "N F"],
    treated: Bool[np.ndarray, " N"],
    *,
    caliper: float = 0.2,
    ridge: float = 1e-4,
    newton_steps: int = 25,
) -> MatchedResult:
    """ATT on the pre-to-post change by 1:1 nearest-neighbour propensity-score matching.

    1. ``change_i = y_post_i - mean_k y_pre_ik`` (NaN pre cells ignored); rows with no
       finite pre cell or a NaN ``y_post`` are left out.
    2. The propensity ``e(x) = P(treated | x)`` is a logistic regression on the
       standardised covariates, fitted with Newton steps (a tiny ridge on the slopes).
    3. Each treated row is matched, with replacement, to the control nearest in the logit
       of the propensity; treated rows with no control within ``caliper`` standard
       deviations of the logit (Austin 2011 recommends 0.2) are dropped.
    4. ``ATT = mean_i (change_i - change_j(i))`` over the matched treated rows.

    Standard error (Abadie and Imbens 2006, the ATT variance with M = 1)::

        V = [ sum_i (change_i - change_j(i) - ATT)^2 + sum_j K_j (K_j - 1) s_j^2 ] / m^2

    with ``m`` matched treated rows, ``K_j`` the times control j is used, and ``s_j^2 =
    (change_j - change_l)^2 / 2`` from control j's nearest other control l in the score.
    The second term charges for re-using controls, which a plain paired-difference SE
    ignores. The propensity score is treated as known (its estimation error is not
    propagated).

    Args:
        y_pre: ``[N, k]`` pre-period outcomes (``[N]`` is read as k = 1).
        y_post: ``[N]`` post-period outcome (e.g. the mean over the post periods).
        covariates: ``[N, F]`` pre-treatment covariates (``[N]`` is read as F = 1).
        treated: ``[N]`` bool.
        caliper: maximum match distance in standard deviations of the logit propensity
            (> 0; ``np.inf`` for no caliper).
        ridge: L2 penalty on the standardised logistic slopes (>= 0).
        newton_steps: maximum Newton steps (>= 1).

    Returns:
        A :class:`MatchedResult`.

    Raises:
        ValueError: on mismatched shapes, non-finite covariates, no usable treated row,
            fewer than two usable control rows, no treated row matched within the caliper,
            or ``caliper`` / ``ridge`` / ``newton_steps`` out of range.

    References:
        Rosenbaum, P. R., Rubin, D. B. (1983). The central role of the propensity score
        in observational studies for causal effects. Biometrika 70(1), 41-55.
        Abadie and Imbens (2006); Austin (2011).
    """
    pre = _real_array("y_pre", y_pre)
    if pre.ndim == 1:
        pre = pre[:, None]
    if pre.ndim != 2:
        raise ValueError(f"y_pre has shape {pre.shape}; expected [rows, pre periods]")
    n = pre.shape[0]
    post = _real_array("y_post", y_post)
    if post.shape != (n,):
        raise ValueError(f"y_post has shape {post.shape}; expected ({n},), one per row of "
                         "y_pre")
    cov = _real_array("covariates", covariates)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.ndim != 2 or cov.shape[0] != n:
        raise ValueError(f"covariates has shape {cov.shape}; expected ({n}, F), one line per "
                         "row of y_pre")
    if not np.all(np.isfinite(cov)):
        raise ValueError("covariates contains NaN; expected finite values")
    treated = _bool_vector("treated", treated, n, "row of y_pre")
    if not (caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; expected a number > 0")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge={ridge!r} is not allowed; expected a finite number >= 0")
    if isinstance(newton_steps, bool) or not isinstance(newton_steps, int) or newton_steps < 1:
        raise ValueError(f"newton_steps={newton_steps!r} is not allowed; expected an "
                         "integer >= 1")

    pre_n = np.isfinite(pre).sum(axis=1)
    pre_mean = np.where(pre_n > 0, np.where(np.isfinite(pre), pre, 0.0).sum(axis=1)
                        / np.maximum(pre_n, 1), np.nan)
    change = post - pre_mean
    usable = np.isfinite(change)
    tr, co = usable & treated, usable & ~treated
    if not np.any(tr):
        raise ValueError("treated has no True entry with a usable outcome (finite y_post "
                         "and at least one finite y_pre cell); expected at least one")
    if np.sum(co) < 2:
        raise ValueError(f"treated has {int(np.sum(co))} False entries with a usable "
                         "outcome; expected at least two control rows")

    x = cov[usable]
    sd = x.std(axis=0)
    z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    t_use = treated[usable]
    score = _logistic_fit(z, t_use.astype(np.float64), ridge, newton_steps)
    score_sd = float(score.std())
    cal = float(caliper) * score_sd if np.isfinite(caliper) else np.inf

    ch = change[usable]
    s_t, s_c = score[t_use], score[~t_use]
    ch_t, ch_c = ch[t_use], ch[~t_use]
    order = np.argsort(s_c, kind="stable")
    sc_sorted, chc_sorted = s_c[order], ch_c[order]
    nn = _nearest(sc_sorted, s_t)
    ok = np.abs(s_t - sc_sorted[nn]) <= cal
    m = int(np.sum(ok))
    if m == 0:
        raise ValueError(f"caliper={caliper!r} leaves no treated row matched; expected a "
                         "larger caliper")
    diffs = ch_t[ok] - chc_sorted[nn[ok]]
    att = float(diffs.mean())
    uses = np.bincount(nn[ok], minlength=sc_sorted.size).astype(np.float64)
    # Conditional variance of each control's change from its nearest other control.
    idx = np.arange(sc_sorted.size)
    prev_i, next_i = np.clip(idx - 1, 0, idx.size - 1), np.clip(idx + 1, 0, idx.size - 1)
    gap_prev = np.where(idx > 0, sc_sorted - sc_sorted[prev_i], np.inf)
    gap_next = np.where(idx < idx.size - 1, sc_sorted[next_i] - sc_sorted, np.inf)
    other = np.where(gap_prev <= gap_next, prev_i, next_i)
    s2 = 0.5 * (chc_sorted - chc_sorted[other]) ** 2
    var = (np.sum((diffs - att) ** 2) + np.sum(uses * (uses - 1.0) * s2)) / m**2
    se = float(np.sqrt(var))
    if se > 0:
        t_stat = att / se
        p = float(2.0 * stats.norm.sf(abs(t_stat)))
    else:
        t_stat, p = (0.0, 1.0) if att == 0 else (float(np.sign(att)) * np.inf, 0.0)
    q = float(stats.norm.ppf(0.975))

    x_t, x_c = x[t_use], x[~t_use][order]
    denom = np.sqrt(0.5 * (x_t.var(axis=0) + x_c.var(axis=0)))
    smd_before = _smd(x_t, x_c, np.ones(x_c.shape[0]), denom)
    smd_after = _smd(x_t[ok], x_c, uses, denom)
    propensity = np.full(n, np.nan)
    propensity[usable] = 1.0 / (1.0 + np.exp(-score))
    return MatchedResult(
        att=att,
        se=se,
        t_stat=float(t_stat),
        p_value=p,
        ci_low=att - q * se,
        ci_high=att + q * se,
        naive=float(ch_t.mean() - ch_c.mean()),
        num_treated=int(np.sum(tr)),
        num_matched=m,
        num_unmatched=int(np.sum(tr)) - m,
        num_controls=int(np.sum(co)),
        num_controls_used=int(np.sum(uses > 0)),
        caliper=cal,
        propensity=propensity,
        smd_before=smd_before,
        smd_after=smd_after,
    )


# ---------------------------------------------------------------------------------------
# The simulation.


@struct.dataclass
class Mixed:
    """Plays ``new`` on treated rows from ``switch_day`` on and ``old`` everywhere else.

    Both policies are called on the full observation with the same key, and the orders
    are selected per row, so each policy sees exactly what it would see alone; before
    ``switch_day`` the orders are those of ``old`` on every row.

    Attributes:
        treated_mask: ``[R]`` bool, True for treated rows.
        new: the new policy pytree, ``new(obs, key) -> [R]``.
        old: the incumbent policy pytree, ``old(obs, key) -> [R]``.
        switch_day: ``[]`` int32 first day (``obs.t``, days since reset) of the new policy.
    """

    treated_mask: jax.Array
    new: Any
    old: Any
    switch_day: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        q_old = self.old(obs, key)
        q_new = self.new(obs, key).astype(q_old.dtype)
        on_new = self.treated_mask & (obs.t >= self.switch_day)
        return jnp.where(on_new, q_new, q_old)


def field_panels(
    outcomes: DayOutcome, first_day: int, num_periods: int, period_days: int
) -> dict[str, np.ndarray]:
    """Per-row, per-period panels of the field metrics from a ``[T, R]`` trajectory.

    Period p covers days ``first_day + p * period_days`` to ``first_day + (p + 1) *
    period_days - 1`` of ``outcomes``.

    Args:
        outcomes: :class:`~orpr_jax.sim.types.DayOutcome` with ``[T, R]`` leaves.
        first_day: first day of period 0 (index into T).
        num_periods: periods P.
        period_days: days per period.

    Returns:
        ``{metric: [R, P] float64}`` for :data:`METRICS`: ``turnover_days`` (sum of
        end-of-day stock / sum of sales; NaN for a period without sales),
        ``in_stock_rate`` (share of days in stock), ``holding_cost`` and ``total_cost``
        (sums over the period).
    """
    last = first_day + num_periods * period_days

    def sums(leaf):
        arr = np.asarray(leaf, np.float64)[first_day:last]
        return arr.reshape(num_periods, period_days, -1).sum(axis=1).T

    on_hand, sales = sums(outcomes.on_hand_end), sums(outcomes.sales)
    turnover = np.full(on_hand.shape, np.nan)
    np.divide(on_hand, sales, out=turnover, where=sales > 0)
    return {
        "turnover_days": turnover,
        "in_stock_rate": sums(outcomes.in_stock) / period_days,
        "holding_cost": sums(outcomes.holding_cost),
        "total_cost": sums(outcomes.cost),
    }


@dataclasses.dataclass(frozen=True)
class MetricResult:
    """One field metric of a field test.

    Attributes:
        name: the metric (one of :data:`METRICS`).
        did: the difference-in-differences estimate.
        matched: the propensity-matched ATT on the pre-to-post change of the row means.
        treated_pre, treated_post, control_pre, control_post: means of the observed
            panel cells of each group and phase.
        panel: ``[R, P]`` the metric per row and period (NaN = undefined cell).
    """

    name: str
    did: DiDResult
    matched: MatchedResult
    treated_pre: float
    treated_post: float
    control_pre: float
    control_post: float
    panel: np.ndarray


@dataclasses.dataclass(frozen=True)
class FieldTestResult:
    """Outcome of :func:`run_field_test`.

    Attributes:
        metrics: ``{name: MetricResult}`` for :data:`METRICS`, in that order.
        treated: ``[R]`` bool assignment.
        post: ``[P]`` bool, True for post-switch periods.
        covariates: ``[R, F]`` pre-period row covariates used for the propensity score.
        covariate_names: their names (:data:`COVARIATES`).
        row_ids: ``[R]`` row ids of the data set.
        treatment: ``"random"`` or ``"rule"``.
        treated_fraction: realised share of treated rows.
        start: first simulated day of the data panel.
        warmup_days, pre_days, post_days, period_days: the design.
        switch_day: simulated day (since reset) on which treated rows switch.
    """

    metrics: dict[str, MetricResult]
    treated: np.ndarray
    post: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    row_ids: np.ndarray
    treatment: str
    treated_fraction: float
    start: int
    warmup_days: int
    pre_days: int
    post_days: int
    period_days: int
    switch_day: int


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= {low}")


def _pre_covariates(outcomes: DayOutcome, data: InventoryData, lo: int, hi: int) -> np.ndarray:
    """``[R, F]`` row covariates (:data:`COVARIATES`) over days ``lo..hi-1``."""

    def total(leaf):
        return np.asarray(leaf, np.float64)[lo:hi].sum(axis=0)

    days = hi - lo
    on_hand, sales = total(outcomes.on_hand_end), total(outcomes.sales)
    return np.stack(
        [
            np.log1p(on_hand / np.maximum(sales, 1.0)),
            total(outcomes.in_stock) / days,
            np.log1p(total(outcomes.demand) / days),
            np.log1p(total(outcomes.holding_cost) / days),
            data.rows["lead_time_mean"].to_numpy(np.float64),
            data.rows["review_period"].to_numpy(np.float64),
        ],
        axis=1,
    )


def _row_mean(panel: np.ndarray) -> np.ndarray:
    n = np.isfinite(panel).sum(axis=1)
    total = np.where(np.isfinite(panel), panel, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def run_field_test(
    data: InventoryData,
    policy_factory: Callable[[InventoryEnv, SimParams], Policy],
    incumbent: Policy,
    key: jax.Array,
    *,
    treatment: str = "random",
    treated_fraction: float = 0.5,
    pre_days: int = 56,
    post_days: int = 56,
    start: int = 28,
    period_days: int = 7,
    warmup_days: int = 28,
    seed: int = 0,
    rule_noise: float = 1.0,
    caliper: float = 0.2,
    cluster: str = "row",
    stochastic_lead_time: bool = True,
) -> FieldTestResult:
    """Simulates the paper's field test and analyses it per field metric.

    The data panel is replayed from day ``start`` for ``warmup_days + pre_days +
    post_days`` days in one :func:`~orpr_jax.sim.rollout.rollout` of :class:`Mixed`:
    all rows play ``incumbent`` until ``switch_day = warmup_days + pre_days``, then the
    treated rows play the new policy. The warm-up is discarded; the pre and post windows
    are cut into periods of ``period_days`` days (:func:`field_panels`) and each metric's
    ``[R, P]`` panel goes through :func:`did_estimate` and
    :func:`propensity_matched_effect` (pre-period covariates :data:`COVARIATES`; outcome
    the row's post-period mean minus its pre-period mean).

    Assignment (``round(treated_fraction * R)`` rows, seeded by ``seed``):

    * ``"random"``: a uniformly random set of rows.
    * ``"rule"``: a manager-style choice: the rows with the highest ``z(log(1 +
      pre-period turnover days)) + rule_noise * N(0, 1)``, turnover days over the whole
      pre window (sales floored at one unit). Selection is on an observed pre-period
      outcome, so the DiD can be biased by mean reversion while the propensity match on
      the covariates (which include that turnover) is not; ``rule_noise > 0`` keeps the
      propensity away from 0 and 1 so matches exist. The pre window does not depend on the
      assignment (nobody has switched yet), so it is read from a first run with no row
      treated, whose program and random numbers the real run reuses.

    Args:
        data: the data set (:class:`~orpr_jax.data.dataset.InventoryData`).
        policy_factory: ``policy_factory(env, params) -> policy``, building the new policy
            for the field-test env (e.g. ``lambda env, params: base_stock(20.0)``); a
            policy pytree (a dataclass instance such as ``BaseStock`` or
            ``FoundationPolicy``) is used as is.
        incumbent: the incumbent policy pytree, ``incumbent(obs, key) -> [R]``.
        key: PRNG key of the simulation (demand is replayed; lead times and stochastic
            policies draw from it).
        treatment: ``"random"`` or ``"rule"``.
        treated_fraction: share of treated rows, in (0, 1).
        pre_days: days before the switch analysed (a multiple of ``period_days``, at least
            two periods so the pre-trend can be checked).
        post_days: days after the switch analysed (a positive multiple of ``period_days``).
        start: first simulated day of the data panel (>= 0; the days before it seed the
            sales history).
        period_days: days per panel period (>= 1; 7 for weekly panels).
        warmup_days: days simulated before the pre window and discarded (>= 0).
        seed: seed of the assignment.
        rule_noise: noise of the ``"rule"`` score, in standard deviations (>= 0).
        caliper: matching caliper in standard deviations of the logit propensity.
        cluster: standard errors of the DiD, ``"row"`` or ``"none"``.
        stochastic_lead_time: draw lead times per order (see
            :func:`~orpr_jax.data.dataset.env_from_data`).

    Returns:
        A :class:`FieldTestResult`.

    Raises:
        ValueError: if ``treatment``, ``treated_fraction`` (or the treated count it
            implies), ``period_days``, ``pre_days``, ``post_days``, ``warmup_days``,
            ``start``, ``rule_noise``, ``caliper`` or ``cluster`` is out of range, the
            window does not fit the data panel, or ``policy_factory`` returns something
            that is not callable.
    """
    if treatment not in ("random", "rule"):
        raise ValueError(f"treatment={treatment!r} is not allowed; use 'random' or 'rule'")
    if isinstance(treated_fraction, bool) or not (
        isinstance(treated_fraction, float | int) and 0.0 < treated_fraction < 1.0
    ):
        raise ValueError(f"treated_fraction={treated_fraction!r} is not allowed; expected a "
                         "number in (0, 1)")
    _check_int("period_days", period_days, 1)
    _check_int("warmup_days", warmup_days, 0)
    _check_int("start", start, 0)
    _check_int("seed", seed, 0)
    _check_int("pre_days", pre_days, 2 * period_days)
    if pre_days % period_days:
        raise ValueError(f"pre_days={pre_days!r} is not allowed; expected a multiple of "
                         f"period_days={period_days}")
    _check_int("post_days", post_days, period_days)
    if post_days % period_days:
        raise ValueError(f"post_days={post_days!r} is not allowed; expected a multiple of "
                         f"period_days={period_days}")
    if not (np.isfinite(rule_noise) and rule_noise >= 0):
        raise ValueError(f"rule_noise={rule_noise!r} is not allowed; expected a finite "
                         "number >= 0")
    if not (caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; expected a number > 0")
    if cluster not in ("row", "none"):
        raise ValueError(f"cluster={cluster!r} is not allowed; use 'row' or 'none'")
    num_rows = data.num_rows
    num_treated = int(round(treated_fraction * num_rows))
    if not 1 <= num_treated <= num_rows - 1:
        raise ValueError(
            f"treated_fraction={treated_fraction!r} is not allowed for {num_rows} rows: it "
            f"treats {num_treated}; expected between 1 and {num_rows - 1} treated rows"
        )
    total_days = warmup_days + pre_days + post_days
    if start + total_days > data.num_days:
        raise ValueError(
            f"start={start} is not allowed: the field test needs warmup_days + pre_days + "
            f"post_days = {total_days} days and the panel has {data.num_days}; expected "
            f"start <= {data.num_days - total_days}"
        )

    env, params = env_from_data(data, start=start, num_days=total_days,
                                stochastic_lead_time=stochastic_lead_time)
    if dataclasses.is_dataclass(policy_factory) and not isinstance(policy_factory, type):
        new = policy_factory  # a policy pytree passed directly
    else:
        new = policy_factory(env, params)
    if not callable(new):
        raise ValueError(f"policy_factory returned {type(new).__name__}; expected a policy "
                         "callable as policy(obs, key) -> [R] orders")
    switch_day = warmup_days + pre_days
    rng = np.random.default_rng(seed)

    def simulate(mask: np.ndarray) -> DayOutcome:
        policy = Mixed(
            treated_mask=jnp.asarray(mask, jnp.bool_),
            new=new,
            old=incumbent,
            switch_day=jnp.asarray(switch_day, jnp.int32),
        )
        _, outcomes, _ = rollout(env, params, policy, key, total_days)
        return jax.device_get(outcomes)

    if treatment == "random":
        treated = np.zeros(num_rows, bool)
        treated[rng.permutation(num_rows)[:num_treated]] = True
        outcomes = simulate(treated)
    else:
        before = simulate(np.zeros(num_rows, bool))
        cov = _pre_covariates(before, data, warmup_days, switch_day)
        turnover = cov[:, 0]
        sd = turnover.std()
        z = (turnover - turnover.mean()) / (sd if sd > 0 else 1.0)
        score = z + rule_noise * rng.standard_normal(num_rows)
        treated = np.zeros(num_rows, bool)
        treated[np.argsort(-score, kind="stable")[:num_treated]] = True
        outcomes = simulate(treated)

    covariates = _pre_covariates(outcomes, data, warmup_days, switch_day)
    n_pre, n_post = pre_days // period_days, post_days // period_days
    panels = field_panels(outcomes, warmup_days, n_pre + n_post, period_days)
    post = np.arange(n_pre + n_post) >= n_pre
    results = {}
    for name in METRICS:
        panel = panels[name]
        did = did_estimate(panel, treated, post, cluster=cluster)
        matched = propensity_matched_effect(
            panel[:, ~post], _row_mean(panel[:, post]), covariates, treated, caliper=caliper
        )
        results[name] = MetricResult(
            name=name,
            did=did,
            matched=matched,
            treated_pre=did.treated_pre,
            treated_post=did.treated_post,
            control_pre=did.control_pre,
            control_post=did.control_post,
            panel=panel,
        )
    return FieldTestResult(
        metrics=results,
        treated=treated,
        post=post,
        covariates=covariates,
        covariate_names=COVARIATES,
        row_ids=data.rows["row_id"].to_numpy(),
        treatment=treatment,
        treated_fraction=num_treated / num_rows,
        start=start,
        warmup_days=warmup_days,
        pre_days=pre_days,
        post_days=post_days,
        period_days=period_days,
        switch_day=switch_day,
    )


# ---------------------------------------------------------------------------------------
# Report.

#: Display format of each metric's levels and effects.
_FORMATS = {
    "turnover_days": ("{:.2f}", "{:+.2f}"),
    "in_stock_rate": ("{:.2%}", "{:+.2%}"),
    "holding_cost": ("{:,.1f}", "{:+,.1f}"),
    "total_cost": ("{:,.1f}", "{:+,.1f}"),
}


def field_test_table(result: FieldTestResult) -> list[dict]:
    """One report row per metric, as plain floats.

    Args:
        result: a :class:`FieldTestResult`.

    Returns:
        A list of dicts with keys ``metric``, ``control_pre``, ``control_post``,
        ``treated_pre``, ``treated_post``, ``did_effect``, ``did_se``, ``did_p``,
        ``pretrend_slope``, ``pretrend_p``, ``matched_att``, ``matched_se``,
        ``matched_p``, ``num_treated``, ``num_control``.
    """
    rows = []
    for name, m in result.metrics.items():
        rows.append(
            {
                "metric": name,
                "control_pre": m.control_pre,
                "control_post": m.control_post,
                "treated_pre": m.treated_pre,
                "treated_post": m.treated_post,
                "did_effect": m.did.effect,
                "did_se": m.did.se,
                "did_p": m.did.p_value,
                "pretrend_slope": m.did.pretrend_slope,
                "pretrend_p": m.did.pretrend_p,
                "matched_att": m.matched.att,
                "matched_se": m.matched.se,
                "matched_p": m.matched.p_value,
                "num_treated": int(np.sum(result.treated)),
                "num_control": int(np.sum(~result.treated)),
            }
        )
    return rows


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def field_test_markdown(table: FieldTestResult | Sequence[dict]) -> str:
    """The :func:`field_test_table` rows as a GitHub Markdown table.

    Args:
        table: a :class:`FieldTestResult` or the rows of :func:`field_test_table`.

    Returns:
        The Markdown text (effects as ``effect ± SE``; in-stock rates in percent, their
        effects in percentage points).
    """
    rows = field_test_table(table) if isinstance(table, FieldTestResult) else list(table)
    head = (
        "| metric | control pre | control post | treated pre | treated post | "
        "DiD effect ± SE | p | pre-trend p | matched ATT ± SE |"
    )
    sep = "|---|" + "---:|" * 8
    body = []
    for r in rows:
        level, effect = _FORMATS.get(r["metric"], ("{:.4g}", "{:+.4g}"))
        se = effect.replace("+", "")
        body.append(
            f"| {r['metric']} | {level.format(r['control_pre'])} | "
            f"{level.format(r['control_post'])} | {level.format(r['treated_pre'])} | "
            f"{level.format(r['treated_post'])} | "
            f"{effect.format(r['did_effect'])} ± {se.format(r['did_se'])} | "
            f"{_p(r['did_p'])} | {_p(r['pretrend_p'])} | "
            f"{effect.format(r['matched_att'])} ± {se.format(r['matched_se'])} |"
        )
    return "\n".join([head, sep, *body])
