"""The deployable OR model: scenarios fitted on the observed window, the policy pytree
under ``evaluate``, no look-ahead, a hand-built decision, and its input errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.labels import selection as sel
from orpr_jax.labels.labeller import LabelConfig, label_decisions
from orpr_jax.labels.online import (
    OnlineConfig,
    demand_means,
    fit_demand,
    make_online_policy,
    planning_params,
    scenario_demand,
    state_from_obs,
    take_rows,
)
from orpr_jax.labels.replay import replay_candidates, replay_config
from orpr_jax.policies import inventory_days
from orpr_jax.sim.dynamics import observe
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimState

SMALL = OnlineConfig(candidates=tuple(float(v) for v in range(1, 9)), alpha=0.9,
                     scenarios=4, max_horizon=20)


@pytest.fixture(scope="module")
def jd():
    data = generate(jax.random.key(5), SyntheticSpec(num_skus=8, num_warehouses=2,
                                                     num_categories=2, num_days=90))
    return orpr_jax.env_from_data(data, start=28, num_days=60)


@pytest.fixture(scope="module")
def lost():
    return orpr_jax.make("lost_sales", num_rows=6)


def _run(env, params, days, key=0, v=6.0):
    """State and observation after ``days`` days of inventory days ``v``."""
    obs, state = env.reset(jax.random.key(key), params)
    policy = inventory_days(v)
    for d in range(days):
        obs, state, *_ = env.step(jax.random.key(100 + d), state, policy(obs, None), params)
    return observe(env.config, params, state), state


def _per_row_env():
    """Per-row fixed lead times with initial pipeline due beyond a row's lead time."""
    env, params = orpr_jax.make("lost_sales", num_rows=3, lead_time=4)
    cfg = env.config.replace(lead_time_mode="per_row")
    pipe = np.zeros((5, 3), np.float32)
    pipe[1:, :] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [2, 2, 2]]
    params = params.replace(lead_time=jnp.asarray([1, 2, 4], jnp.int32),
                            initial_pipeline=jnp.asarray(pipe))
    return InventoryEnv(cfg), params


@pytest.mark.parametrize("which", ["jd", "per_row"])
def test_state_from_obs_replays_like_the_real_state(which, jd):
    env, params = jd if which == "jd" else _per_row_env()
    obs, state = _run(env, params, 2)
    rebuilt = state_from_obs(env.config, planning_params(params), obs)
    again = observe(env.config, planning_params(params), rebuilt)
    for name in ("on_hand", "backlog", "pipeline", "inventory_position", "sales_history",
                 "stockout_history", "long_run_level"):
        np.testing.assert_allclose(getattr(again, name), getattr(obs, name), err_msg=name)
    # The replays from the real and the rebuilt state agree (arrivals included).
    rcfg = replay_config(env.config)
    cands = jnp.asarray([1.0, 4.0, 9.0])
    h = 8
    demand = jnp.ones((1, h, env.num_rows), jnp.float32)
    row_h = jnp.full((env.num_rows,), h, jnp.int32)
    a = replay_candidates(rcfg, params, state, cands, demand, row_h, jax.random.key(3), h)
    b = replay_candidates(rcfg, planning_params(params), rebuilt, cands, demand, row_h,
                          jax.random.key(3), h)
    for x, y, name in zip(a, b, a._fields, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, err_msg=name)


def test_forecast_fit_hand_case(lost):
    env, params = lost
    obs, _ = env.reset(jax.random.key(0), params)
    h = env.config.history_length
    # 2 units every day, all in stock, long-run level 2: level 2, flat weekdays, no
    # overdispersion ((s - mu)^2 - mu = -2 < 0 is clipped to 0).
    obs = obs.replace(sales_history=jnp.full((6, h), 2.0), long_run_level=jnp.full((6,), 2.0),
                      promo_ahead=obs.promo_ahead.at[:, 2].set(1.0))
    fit = fit_demand(obs, h, prior_uplift=3.0)
    np.testing.assert_allclose(fit.level, 2.0, rtol=1e-6)
    np.testing.assert_allclose(fit.weekday, 1.0, rtol=1e-6)
    np.testing.assert_allclose(fit.dispersion, 0.0)
    mu = demand_means(fit, obs, 10)
    # Day 3 ahead is flagged (promo_ahead column 2): 2 x 3; past the look-ahead, 2.
    np.testing.assert_allclose(mu[0], [2, 2, 2, 6, 2, 2, 2, 2, 2, 2], rtol=1e-6)
    for model in ("negbin", "bootstrap"):
        d = scenario_demand(jax.random.key(1), obs, 10, 64, model=model, window=h,
                            prior_uplift=3.0)
        assert d.shape == (64, 10, 6) and bool(jnp.all(d >= 0))
        np.testing.assert_allclose(d.mean(axis=(0, 2)), mu[0], rtol=0.25)


def test_runs_under_evaluate_and_beats_a_bad_fixed_v(lost):
    env, params = lost
    policy = make_online_policy(env, params, SMALL)
    online = orpr_jax.evaluate(env, params, policy, jax.random.key(2), 60, 10)
    bad = orpr_jax.evaluate(env, params, inventory_days(1.0), jax.random.key(2), 60, 10)
    assert np.isfinite(float(online["total_cost"]))
    assert float(online["total_cost"]) < 0.6 * float(bad["total_cost"])
    assert float(online["fill_rate"]) > float(bad["fill_rate"])


