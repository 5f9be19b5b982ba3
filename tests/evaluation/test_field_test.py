"""Simulated field test: DiD and propensity-matching estimators, the per-row policy
switch, and the end-to-end field test on a small synthetic data set.

Checks: (a) DiD on a hand-computed 2x2 panel, against an explicit dummy-variable OLS with
its CRV1 sandwich (balanced and unbalanced), and by Monte Carlo on panels with a planted
effect and serially correlated errors (unbiased, SE close to the spread, coverage; the
unclustered SE is too small there); (b) the pre-trend check on planted differential
trends and on parallel ones; (c) matching under selection on observables (recovers the
ATT where the naive DiD is biased, SE close to the spread, balance improves); (d) the
:class:`Mixed` switch; (e) ``run_field_test`` with identical, better and worse policies
and with manager-style selection; (f) the report; (g) every bad-input path.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from orpr_jax import Observation
from orpr_jax.evaluation.field_test import (
    METRICS,
    Mixed,
    did_estimate,
    field_test_markdown,
    field_test_table,
    propensity_matched_effect,
    run_field_test,
)
from orpr_jax.policies import base_stock, incumbent_rule
from orpr_jax.scenarios import jd_synthetic_data

# ---------------------------------------------------------------------------------------
# Helpers.


def _ar1_panel(rng, n=100, t=10, n_pre=5, effect=0.4, rho=0.6, trend=0.0):
    """Row FE + period FE + AR(1) errors (corr rho, unit variance) + effect on treated
    post cells + ``trend`` per period on treated rows (from period 0)."""
    treated = np.arange(n) < n // 2
    post = np.arange(t) >= n_pre
    e = np.empty((n, t))
    e[:, 0] = rng.standard_normal(n)
    for s in range(1, t):
        e[:, s] = rho * e[:, s - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    y = (
        rng.normal(0.0, 2.0, n)[:, None]
        + rng.normal(0.0, 1.0, t)[None, :]
        + e
        + effect * (treated[:, None] & post[None, :])
        + trend * treated[:, None] * np.arange(t)[None, :]
    )
    return y, treated, post


def _dummy_ols(y, treated, post):
    """Explicit OLS of y on row dummies, period dummies (first dropped) and treated x
    post over the non-NaN cells, with the row-clustered sandwich; returns (beta, V_bb,
    n, G, T)."""
    n_rows, n_per = y.shape
    cells = [(i, s) for i in range(n_rows) for s in range(n_per) if np.isfinite(y[i, s])]
    x = np.zeros((len(cells), n_rows + n_per))
    yy = np.zeros(len(cells))
    cluster = np.zeros(len(cells), int)
    for k, (i, s) in enumerate(cells):
        x[k, i] = 1.0
        if s > 0:
            x[k, n_rows + s - 1] = 1.0
        x[k, -1] = float(treated[i] and post[s])
        yy[k] = y[i, s]
        cluster[k] = i
    bread = np.linalg.inv(x.T @ x)
    coef = bread @ x.T @ yy
    resid = yy - x @ coef
    meat = np.zeros_like(bread)
    for g in range(n_rows):
        sg = x[cluster == g].T @ resid[cluster == g]
        meat += np.outer(sg, sg)
    v = bread @ meat @ bread
    return coef[-1], v[-1, -1], len(cells), n_rows, n_per


# ---------------------------------------------------------------------------------------
# (a) DiD.


def test_did_hand_computed_2x2():
    # Treated rows: pre (1, 3) mean 2, post (4, 8) mean 6; control rows: pre (2, 4)
    # mean 3, post (3, 5) mean 4. Effect = (6 - 2) - (4 - 3) = 3.
    y = np.array([[1.0, 4.0], [3.0, 8.0], [2.0, 3.0], [4.0, 5.0]])
    treated = np.array([True, True, False, False])
    post = np.array([False, True])
    r = did_estimate(y, treated, post)
    assert r.effect == pytest.approx(3.0)
    assert (r.treated_pre, r.treated_post, r.control_pre, r.control_post) == (2.0, 6.0, 3.0, 4.0)
    # CRV1: V = c * sum_i (sum_t x~_it e_it)^2 / (sum x~^2)^2. Two-way demeaned
    # treated x post is x~ = -1/4, +1/4 on treated rows (pre, post) and +1/4, -1/4 on
    # control rows, so sum x~^2 = 8/16 = 1/2. Row changes (3, 5 | 1, 1) deviate by
    # (-1, +1 | 0, 0) from their group means; residuals are -dev/2 (pre), +dev/2 (post),
    # so treated scores are +-(1/4 * 1/2 + 1/4 * 1/2) = +-1/4 and the meat is 2/16 = 1/8.
    # c = G/(G-1) * (n-1)/(n-K) = 4/3 * 7/6 (K = 2: period effect and beta). V = c/2.
    assert r.se == pytest.approx(np.sqrt(4 / 3 * 7 / 6 * (1 / 8) / (1 / 2) ** 2))
    assert r.dof == 3 and r.num_obs == 8 and r.num_rows == 4 and r.num_treated == 2
    assert np.isnan(r.pretrend_p)  # one pre period: no trend to check


def test_did_balanced_equals_means_version():
    rng = np.random.default_rng(1)
    y, treated, post = _ar1_panel(rng, n=30, t=8, n_pre=3)
    r = did_estimate(y, treated, post)
    tp, tq = y[treated][:, ~post].mean(), y[treated][:, post].mean()
    cp, cq = y[~treated][:, ~post].mean(), y[~treated][:, post].mean()
    assert r.effect == pytest.approx((tq - tp) - (cq - cp), rel=1e-10)


@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_did_matches_dummy_variable_ols(missing):
    rng = np.random.default_rng(2)
    y, treated, post = _ar1_panel(rng, n=24, t=7, n_pre=3)
    y[rng.random(y.shape) < missing] = np.nan
    r = did_estimate(y, treated, post)
    beta, v, n, g, t = _dummy_ols(y, treated, post)
    c = g / (g - 1) * (n - 1) / (n - t)
    assert r.effect == pytest.approx(beta, rel=1e-7, abs=1e-9)
    assert r.se == pytest.approx(np.sqrt(c * v), rel=1e-6)
    assert r.num_obs == n


def test_did_recovers_planted_effect_and_se_matches_spread():
    rng = np.random.default_rng(3)
    one = did_estimate(*_ar1_panel(rng))
    assert abs(one.effect - 0.4) < 3 * one.se
    reps = [_ar1_panel(rng) for _ in range(300)]
    row = [did_estimate(*p) for p in reps]
    eff = np.array([r.effect for r in row])
    se = np.array([r.se for r in row])
    # Unbiased (within 3 MC standard errors), SE within 30% of the Monte-Carlo spread,
    # and the 95% interval covers about 95%.
    assert abs(eff.mean() - 0.4) < 3 * eff.std() / np.sqrt(len(eff))
    assert 0.7 < se.mean() / eff.std() < 1.3
    assert 0.9 < np.mean([r.ci_low <= 0.4 <= r.ci_high for r in row]) < 0.99
    # With AR(1) errors the i.i.d. SE is far too small: clustering matters.
    iid = np.array([did_estimate(*p, cluster="none").se for p in reps])
    assert iid.mean() / eff.std() < 0.75


# ---------------------------------------------------------------------------------------
# (b) Pre-trend check.


def test_pretrend_flags_planted_differential_trend():
    rng = np.random.default_rng(4)
    for _ in range(10):
        r = did_estimate(*_ar1_panel(rng, trend=0.5))
        assert r.pretrend_p < 0.01
        assert r.pretrend_slope == pytest.approx(0.5, abs=4 * r.pretrend_se)


def test_pretrend_not_flagged_under_parallel_trends():
    rng = np.random.default_rng(5)
    p = np.array([did_estimate(*_ar1_panel(rng)).pretrend_p for _ in range(300)])
    # Under the null the p-values are about uniform: ~5% below 0.05 (binomial sd ~1.3%).
    assert 0.01 < np.mean(p < 0.05) < 0.10
    assert 0.4 < p.mean() < 0.6


# ---------------------------------------------------------------------------------------
# (c) Propensity matching.


def _selected(rng, n=1000, tau=1.0):
    """Selection on observables: P(treated) rises with x1 and falls with x2, and the
    pre-to-post change depends on both, so the naive DiD is biased by ~1.5 * 0.8."""
    x = rng.standard_normal((n, 2))
    p = 1.0 / (1.0 + np.exp(-(-0.2 + 1.0 * x[:, 0] - 0.5 * x[:, 1])))
    t = rng.random(n) < p
    level = 5.0 + 2.0 * x[:, 0] + rng.standard_normal(n)
    y_pre = level[:, None] + rng.standard_normal((n, 4))
    y_post = level + 1.5 * x[:, 0] + 0.5 * x[:, 1] + tau * t + rng.standard_normal(n)
    return y_pre, y_post, x, t


def test_matching_recovers_att_under_selection_on_observables():
    rng = np.random.default_rng(6)
    r = propensity_matched_effect(*_selected(rng))
    assert abs(r.att - 1.0) < 3 * r.se
    assert r.naive - 1.0 > 5 * r.se  # the unmatched DiD is clearly biased upwards
    assert abs(r.smd_before[0]) > 0.5 and abs(r.smd_after[0]) < 0.1
    assert r.num_matched + r.num_unmatched == r.num_treated
    assert np.all((r.propensity > 0) & (r.propensity < 1))
    res = [propensity_matched_effect(*_selected(rng)) for _ in range(100)]
    att = np.array([x.att for x in res])
    se = np.array([x.se for x in res])
    assert abs(att.mean() - 1.0) < 3 * att.std() / np.sqrt(len(att))
    assert 0.7 < se.mean() / att.std() < 1.3


def test_matching_skips_rows_without_outcome_and_caliper_drops():
    rng = np.random.default_rng(7)
    y_pre, y_post, x, t = _selected(rng, n=400)
    y_pre[:5] = np.nan
    y_post[5:10] = np.nan
    r = propensity_matched_effect(y_pre, y_post, x, t)
    assert r.num_treated + r.num_controls == 390
    assert np.all(np.isnan(r.propensity[:10]))
    tight = propensity_matched_effect(y_pre, y_post, x, t, caliper=1e-4)
    assert tight.num_unmatched > r.num_unmatched


# ---------------------------------------------------------------------------------------
# (d) The per-row switch.


def _observation(inventory_position, t):
    """An Observation with the given inventory position and day; other leaves zero."""
    r = len(inventory_position)
    shapes = {"pipeline": (r, 2), "sales_history": (r, 28), "promo_ahead": (r, 7)}
    ints = {"day_of_week", "day_of_year", "t", "review_period", "category", "warehouse"}
    leaves = {
        f.name: jnp.zeros(shapes.get(f.name, (r,)), jnp.int32 if f.name in ints else
                          jnp.float32)
        for f in dataclasses.fields(Observation)
    }
    leaves["inventory_position"] = jnp.asarray(inventory_position, jnp.float32)
    leaves["t"] = jnp.full((r,), t, jnp.int32)
    return Observation(**leaves)


def test_mixed_selects_per_row_and_day():
    ip = np.array([10.0, 20.0, 60.0, 120.0])
    mixed = Mixed(
        treated_mask=jnp.array([True, False, True, False]),
        new=base_stock(100.0),
        old=base_stock(50.0),
        switch_day=jnp.asarray(10, jnp.int32),
    )
    play = jax.jit(lambda o: mixed(o, jax.random.key(1)))
    before, after = play(_observation(ip, 9)), play(_observation(ip, 10))
    np.testing.assert_allclose(before, np.maximum(50.0 - ip, 0.0))
    np.testing.assert_allclose(after, np.maximum(np.array([100.0, 50, 100, 50]) - ip, 0.0))


# ---------------------------------------------------------------------------------------
# (e) The field test in the simulator.

INCUMBENT = incumbent_rule(3.0)


@pytest.fixture(scope="module")
def data():
    return jd_synthetic_data(num_skus=40)  # 105 SKU x warehouse rows


def _field(data, new, **kw):
    return run_field_test(data, lambda env, params: new, INCUMBENT, jax.random.key(0), **kw)


@pytest.fixture(scope="module")
def identical(data):
    return _field(data, INCUMBENT)


def test_identical_policies_give_no_effect(identical, data):
    r = identical
    assert set(r.metrics) == set(METRICS)
    assert r.treated.sum() == round(0.5 * data.num_rows)
    n_periods = (r.pre_days + r.post_days) // r.period_days
    for m in r.metrics.values():
        assert m.panel.shape == (data.num_rows, n_periods)
        assert abs(m.did.t_stat) < 3, m.name
        assert abs(m.matched.t_stat) < 3, m.name
    # The in-stock rate is a share of days; turnover is NaN only where a period sold nothing.
    ins = r.metrics["in_stock_rate"].panel
    assert np.all((ins >= 0) & (ins <= 1))
    turn = r.metrics["turnover_days"].panel
    assert np.all(np.isnan(turn) | (turn >= 0))


def test_pre_period_does_not_depend_on_assignment(identical, data):
    # A better policy on another random set: the pre-period cells are the same
    # (nobody has switched yet, the demand and lead-time draws are shared).
    other = _field(data, incumbent_rule(13.0), seed=1)
    assert not np.array_equal(other.treated, identical.treated)
    pre = ~identical.post
    for name in METRICS:
        np.testing.assert_array_equal(
            other.metrics[name].panel[:, pre], identical.metrics[name].panel[:, pre]
        )


def test_better_and_worse_policies_have_the_right_sign(data):
    more = _field(data, incumbent_rule(13.0))  # ten more days of cover on treated rows
    for name in ("turnover_days", "holding_cost", "in_stock_rate"):
        assert more.metrics[name].did.t_stat > 3, name
        assert more.metrics[name].matched.att > 0, name
    # Twenty days below L + R: treated rows (almost) stop reordering and run dry.
    less = _field(data, incumbent_rule(-20.0))
    assert less.metrics["in_stock_rate"].did.t_stat < -3
    assert less.metrics["turnover_days"].did.t_stat < -3
    assert less.metrics["total_cost"].did.t_stat > 3  # lost sales
    for name in ("turnover_days", "holding_cost", "in_stock_rate"):
        assert less.metrics[name].did.effect < 0, name
        assert less.metrics[name].matched.att < 0, name


def test_policy_pytree_accepted_in_place_of_factory(identical, data):
    r = run_field_test(data, INCUMBENT, INCUMBENT, jax.random.key(0))
    for name in METRICS:
        np.testing.assert_array_equal(r.metrics[name].panel, identical.metrics[name].panel)


def test_rule_selection_picks_slow_turnover_rows_and_matching_handles_it(data):
    r = _field(data, INCUMBENT, treatment="rule")
    turnover = r.covariates[:, 0]
    assert turnover[r.treated].mean() > turnover[~r.treated].mean() + 0.3
    for m in r.metrics.values():
        assert abs(m.matched.t_stat) < 3, m.name  # no effect to find
        assert np.isfinite(m.did.pretrend_p)


# ---------------------------------------------------------------------------------------
# (f) The report.


def test_table_and_markdown(identical):
    rows = field_test_table(identical)
    assert [r["metric"] for r in rows] == list(METRICS)
    m = identical.metrics["holding_cost"]
    row = rows[2]
    assert row["did_effect"] == m.did.effect and row["matched_se"] == m.matched.se
    assert row["control_pre"] == m.control_pre and row["pretrend_p"] == m.did.pretrend_p
    text = field_test_markdown(identical)
    lines = text.splitlines()
    assert len(lines) == 2 + len(METRICS)
    assert lines[0].startswith("| metric |") and "DiD effect ± SE" in lines[0]
    assert text == field_test_markdown(rows)
    assert "%" in lines[3]  # in-stock rate in percent


# ---------------------------------------------------------------------------------------
# (g) Bad inputs.

_Y = np.arange(12.0).reshape(4, 3)
_T = np.array([True, True, False, False])
_P = np.array([False, True, True])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(panel_y=np.arange(4.0)), "panel_y"),
        (dict(panel_y=np.where(_Y == 5, np.inf, _Y)), "panel_y"),
        (dict(panel_y=_Y.astype(str)), "panel_y"),
        (dict(treated=_T[:3]), "treated"),
        (dict(treated=np.zeros(4, bool)), "treated"),
        (dict(treated=np.ones(4, bool)), "treated"),
        (dict(treated=np.array([0, 2, 1, 0])), "treated"),
        (dict(post=_P[:2]), "post"),
        (dict(post=np.zeros(3, bool)), "post"),
        (dict(post=np.ones(3, bool)), "post"),
        (dict(cluster="sku"), "cluster"),
        (dict(panel_y=np.where(_T[:, None] & _P[None, :], np.nan, _Y)), "identified"),
    ],
)
def test_did_bad_inputs(kwargs, field):
    args = dict(panel_y=_Y, treated=_T, post=_P) | kwargs
    cluster = args.pop("cluster", "row")
    with pytest.raises(ValueError, match=field):
        did_estimate(args["panel_y"], args["treated"], args["post"], cluster=cluster)


def test_matching_bad_inputs():
    rng = np.random.default_rng(8)
    y_pre, y_post, x, t = _selected(rng, n=50)
    cases = [
        (dict(y_pre=y_pre[:40]), "y_post"),
        (dict(y_pre=np.zeros((50, 2, 2))), "y_pre"),
        (dict(y_post=y_post[:40]), "y_post"),
        (dict(covariates=x[:40]), "covariates"),
        (dict(covariates=np.where(x > 1, np.nan, x)), "covariates"),
        (dict(treated=t[:40]), "treated"),
        (dict(treated=np.zeros(50, bool)), "treated"),
        (dict(treated=np.arange(50) > 0), "treated"),
        (dict(caliper=0.0), "caliper"),
        (dict(ridge=-1.0), "ridge"),
        (dict(newton_steps=0), "newton_steps"),
    ]
    for kwargs, field in cases:
        args = dict(y_pre=y_pre, y_post=y_post, covariates=x, treated=t) | kwargs
        with pytest.raises(ValueError, match=field):
            propensity_matched_effect(**args)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(treated_fraction=0.0), "treated_fraction"),
        (dict(treated_fraction=1.0), "treated_fraction"),
        (dict(treated_fraction=1.5), "treated_fraction"),
        (dict(treated_fraction=0.001), "treated_fraction"),  # rounds to no treated row
        (dict(treatment="manager"), "treatment"),
        (dict(pre_days=7), "pre_days"),  # one period: no pre-trend check
        (dict(pre_days=20), "pre_days"),  # not whole periods
        (dict(post_days=0), "post_days"),
        (dict(post_days=10), "post_days"),
        (dict(period_days=0), "period_days"),
        (dict(warmup_days=-1), "warmup_days"),
        (dict(start=700), "start"),
        (dict(rule_noise=-1.0), "rule_noise"),
        (dict(caliper=0.0), "caliper"),
        (dict(cluster="sku"), "cluster"),
    ],
)
def test_run_field_test_bad_inputs(data, kwargs, field):
    with pytest.raises(ValueError, match=field):
        _field(data, INCUMBENT, **kwargs)


def test_run_field_test_factory_must_return_a_policy(data):
    with pytest.raises(ValueError, match="policy_factory"):
        run_field_test(data, lambda env, params: 3.0, INCUMBENT, jax.random.key(0))
