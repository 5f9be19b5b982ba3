"""Simulated field test: DiD and propensity-matching estimators, the per-row policy
switch, and the end-to-end field test on a small synthetic data set.

Checks: (a) DiD on a hand-computed 2x2 panel, against an explicit dummy-variable OLS with
its CRV1 sandwich (balanced and unbalanced), and by Monte Carlo on panels with a planted
effect and serially correlated errors (unbiased, SE close to the spread, coverage; the
unclustered SE is too small there); (b) the pre-trend check on planted differential
trends and on parallel ones; (c) matching under selection on observables (recovers the
ATT where the naive DiD is biased, SE close to the spread, balance improves); (d) the
:class:`Mixed` switch; (e) ``run_field_test`` with identical, better and worse policies
and with manager-style selection; (f) the report; (g) every bad-input path; (h) units
(costs per row-day, checked on a hand-computed panel); (i) turnover as a ratio of sums per
cell (a starved row still counts; delta-method SE against a hand computation, a cluster
bootstrap and Monte Carlo; the matched version); (j) held-out rows only.
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
    UNITS,
    Mixed,
    did_estimate,
    field_panels,
    field_test_markdown,
    field_test_table,
    matched_ratio_effect,
    propensity_matched_effect,
    ratio_did_estimate,
    run_field_test,
)
from orpr_jax.policies import base_stock, incumbent_rule
from orpr_jax.sim.types import DayOutcome
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
    kw.setdefault("train_row_ids", ())  # the synthetic data set trained nothing
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
    # Starved row-weeks (no sales) exist, and turnover still counts every cell of them.
    turn = less.metrics["turnover_days"]
    assert np.isnan(turn.panel).any()
    assert turn.did.num_obs == turn.panel.size and turn.matched.num_treated == less.treated.sum()
    assert less.metrics["in_stock_rate"].did.t_stat < -3
    # Starved rows add ~0 to both sums, so the turnover cut is small and noisy here (the
    # old mean of per-row-week ratios dropped those weeks and found t < -3); the
    # starvation shows in the in-stock rate and the lost sales.
    assert less.metrics["total_cost"].did.t_stat > 3  # lost sales
    for name in ("turnover_days", "holding_cost", "in_stock_rate"):
        assert less.metrics[name].did.effect < 0, name
        assert less.metrics[name].matched.att < 0, name


def test_did_is_reported_when_no_row_can_be_matched(identical, data, monkeypatch):
    # On few rows no treated row may have a control within the caliper (the matching
    # functions raise then): the matched estimate is absent, and the DiD, which does not
    # need it, is the same as with matching.
    from orpr_jax.evaluation.field_test import trial

    def no_match(*args, **kwargs):
        raise ValueError("caliper=0.2 leaves no treated row matched")

    monkeypatch.setattr(trial, "propensity_matched_effect", no_match)
    monkeypatch.setattr(trial, "matched_ratio_effect", no_match)
    narrow = _field(data, INCUMBENT)
    for name in METRICS:
        assert narrow.metrics[name].matched is None
        assert narrow.metrics[name].did.effect == identical.metrics[name].did.effect
    rows = field_test_table(narrow)
    assert all(np.isnan(r["matched_att"]) for r in rows)
    assert "n/a (no match within the caliper)" in field_test_markdown(rows)


def test_policy_pytree_accepted_in_place_of_factory(identical, data):
    r = run_field_test(data, INCUMBENT, INCUMBENT, jax.random.key(0), train_row_ids=())
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
    assert lines[0].startswith("| metric | unit |") and "DiD effect ± SE" in lines[0]
    assert text == field_test_markdown(rows)
    assert "%" in lines[3]  # in-stock rate in percent
    assert [r["unit"] for r in rows] == [UNITS[n] for n in METRICS]
    assert UNITS["holding_cost"] == UNITS["total_cost"] == "cost per row-day"
    assert "| holding_cost | per row-day |" in text and "| total_cost | per row-day |" in text


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
        run_field_test(data, lambda env, params: 3.0, INCUMBENT, jax.random.key(0),
                       train_row_ids=())


# ---------------------------------------------------------------------------------------
# (h) Units: costs per row-day.


def _outcome(**leaves):
    """A DayOutcome of ``[T, R]`` float64 leaves; the ones not given are zero."""
    shape = next(iter(leaves.values())).shape
    fields = {f.name: np.asarray(leaves.get(f.name, np.zeros(shape)), np.float64)
              for f in dataclasses.fields(DayOutcome)}
    return DayOutcome(**fields)


def test_field_panels_costs_are_per_row_day():
    # 2 rows x 14 days, weekly periods. Row 0 holds 2.0 a day: 14.0 a week, 2.0 per
    # row-day. Row 1 pays the day index: week 0 sums 0 + ... + 6 = 21 (3.0 per row-day),
    # week 1 sums 7 + ... + 13 = 70 (10.0 per row-day).
    days = np.arange(14.0)
    holding = np.stack([np.full(14, 2.0), days], axis=1)
    panels = field_panels(_outcome(holding_cost=holding, cost=2.0 * holding,
                                   in_stock=np.ones((14, 2))), 0, 2, 7)
    np.testing.assert_allclose(panels["holding_cost"], [[2.0, 2.0], [3.0, 10.0]])
    np.testing.assert_allclose(panels["total_cost"], [[4.0, 4.0], [6.0, 20.0]])
    np.testing.assert_allclose(panels["in_stock_rate"], 1.0)
    # 3-day periods give the same per-row-day level for the constant row.
    np.testing.assert_allclose(field_panels(_outcome(holding_cost=holding), 0, 4, 3)[
        "holding_cost"][0], 2.0)


def test_did_effect_is_per_row_day():
    # 4 rows x 28 days, 2 pre and 2 post weeks. Every row holds 1.0 a day; treated rows
    # (0, 1) hold 1.5 a day after the switch (day 14). DiD = 0.5 per row-day (3.5 per
    # row-week, the unit the panels had before).
    hold = np.ones((28, 4))
    hold[14:, :2] = 1.5
    panels = field_panels(_outcome(holding_cost=hold), 0, 4, 7)
    r = did_estimate(panels["holding_cost"], np.array([1, 1, 0, 0], bool),
                     np.arange(4) >= 2)
    assert r.effect == pytest.approx(0.5)
    assert (r.treated_pre, r.treated_post, r.control_post) == pytest.approx((1.0, 1.5, 1.0))


# ---------------------------------------------------------------------------------------
# (i) Turnover: a ratio of sums per cell, delta-method standard errors.

# Rows 0, 1 treated, 2, 3 control; one pre and one post period. Row 1 is starved after
# the switch: 6 units on hand, no sales.
_A = np.array([[4.0, 6.0], [2.0, 6.0], [3.0, 3.0], [3.0, 5.0]])   # on-hand sums
_B = np.array([[2.0, 2.0], [2.0, 0.0], [1.0, 1.0], [3.0, 3.0]])   # sales sums
_TR = np.array([True, True, False, False])
_PO = np.array([False, True])


def test_starved_row_counts_in_its_cell():
    r = ratio_did_estimate(_A, _B, _TR, _PO)
    # Treated: pre 6/4 = 1.5, post 12/2 = 6 (row 1's stock counts); control: pre 6/4 =
    # 1.5, post 8/4 = 2. Effect = (6 - 1.5) - (2 - 1.5) = 4.
    assert (r.treated_pre, r.treated_post, r.control_pre, r.control_post) == (1.5, 6.0, 1.5,
                                                                              2.0)
    assert r.effect == pytest.approx(4.0)
    assert r.num_obs == 8 and r.num_rows == 4
    # Dropping the starved row (what NaN per-row ratios did) gives another answer:
    # treated 6/2 = 3 and 4/2 = 2, effect (3 - 2) - 0.5 = 0.5.
    keep = [0, 2, 3]
    assert ratio_did_estimate(_A[keep], _B[keep], _TR[keep], _PO).effect == pytest.approx(0.5)
    # field_panels gives the sums the estimator needs, with the starved cell kept.
    on_hand = np.repeat(_A.T / 7.0, 7, axis=0)
    sales = np.repeat(_B.T / 7.0, 7, axis=0)
    panels = field_panels(_outcome(on_hand_end=on_hand, sales=sales), 0, 2, 7)
    np.testing.assert_allclose(panels["on_hand"], _A)
    np.testing.assert_allclose(panels["sales"], _B)
    assert np.isnan(panels["turnover_days"][1, 1])  # the per-cell ratio is undefined


def test_ratio_se_hand_computed():
    r = ratio_did_estimate(_A, _B, _TR, _PO)
    # Influence of row i: sum over its cells of +-(a - R b) / B (+ treated post and
    # control pre, - the others). Row 0: (6 - 6*2)/2 - (4 - 1.5*2)/4 = -3 - 0.25;
    # row 1: (6 - 0)/2 - (2 - 3)/4 = 3.25; row 2: -(3 - 2)/4 + (3 - 1.5)/4 = 0.125;
    # row 3: -(5 - 6)/4 + (3 - 4.5)/4 = -0.125. V = 4/3 * (2 * 3.25^2 + 2 * 0.125^2).
    assert r.se == pytest.approx(np.sqrt(4 / 3 * (2 * 3.25**2 + 2 * 0.125**2)))
    assert r.dof == 3
    # Cells as clusters: the eight contributions one by one (pre then post per row):
    # row 0: -0.25, -3; row 1: 0.25, 3; row 2: 0.375, -0.25; row 3: -0.375, 0.25.
    u = np.array([-0.25, -3, 0.25, 3, 0.375, -0.25, -0.375, 0.25])
    iid = ratio_did_estimate(_A, _B, _TR, _PO, cluster="none")
    assert iid.se == pytest.approx(np.sqrt(8 / 7 * np.sum(u**2))) and iid.dof == 7


def _ratio_panel(rng, n=120, t=8, n_pre=4, lift=0.3):
    """Sales with row-level rates and AR(1)-like weekly shocks; on-hand = sales x a
    row's cover (serially correlated) + noise; treated rows' cover rises by ``lift``
    after the switch; some post weeks of treated rows sell nothing."""
    treated = np.arange(n) < n // 2
    post = np.arange(t) >= n_pre
    rate = rng.lognormal(1.5, 0.6, n)[:, None] * rng.lognormal(0.0, 0.3, (n, t))
    sales = rng.poisson(rate).astype(float)
    cover = rng.lognormal(1.0, 0.3, n)[:, None] + 0.3 * rng.standard_normal((n, t))
    cover = np.abs(cover + lift * (treated[:, None] & post[None, :]))
    on_hand = rate * cover + rng.exponential(1.0, (n, t))
    starve = treated[:, None] & post[None, :] & (rng.random((n, t)) < 0.1)
    sales[starve] = 0.0
    return on_hand, sales, treated, post


def test_ratio_se_matches_cluster_bootstrap_and_monte_carlo():
    rng = np.random.default_rng(11)
    a, b, tr, po = _ratio_panel(rng)
    r = ratio_did_estimate(a, b, tr, po)
    # A row-cluster bootstrap (rows resampled within treated and control).
    ti, ci = np.flatnonzero(tr), np.flatnonzero(~tr)
    boot = []
    for _ in range(400):
        pick = np.concatenate([rng.choice(ti, ti.size), rng.choice(ci, ci.size)])
        boot.append(ratio_did_estimate(a[pick], b[pick], tr[pick], po).effect)
    assert 0.85 < r.se / np.std(boot) < 1.15
    # Monte Carlo: the SE matches the spread of the estimate, the 95% interval covers
    # the mean estimate about 95% of the time.
    reps = [ratio_did_estimate(*_ratio_panel(rng)) for _ in range(300)]
    eff = np.array([x.effect for x in reps])
    se = np.array([x.se for x in reps])
    assert 0.8 < se.mean() / eff.std() < 1.2
    assert 0.9 < np.mean([x.ci_low <= eff.mean() <= x.ci_high for x in reps]) < 0.99
    assert np.all([x.num_obs == a.size for x in reps])


def test_ratio_pretrend_flags_diverging_trends():
    rng = np.random.default_rng(12)
    a, b, tr, po = _ratio_panel(rng, lift=0.0)
    flat = ratio_did_estimate(a, b, tr, po)
    assert np.isfinite(flat.pretrend_p)
    trend = a * (1.0 + 0.3 * tr[:, None] * np.arange(a.shape[1])[None, :])
    steep = ratio_did_estimate(trend, b, tr, po)
    assert steep.pretrend_p < 0.01 and steep.pretrend_slope > 0


def test_matched_ratio_effect_known_matches():
    # One covariate: treated rows at 0 and 10, controls at 0.1, 10.1 and 50; the logit
    # propensity is monotone in it, so the matches are rows 2 and 3 (row 4 unused), and
    # the matched effect is the ratio DiD of rows 0-3 with its delta-method SE.
    a = np.vstack([_A, [[50.0, 1.0]]])
    b = np.vstack([_B, [[1.0, 9.0]]])
    x = np.array([0.0, 10.0, 0.1, 10.1, 50.0])
    tr = np.array([True, True, False, False, False])
    r = matched_ratio_effect(a, b, x, tr, _PO, caliper=np.inf)
    ref = ratio_did_estimate(_A, _B, _TR, _PO)
    assert r.num_matched == 2 and r.num_controls_used == 2 and r.num_controls == 3
    assert r.att == pytest.approx(ref.effect) and r.se == pytest.approx(ref.se)
    assert r.naive == pytest.approx(ratio_did_estimate(a, b, tr, _PO).effect)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(numerator=np.arange(4.0)), "numerator"),
        (dict(numerator=-_A), "numerator"),
        (dict(numerator=np.where(_A == 6, np.nan, _A)), "numerator"),
        (dict(denominator=_B[:3]), "denominator"),
        (dict(treated=_TR[:3]), "treated"),
        (dict(treated=np.ones(4, bool)), "treated"),
        (dict(post=np.ones(2, bool)), "post"),
        (dict(cluster="sku"), "cluster"),
        (dict(denominator=_B * np.array([1.0, 0.0])), "identified"),
    ],
)
def test_ratio_did_bad_inputs(kwargs, field):
    args = dict(numerator=_A, denominator=_B, treated=_TR, post=_PO) | kwargs
    with pytest.raises(ValueError, match=field):
        ratio_did_estimate(**args)


def test_matched_ratio_bad_inputs():
    x = np.arange(4.0)
    for kwargs, field in [(dict(covariates=x[:3]), "covariates"),
                          (dict(covariates=np.where(x > 2, np.nan, x)), "covariates"),
                          (dict(caliper=0.0), "caliper"), (dict(ridge=-1.0), "ridge"),
                          (dict(newton_steps=0), "newton_steps")]:
        args = dict(covariates=x) | kwargs
        with pytest.raises(ValueError, match=field):
            matched_ratio_effect(_A, _B, args.pop("covariates"), _TR, _PO, **args)


# ---------------------------------------------------------------------------------------
# (j) Held-out rows only.


def test_field_test_refuses_training_rows(data):
    ids = data.rows["row_id"].to_numpy()
    with pytest.raises(ValueError, match="train_row_ids"):
        _field(data, INCUMBENT, train_row_ids=ids[:3])
    with pytest.raises(ValueError, match="train_row_ids"):
        _field(data, INCUMBENT, train_row_ids=str(ids[0]))
    with pytest.raises(TypeError, match="train_row_ids"):  # required: no silent default
        run_field_test(data, INCUMBENT, INCUMBENT, jax.random.key(0))
    held = data.select_rows(np.arange(3, data.num_rows))
    r = _field(held, INCUMBENT, train_row_ids=ids[:3], post_days=14)
    assert r.treated.size == held.num_rows
