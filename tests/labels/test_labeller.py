"""The rolling-horizon labeller, the label-set cache and the label-playing policies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.labels import selection as sel
from orpr_jax.labels.dataset import cached_labels, input_hash, load_labels
from orpr_jax.labels.labeller import LabelConfig, label_decisions
from orpr_jax.policies import IncumbentRule, LabelPolicy
from orpr_jax.sim.dynamics import observe


@pytest.fixture(scope="module")
def env_params():
    data = generate(jax.random.key(5), SyntheticSpec(num_skus=30, num_warehouses=2,
                                                     num_categories=3, num_days=110))
    return orpr_jax.env_from_data(data, start=28, num_days=80)


SMALL = dict(v_max=12, max_horizon=20, stride=14)


def test_labels_shapes_and_consistency(env_params):
    env, params = env_params
    labels = label_decisions(env, params, jax.random.key(0), LabelConfig(**SMALL))
    d, r = labels.v.shape
    assert r == env.num_rows and d == len(labels.days) >= 3
    np.testing.assert_array_equal(np.diff(labels.days), 14)
    assert labels.features.sales_history.shape == (d, r, env.config.history_length)
    np.testing.assert_array_equal(labels.v, LabelConfig(**SMALL).candidates[labels.choice])
    assert np.all(np.isfinite(labels.stock)) and np.all(np.isfinite(labels.loss))
    # Rows of one category in one warehouse share their label (grouped selection).
    cat, wh = np.asarray(params.category), np.asarray(params.warehouse)
    for g in set(zip(cat, wh, strict=True)):
        rows = (cat == g[0]) & (wh == g[1])
        assert np.all(labels.v[:, rows] == labels.v[:, rows][:, :1])
    # Features are the observation at each decision day.
    assert np.all(labels.features.t[:, 0] == labels.days)
    assert labels.meta["dates"] == d and labels.meta["rows"] == r


def test_tighter_alpha_never_lowers_total_days(env_params):
    env, params = env_params
    totals = []
    for alpha in (0.7, 0.9, 0.99):
        lc = LabelConfig(alpha=alpha, max_dates=1, **SMALL)
        labels = label_decisions(env, params, jax.random.key(0), lc)
        totals.append(labels.choice[0].sum())
    assert totals[0] <= totals[1] <= totals[2]


def test_infeasible_alpha_is_reported_not_nan(env_params):
    env, params = env_params
    # alpha = 1 allows no lost unit at all; losses before the first order can arrive are
    # unavoidable, so some warehouse-dates are infeasible and fall back to min loss.
    lc = LabelConfig(alpha=1.0, max_dates=2, **SMALL)
    labels = label_decisions(env, params, jax.random.key(0), lc)
    assert labels.meta["infeasible_count"] > 0
    assert labels.meta["infeasible_count"] == int((~labels.feasible).sum())
    assert {"date_index", "day", "warehouse"} <= set(labels.meta["infeasible"][0])
    assert np.all(np.isfinite(labels.v))
    d, w = labels.meta["infeasible"][0]["date_index"], labels.meta["infeasible"][0]["warehouse"]
    problem = sel.SelectionProblem(
        stock=jnp.asarray(labels.stock[d, w][None]), loss=jnp.asarray(labels.loss[d, w][None]),
        budget=jnp.asarray(labels.budget[d, w][None]),
        allowed=jnp.asarray(labels.allowed[d, w][None]),
        active=jnp.asarray(labels.active[d, w][None]))
    fallback = sel.min_loss_choice(problem)[0]
    act = labels.active[d, w]
    chosen = np.array([labels.choice[d][np.asarray(params.warehouse) == w]])
    assert set(chosen.ravel()) <= set(fallback[act].tolist())


def test_three_solvers_agree_on_recorded_problems(env_params):
    env, params = env_params
    labels = label_decisions(env, params, jax.random.key(0),
                             LabelConfig(max_dates=3, **SMALL))
    flat = lambda x: jnp.asarray(x.reshape((-1,) + x.shape[2:]))  # noqa: E731
    problem = sel.SelectionProblem(stock=flat(labels.stock), loss=flat(labels.loss),
                                   budget=flat(labels.budget), allowed=flat(labels.allowed),
                                   active=flat(labels.active))
    milp, fast, lp = sel.solve_milp(problem), sel.solve_dual(problem), sel.solve_batched_lp(problem)
    np.testing.assert_array_equal(milp.feasible, fast.feasible)
    ok = np.asarray(milp.feasible)
    m = np.asarray(milp.objective)[ok]
    assert np.all(np.asarray(fast.objective)[ok] <= m * 1.01 + 1e-6)
    assert np.all(np.asarray(fast.objective)[ok] >= m * (1 - 1e-6) - 1e-6)
    assert np.all(np.asarray(lp.objective)[ok] >= m * (1 - 1e-6) - 1e-6)
    assert np.all(np.asarray(lp.total_loss)[ok] <= np.asarray(problem.budget)[ok] * (1 + 1e-4))


def test_milp_solver_in_the_loop(env_params):
    env, params = env_params
    lc = LabelConfig(max_dates=1, solver="milp", **SMALL)
    exact = label_decisions(env, params, jax.random.key(0), lc)
    fast = label_decisions(env, params, jax.random.key(0), LabelConfig(max_dates=1, **SMALL))
    np.testing.assert_allclose(exact.stock, fast.stock)  # same replays
    assert exact.meta["label_config"]["solver"] == "milp"


def test_label_policy_reproduces_the_labelled_run(env_params):
    env, params = env_params
    lc = LabelConfig(**SMALL)
    labels = label_decisions(env, params, jax.random.key(0), lc)
    policy = LabelPolicy(v=jnp.asarray(labels.v), days=jnp.asarray(labels.days))
    _, state = env.reset(jax.random.key(0), params)
    obs = observe(env.config, params, state.replace(t=jnp.int32(15)))
    # Day 15 lies in the second decision window (days 14..27).
    expected = orpr_jax.policies.InventoryDays(v=jnp.asarray(labels.v[1]))(obs, None)
    np.testing.assert_allclose(policy(obs, None), expected)
    m = orpr_jax.evaluate(env, params, policy, jax.random.key(0), 80, 14)
    assert np.isfinite(float(m["total_cost"]))


def test_incumbent_rule_days_of_cover(env_params):
    env, params = env_params
    _, state = env.reset(jax.random.key(0), params)
    obs = observe(env.config, params, state)
    v = obs.lead_time_mean + obs.review_period.astype(jnp.float32) + 2.0
    expected = orpr_jax.policies.InventoryDays(v=v)(obs, None)
    np.testing.assert_allclose(IncumbentRule(safety_days=jnp.float32(2.0))(obs, None), expected)


def test_cache_hit_miss_and_corruption(env_params, tmp_path):
    env, params = env_params
    lc = LabelConfig(max_dates=1, **SMALL)
    key = jax.random.key(0)
    first, reused = cached_labels(env, params, key, lc, tmp_path)
    assert not reused
    again, reused = cached_labels(env, params, key, lc, tmp_path)
    assert reused
    np.testing.assert_array_equal(first.v, again.v)
    _, reused = cached_labels(env, params, key, LabelConfig(max_dates=1, alpha=0.9, **SMALL),
                              tmp_path)
    assert not reused  # another alpha is another hash
    # Corrupt the first config's folder (named by its input hash), not whichever is listed first.
    folder = tmp_path / f"labels-{input_hash(env, params, key, lc)[:16]}"
    assert folder.is_dir()
    (folder / "labels.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="rebuilding the label set"):
        rebuilt, reused = cached_labels(env, params, key, lc, tmp_path)
    assert not reused
    np.testing.assert_array_equal(rebuilt.v, first.v)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="unreadable"):
        load_labels(tmp_path / "missing")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"alpha": 0.0}, r"alpha=0\.0 is not allowed; expected a number in \(0, 1\]"),
        ({"alpha": 1.5}, r"alpha=1\.5"),
        ({"v_min": 5, "v_max": 3}, r"v_min=5 > v_max=3"),
        ({"stride": 0}, r"stride=0"),
        ({"grouping": "sku"}, r"grouping='sku'"),
        ({"solver": "gurobi"}, r"solver='gurobi'"),
        ({"objective": "cost"}, r"objective='cost'"),
        ({"max_dates": 0}, r"max_dates=0"),
        ({"turnover_cap": -1.0}, r"turnover_cap=-1\.0"),
    ],
)
def test_label_config_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        LabelConfig(**kwargs)


def test_period_shorter_than_horizon(env_params):
    env, params = env_params
    short = params.replace(demand_trace=params.demand_trace[:10])
    with pytest.raises(ValueError, match=r"num_days=10 is shorter than the replay horizon"):
        label_decisions(env, short, jax.random.key(0), LabelConfig(**SMALL))


def test_sampled_demand_env_is_rejected():
    env, params = orpr_jax.make("lost_sales", num_rows=3)
    with pytest.raises(ValueError, match=r"demand_mode='table' is not allowed for labelling"):
        label_decisions(env, params, jax.random.key(0), LabelConfig(**SMALL))


def test_per_row_grouping_and_scenarios(env_params):
    env, params = env_params
    lc = LabelConfig(max_dates=1, grouping="row", scenarios=2, **SMALL)
    labels = label_decisions(env, params, jax.random.key(0), lc)
    assert labels.meta["groups"] == env.num_rows
    assert np.all(np.isfinite(labels.v))


def test_horizon_shorter_than_lead_time(env_params):
    env, params = env_params
    with pytest.raises(ValueError, match=r"max_horizon=2 is not allowed; .*longest lead time"):
        label_decisions(env, params, jax.random.key(0),
                        LabelConfig(v_max=5, max_horizon=2, stride=14))


def test_non_finite_replays_are_rejected(env_params):
    env, params = env_params
    bad = params.replace(holding_cost=params.holding_cost.at[0].set(jnp.inf))
    with pytest.raises(ValueError, match=r"replay results \['stock_value'\] are not finite"):
        label_decisions(env, bad, jax.random.key(0), LabelConfig(max_dates=1, **SMALL))


def test_jd_labels_one_call(tmp_path):
    from orpr_jax.scenarios import jd_labels

    lc = LabelConfig(max_dates=1, **SMALL)
    env, params, labels = jd_labels("train", lc, cache_dir=str(tmp_path), num_skus=20)
    assert labels.v.shape == (1, env.num_rows)
    _, _, again = jd_labels("train", lc, cache_dir=str(tmp_path), num_skus=20)
    np.testing.assert_array_equal(labels.v, again.v)
