"""Difference-in-differences of a ratio of sums (turnover days = on-hand / sales), with
delta-method standard errors clustered by row. Plain NumPy/SciPy on host arrays.

A per-cell ratio ``on_hand_it / sales_it`` is undefined where a row sold nothing, and a
policy that starves a row of stock makes exactly those cells vanish: averaging the
defined cells selects on the outcome. Here every treatment x phase cell is one ratio of
sums over all its rows and periods, ``R_gs = sum_{i in g, t in s} a_it / sum b_it``, so a
starved row still adds its stock to the numerator (and its zero sales to the
denominator).

References:
    Cameron, A. C., Miller, D. L. (2015). A practitioner's guide to cluster-robust
        inference. Journal of Human Resources 50(2), 317-372.
    Cochran, W. G. (1977). Sampling Techniques, 3rd ed., section 6.4 (variance of a
        ratio estimator by linearisation).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float

from orpr_jax.evaluation.field_test._arrays import _bool_vector, _real_array
from orpr_jax.evaluation.field_test.did import DiDResult, _t_inference
from orpr_jax.evaluation.field_test.matching import (
    MatchedResult,
    _normal_inference,
    _propensity_matches,
    _smd,
)

__all__ = ["matched_ratio_effect", "ratio_did_estimate"]


def _nonneg_panel(name: str, value, shape=None) -> np.ndarray:
    arr = _real_array(name, value)
    if arr.ndim != 2:
        raise ValueError(f"{name} has shape {arr.shape}; expected [rows, periods]")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape}, the shape of "
                         "numerator")
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0 in every cell (a ratio of sums "
                         "has no missing cells)")
    return arr


def _linear_combination(a: np.ndarray, b: np.ndarray, groups: np.ndarray,
                        cells: np.ndarray, weights: np.ndarray, cluster: str):
    """``(L, se, dof)`` for ``L = sum_{g, s} weights[g, s] * R_gs`` by the delta method.

    Args:
        a, b: ``[N, T]`` numerator and denominator.
        groups: ``[N]`` int group of each row (0 control, 1 treated).
        cells: ``[T]`` int cell of each period (-1: not used).
        weights: ``[2, S]`` weight of each (group, cell) ratio.
        cluster: ``"row"`` (sum each row's influence over its periods before squaring) or
            ``"none"`` (every row-period is its own cluster).

    Returns None when a weighted ratio has a zero denominator or there are fewer than two
    clusters.

    Linearising ``R = A / B`` around the sums, row-period ``(i, t)`` contributes
    ``(a_it - R b_it) / B`` to ``R``; the influence ``u_c`` of cluster c is the weighted
    sum of its contributions and ``V = G / (G - 1) * sum_c u_c^2`` (the CRV1 factor; the
    influences already sum to zero within each ratio, so no mean is subtracted), G the
    clusters with a nonzero numerator or denominator entry (a row of zeros, or of zero
    weight, is not in the sample).
    """
    num_cells = weights.shape[1]
    big_a = np.zeros((2, num_cells))
    big_b = np.zeros((2, num_cells))
    used = cells >= 0
    for g in (0, 1):
        for s in range(num_cells):
            pick = (groups == g)[:, None] & (cells == s)[None, :]
            big_a[g, s], big_b[g, s] = a[pick].sum(), b[pick].sum()
    needed = weights != 0
    if np.any(needed & (big_b <= 0)):
        return None
    ratio = np.where(big_b > 0, big_a / np.where(big_b > 0, big_b, 1.0), 0.0)
    value = float(np.sum(weights * ratio))
    w_rt = weights[groups][:, cells.clip(0)] * used[None, :]      # [N, T]
    r_rt = ratio[groups][:, cells.clip(0)]
    b_rt = np.where(big_b > 0, big_b, 1.0)[groups][:, cells.clip(0)]
    contrib = w_rt * (a - r_rt * b) / b_rt
    present = (a > 0) | (b > 0)
    if cluster == "row":
        u, g = contrib.sum(axis=1), int(np.any(present[:, used], axis=1).sum())
    else:
        u, g = contrib[:, used].ravel(), int(present[:, used].sum())
    if g < 2:
        return None
    var = g / (g - 1.0) * float(np.sum(u * u))
    return value, float(np.sqrt(var)), g - 1


def _checked(numerator, denominator, treated, post, cluster):
    """The checked ``(a, b, treated, post)`` of :func:`ratio_did_estimate`."""
    a = _nonneg_panel("numerator", numerator)
    b = _nonneg_panel("denominator", denominator, a.shape)
    n_rows, n_periods = a.shape
    treated = _bool_vector("treated", treated, n_rows, "row of numerator")
    post = _bool_vector("post", post, n_periods, "period (column) of numerator")
    if cluster not in ("row", "none"):
        raise ValueError(f"cluster={cluster!r} is not allowed; use 'row' or 'none'")
    if not np.any(treated) or np.all(treated):
        raise ValueError("treated must have both True and False entries; expected treated "
                         "and control rows")
    if not np.any(post) or np.all(post):
        raise ValueError("post must have both True and False entries; expected pre and "
                         "post periods")
    return a, b, treated, post


def ratio_did_estimate(
    numerator: Float[np.ndarray, "N T"],
    denominator: Float[np.ndarray, "N T"],
    treated: Bool[np.ndarray, " N"],
    post: Bool[np.ndarray, " T"],
    *,
    cluster: str = "row",
) -> DiDResult:
    """Difference-in-differences of a ratio of sums per treatment x phase cell.

    ``R_gs = sum_{i in g, t in s} numerator_it / sum denominator_it`` for g in {treated,
    control} and s in {pre, post}; the effect is ``(R_T,post - R_T,pre) - (R_C,post -
    R_C,pre)``. Every row and period counts, including a row whose denominator is zero
    after the switch (a starved row keeps its stock in the numerator).

    Standard error: the delta method, ``effect ~= sum_c u_c`` with ``u_c`` the influence
    of cluster c (a row, or a row-period with ``cluster="none"``) on the four ratios,
    ``V = G / (G - 1) * sum_c u_c^2`` and ``G - 1`` degrees of freedom. Clustering by row
    keeps the serial correlation of a row's weeks (Bertrand et al. 2004).

    The pre-trend check is the least-squares slope, over the pre-periods k = 0, 1, ..., of
    the per-period difference ``R_T,k - R_C,k`` (a linear combination of ratios, so the
    same delta method gives its standard error); NaN with fewer than two pre-periods or
    a pre-period whose treated or control sales sum to zero.

    Args:
        numerator: ``[N, T]`` per row and period, e.g. the sum of end-of-day on-hand units
            (finite, >= 0).
        denominator: ``[N, T]`` the same for the denominator, e.g. units sold (>= 0).
        treated: ``[N]`` bool.
        post: ``[T]`` bool, True for periods after the switch.
        cluster: ``"row"`` or ``"none"``.

    Returns:
        A :class:`~orpr_jax.evaluation.field_test.did.DiDResult` whose ``treated_pre``,
        ``treated_post``, ``control_pre`` and ``control_post`` are the four cell ratios and
        ``num_obs`` counts the row-periods (all of them).

    Raises:
        ValueError: if ``numerator`` / ``denominator`` are not equal-shape 2-D arrays of
            finite values >= 0, ``treated`` / ``post`` do not have one entry per row /
            period, there are no treated or no control rows, no pre or no post periods,
            ``cluster`` is not ``"row"`` or ``"none"``, or a cell's denominator sums to
            zero (the effect is not identified).

    References:
        Cochran (1977), section 6.4; Cameron and Miller (2015).
    """
    a, b, treated, post = _checked(numerator, denominator, treated, post, cluster)
    groups = treated.astype(np.int64)
    phase = post.astype(np.int64)
    # weights[g, s]: control pre +1, control post -1, treated pre -1, treated post +1.
    fit = _linear_combination(a, b, groups, phase, np.array([[1.0, -1.0], [-1.0, 1.0]]),
                              cluster)
    if fit is None:
        raise ValueError("the effect is not identified: a treatment x phase cell of "
                         "denominator sums to zero")
    effect, se, dof = fit
    t, p, lo, hi = _t_inference(effect, se, dof)

    levels = np.zeros((2, 2))
    for g in (0, 1):
        for s in (0, 1):
            pick = (groups == g)[:, None] & (phase == s)[None, :]
            levels[g, s] = a[pick].sum() / b[pick].sum()

    slope = slope_se = slope_p = float("nan")
    pre_cols = np.flatnonzero(~post)
    if pre_cols.size >= 2:
        k = np.arange(pre_cols.size, dtype=np.float64)
        c = (k - k.mean()) / np.sum((k - k.mean()) ** 2)
        trend = _linear_combination(a[:, pre_cols], b[:, pre_cols], groups,
                                    np.arange(pre_cols.size), np.stack([-c, c]), cluster)
        if trend is not None:
            slope, slope_se, trend_dof = trend
            slope_p = _t_inference(slope, slope_se, trend_dof)[1]
    return DiDResult(
        effect=effect, se=se, t_stat=t, p_value=p, ci_low=lo, ci_high=hi, dof=dof,
        num_rows=int(np.any((a > 0) | (b > 0), axis=1).sum()),
        num_treated=int(treated.sum()), num_obs=int(a.size),
        treated_pre=float(levels[1, 0]), treated_post=float(levels[1, 1]),
        control_pre=float(levels[0, 0]), control_post=float(levels[0, 1]),
        pretrend_slope=slope, pretrend_se=slope_se, pretrend_p=slope_p, cluster=cluster,
    )


def matched_ratio_effect(
    numerator: Float[np.ndarray, "N T"],
    denominator: Float[np.ndarray, "N T"],
    covariates: Float[np.ndarray, "N F"],
    treated: Bool[np.ndarray, " N"],
    post: Bool[np.ndarray, " T"],
    *,
    caliper: float = 0.2,
    ridge: float = 1e-4,
    newton_steps: int = 25,
) -> MatchedResult:
    """Propensity-matched ATT of a ratio of sums (the matched counterpart of
    :func:`ratio_did_estimate`).

    The propensity and the 1:1 nearest-neighbour matches with replacement are those of
    :func:`~orpr_jax.evaluation.field_test.matching.propensity_matched_effect` (on all
    rows: a ratio of sums has no missing outcome). Matched treated rows get weight 1,
    control j weight ``K_j`` (the times it is used), and ``ATT = (R_T,post - R_T,pre) -
    (R_C,post - R_C,pre)`` with ``R_gs = sum_i w_i a_is / sum_i w_i b_is``. Standard
    error: the delta method clustered by row with the weights held fixed (``K_j^2`` in a
    control's share charges for its reuse; the matching step's own variance is not
    propagated). ``naive`` is the unmatched :func:`ratio_did_estimate` effect.

    Args:
        numerator, denominator: ``[N, T]`` as in :func:`ratio_did_estimate`.
        covariates: ``[N, F]`` pre-treatment covariates (finite).
        treated: ``[N]`` bool.
        post: ``[T]`` bool.
        caliper, ridge, newton_steps: as in ``propensity_matched_effect``.

    Returns:
        A :class:`~orpr_jax.evaluation.field_test.matching.MatchedResult` (normal
        inference).

    Raises:
        ValueError: on the inputs :func:`ratio_did_estimate` rejects, covariates that are
            not ``[N, F]`` and finite, ``caliper`` / ``ridge`` / ``newton_steps`` out of
            range, no treated row matched within the caliper, or a zero denominator in a
            weighted cell.
    """
    a, b, treated, post = _checked(numerator, denominator, treated, post, "row")
    n = a.shape[0]
    cov = _real_array("covariates", covariates)
    cov = cov[:, None] if cov.ndim == 1 else cov
    if cov.ndim != 2 or cov.shape[0] != n or not np.all(np.isfinite(cov)):
        raise ValueError(f"covariates has shape {cov.shape} or non-finite cells; expected "
                         f"finite ({n}, F), one line per row of numerator")
    if not (caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; expected a number > 0")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge={ridge!r} is not allowed; expected a finite number >= 0")
    if isinstance(newton_steps, bool) or not isinstance(newton_steps, int) or newton_steps < 1:
        raise ValueError(f"newton_steps={newton_steps!r} is not allowed; expected an "
                         "integer >= 1")
    score, order, nn, ok, cal = _propensity_matches(cov, treated, caliper, ridge,
                                                    newton_steps)
    controls = np.flatnonzero(~treated)[order]
    uses = np.bincount(nn[ok], minlength=controls.size).astype(np.float64)
    weight = np.zeros(n)
    weight[np.flatnonzero(treated)[ok]] = 1.0
    weight[controls] = uses
    fit = _linear_combination(a * weight[:, None], b * weight[:, None],
                              treated.astype(np.int64), post.astype(np.int64),
                              np.array([[1.0, -1.0], [-1.0, 1.0]]), "row")
    if fit is None:
        raise ValueError("the matched effect is not identified: a matched treatment x "
                         "phase cell of denominator sums to zero")
    att, se, _ = fit
    t_stat, p, q = _normal_inference(att, se)
    x_t, x_c = cov[treated], cov[~treated][order]
    denom = np.sqrt(0.5 * (x_t.var(axis=0) + x_c.var(axis=0)))
    return MatchedResult(
        att=att, se=se, t_stat=float(t_stat), p_value=p, ci_low=att - q * se,
        ci_high=att + q * se,
        naive=ratio_did_estimate(a, b, treated, post).effect,
        num_treated=int(treated.sum()), num_matched=int(ok.sum()),
        num_unmatched=int((~ok).sum()), num_controls=int((~treated).sum()),
        num_controls_used=int(np.sum(uses > 0)), caliper=cal,
        propensity=1.0 / (1.0 + np.exp(-score)),
        smd_before=_smd(x_t, x_c, np.ones(x_c.shape[0]), denom),
        smd_after=_smd(x_t[ok], x_c, uses, denom),
    )
