"""Propensity-score matching: the ATT on the pre-to-post change by 1:1 nearest-neighbour
matching on the logit propensity, with the Abadie-Imbens standard error and covariate
balance. Plain NumPy/SciPy on host arrays.

References:
    Abadie, A., Imbens, G. W. (2006). Large sample properties of matching estimators for
        average treatment effects. Econometrica 74(1), 235-267.
    Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when
        estimating differences in means and differences in proportions in observational
        studies. Pharmaceutical Statistics 10(2), 150-161.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Float
from scipy import stats

from orpr_jax.evaluation.field_test._arrays import _bool_vector, _real_array, _row_mean

__all__ = ["MatchedResult", "propensity_matched_effect"]


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


def _propensity_matches(x: np.ndarray, t: np.ndarray, caliper: float, ridge: float,
                        newton_steps: int):
    """``(score [n], order, nn, ok, cal)``: the logit propensity of each row, the sort
    order of the controls' scores, each treated row's nearest control (an index into the
    sorted controls), whether it is within the caliper, and the caliper in logit units;
    raises ValueError when no treated row is matched."""
    sd = x.std(axis=0)
    z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    score = _logistic_fit(z, t.astype(np.float64), ridge, newton_steps)
    cal = float(caliper) * float(score.std()) if np.isfinite(caliper) else np.inf
    s_t, s_c = score[t], score[~t]
    order = np.argsort(s_c, kind="stable")
    nn = _nearest(s_c[order], s_t)
    ok = np.abs(s_t - s_c[order][nn]) <= cal
    if not np.any(ok):
        raise ValueError(f"caliper={caliper!r} leaves no treated row matched; expected a "
                         "larger caliper")
    return score, order, nn, ok, cal


def _smd(xt: np.ndarray, xc: np.ndarray, wc: np.ndarray, denom: np.ndarray) -> np.ndarray:
    diff = xt.mean(axis=0) - (wc[:, None] * xc).sum(axis=0) / wc.sum()
    return np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)


def _matching_inputs(y_pre, y_post, covariates, treated, caliper, ridge, newton_steps):
    """The checked ``(pre [N, k], post [N], covariates [N, F], treated [N])`` of
    :func:`propensity_matched_effect`; raises ValueError on a bad input."""
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
    return pre, post, cov, treated


def _usable_changes(pre: np.ndarray, post: np.ndarray, treated: np.ndarray):
    """``(change, usable, treated & usable, control & usable)``: each row's post outcome
    minus its mean pre outcome (NaN pre cells ignored), and the rows where it is finite;
    raises ValueError with no usable treated row or fewer than two usable controls."""
    change = post - _row_mean(pre)
    usable = np.isfinite(change)
    tr, co = usable & treated, usable & ~treated
    if not np.any(tr):
        raise ValueError("treated has no True entry with a usable outcome (finite y_post "
                         "and at least one finite y_pre cell); expected at least one")
    if np.sum(co) < 2:
        raise ValueError(f"treated has {int(np.sum(co))} False entries with a usable "
                         "outcome; expected at least two control rows")
    return change, usable, tr, co


def _control_variances(sc_sorted: np.ndarray, chc_sorted: np.ndarray) -> np.ndarray:
    """Conditional variance of each control's change from its nearest other control in
    the (sorted) score: ``s_j^2 = (change_j - change_l)^2 / 2``."""
    idx = np.arange(sc_sorted.size)
    prev_i, next_i = np.clip(idx - 1, 0, idx.size - 1), np.clip(idx + 1, 0, idx.size - 1)
    gap_prev = np.where(idx > 0, sc_sorted - sc_sorted[prev_i], np.inf)
    gap_next = np.where(idx < idx.size - 1, sc_sorted[next_i] - sc_sorted, np.inf)
    other = np.where(gap_prev <= gap_next, prev_i, next_i)
    return 0.5 * (chc_sorted - chc_sorted[other]) ** 2


def _normal_inference(att: float, se: float) -> tuple[float, float, float]:
    """``(t, p, q)``: the t statistic and two-sided normal p-value of ``att`` and the 97.5%
    normal quantile."""
    if se > 0:
        t_stat = att / se
        p = float(2.0 * stats.norm.sf(abs(t_stat)))
    else:
        t_stat, p = (0.0, 1.0) if att == 0 else (float(np.sign(att)) * np.inf, 0.0)
    q = float(stats.norm.ppf(0.975))
    return t_stat, p, q


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
    pre, post, cov, treated = _matching_inputs(y_pre, y_post, covariates, treated, caliper,
                                               ridge, newton_steps)
    n = pre.shape[0]
    change, usable, tr, co = _usable_changes(pre, post, treated)

    x = cov[usable]
    t_use = treated[usable]
    score, order, nn, ok, cal = _propensity_matches(x, t_use, caliper, ridge, newton_steps)
    m = int(np.sum(ok))

    ch = change[usable]
    sc_sorted = score[~t_use][order]
    ch_t, chc_sorted = ch[t_use], ch[~t_use][order]
    diffs = ch_t[ok] - chc_sorted[nn[ok]]
    att = float(diffs.mean())
    uses = np.bincount(nn[ok], minlength=sc_sorted.size).astype(np.float64)
    s2 = _control_variances(sc_sorted, chc_sorted)
    var = (np.sum((diffs - att) ** 2) + np.sum(uses * (uses - 1.0) * s2)) / m**2
    se = float(np.sqrt(var))
    t_stat, p, q = _normal_inference(att, se)

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
        naive=float(ch_t.mean() - chc_sorted.mean()),
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