def test_never_reads_the_demand_that_follows(jd):
    env, params = jd
    t = 12
    other = params.replace(demand_trace=params.demand_trace.at[t:].multiply(5.0).at[t:].add(3.0))
    policy = make_online_policy(env, params, SMALL)
    # The policy built from either parameter set is the same pytree (no demand in it).
    for a, b in zip(jax.tree.leaves(policy), jax.tree.leaves(make_online_policy(env, other, SMALL)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    _, outs_a, _ = orpr_jax.rollout(env, params, policy, jax.random.key(4), t + 3)
    _, outs_b, _ = orpr_jax.rollout(env, other, policy, jax.random.key(4), t + 3)
    np.testing.assert_array_equal(outs_a.order[: t + 1], outs_b.order[: t + 1])
    assert np.any(np.asarray(outs_a.demand[t:]) != np.asarray(outs_b.demand[t:]))
    assert float(outs_a.order.sum()) > 0


def test_decision_equals_hand_built_replay_and_selection(lost):
    env, params = lost
    policy = make_online_policy(env, params, SMALL)
    obs, state = _run(env, params, 5)
    key = jax.random.key(7)
    dec = policy.decide(obs, key)
    assert bool(jnp.all(dec.decided))  # no review days: every row decides every day
    i = 3
    scen_key, lead_key = jax.random.split(key)
    row = jnp.asarray([i], jnp.int32)
    obs_i = jax.tree.map(lambda x: x[row], obs)
    demand = scenario_demand(scen_key, obs_i, policy.horizon, SMALL.scenarios, window=28,
                             prior_uplift=2.0, row_ids=row)
    state_i = SimState(**{f: (v if v.ndim == 0 else v[..., row]) for f, v in vars(state).items()})
    cfg_i = replay_config(env.config).replace(num_rows=1)
    rep = replay_candidates(cfg_i, take_rows(params, env.num_rows, row), state_i,
                            jnp.asarray(SMALL.candidates), demand, policy.row_horizon[row],
                            lead_key, policy.horizon, 28, policy.row_start[row])
    budget = (1 - SMALL.alpha) * rep.demand
    problem = sel.SelectionProblem(stock=rep.stock_value.T[None], loss=rep.lost_units.T[None],
                                   budget=budget, allowed=jnp.ones((1, 1, 8), bool),
                                   active=jnp.ones((1, 1), bool))
    choice = int(sel.solve_dual(problem).choice[0, 0])
    # With one group the selection is the least stock among the candidates within budget.
    ok = np.asarray(rep.lost_units[:, 0]) <= float(budget[0]) * (1 + 1e-5)
    assert ok.any() and choice == int(np.argmin(np.where(ok, rep.stock_value[:, 0], np.inf)))
    v = SMALL.candidates[choice]
    forecast = orpr_jax.policies.censored_forecast(obs_i, 28)
    order = max(v * float(forecast[0]) - float(obs.inventory_position[i]), 0.0)
    assert float(dec.v[i]) == v
    np.testing.assert_allclose(float(dec.order[i]), order, rtol=1e-6)


def test_grouped_selection_and_review_days(jd):
    env, params = jd
    cfg = dataclasses.replace(SMALL, grouping="category_warehouse")
    policy = make_online_policy(env, params, cfg)
    assert 1 <= policy.max_reviewing <= env.num_rows
    obs, _ = _run(env, params, 3)
    dec = jax.jit(policy.decide)(obs, jax.random.key(1))
    decided = np.asarray(dec.decided)
    np.testing.assert_array_equal(decided, np.asarray(obs.is_review_day) > 0)
    assert np.all(np.asarray(dec.order)[~decided] == 0)
    cat, wh, v = np.asarray(params.category), np.asarray(params.warehouse), np.asarray(dec.v)
    for g in set(zip(cat[decided], wh[decided], strict=True)):
        rows = decided & (cat == g[0]) & (wh == g[1])
        assert np.all(v[rows] == v[rows][0])


def test_labeller_with_deployable_scenarios(jd):
    env, params = jd
    lc = LabelConfig(v_max=8, max_horizon=20, stride=14, max_dates=1, scenarios=2,
                     scenario_model="bootstrap")
    labels = label_decisions(env, params, jax.random.key(0), lc)
    assert labels.v.shape == (1, env.num_rows) and np.all(np.isfinite(labels.v))
    assert labels.meta["label_config"]["scenario_model"] == "bootstrap"


@pytest.mark.parametrize(("changes", "pattern"), [
    (dict(candidates=()), r"candidates=\(\) is not allowed; expected a non-empty"),
    (dict(candidates=(1.0, -2.0)), r"candidates=.* finite numbers >= 0"),
    (dict(alpha=0.0), r"alpha=0.0 is not allowed; expected a number in \(0, 1\]"),
    (dict(alpha=1.5), r"alpha=1.5 is not allowed; expected a number in \(0, 1\]"),
    (dict(scenarios=0), r"scenarios=0 is not allowed; it must be an integer >= 1"),
    (dict(model="gauss"), r"model='gauss' is not allowed"),
    (dict(grouping="sku"), r"grouping='sku' is not allowed"),
    (dict(prior_uplift=0.0), r"prior_uplift=0.0 is not allowed; expected > 0"),
])
def test_bad_config_is_named(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        OnlineConfig(**changes)


def test_bad_env_fit_is_named(lost):
    env, params = lost
    with pytest.raises(ValueError, match=r"window=40 is not allowed; expected <= "):
        make_online_policy(env, params, OnlineConfig(window=40))
    with pytest.raises(ValueError, match=r"max_horizon=2 is not allowed"):
        make_online_policy(env, params, OnlineConfig(max_horizon=2))
    with pytest.raises(ValueError, match=r"scenario_model='x' is not allowed"):
        LabelConfig(scenarios=2, scenario_model="x")
