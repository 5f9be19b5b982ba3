"""The gymnax adapter: spaces, jit/vmap, truncation and auto-reset, registration, the
row slicing against the batched simulator, and every bad-input error path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gymnax = pytest.importorskip("gymnax", reason="gymnax is in the optional peers extra")

import orpr_jax  # noqa: E402
import orpr_jax.adapters as ad  # noqa: E402
from orpr_jax.adapters import gymnax_env as ge  # noqa: E402
from orpr_jax.adapters.rows import ROW_AXIS, ActionSpec, split_rows, take_row  # noqa: E402

SPECS = {
    "discrete": ActionSpec(),
    "inventory_days": ActionSpec("inventory_days", values=tuple(range(1, 16)), window=14),
    "box": ActionSpec(continuous=True),
}


def _rollout(env, params, key, days):
    """``days`` steps with random actions from the action space; returns stacked outputs."""
    obs, state = env.reset(key, params)

    def body(carry, k):
        state = carry
        act_key, step_key = jax.random.split(k)
        action = env.action_space(params).sample(act_key)
        obs, state, reward, term, trunc, info = env.step(step_key, state, action, params)
        return state, (obs, reward, term, trunc, info["final_observation"], state.time)

    _, out = jax.lax.scan(body, state, jax.random.split(key, days))
    return obs, out


@pytest.mark.parametrize("name", list(SPECS))
def test_spaces_contain_observations_and_actions(name):
    env, params = ad.make("orpr/LostSales-v0", action=SPECS[name], max_steps_in_episode=20)
    space = env.observation_space(params)
    obs0, (obs, reward, term, trunc, _, _) = _rollout(env, params, jax.random.key(0), 45)
    assert space.shape == obs0.shape == (14 + env.config.max_lead_time,)
    assert obs0.dtype == jnp.float32 and obs.dtype == jnp.float32
    assert bool(space.contains(obs0)) and bool(jax.vmap(space.contains)(obs).all())
    assert reward.dtype == jnp.float32 and bool(jnp.all(reward <= 0))
    assert not bool(term.any())
    act = env.action_space(params)
    sample = act.sample(jax.random.key(3))
    assert bool(act.contains(sample))
    if name == "box":
        assert act.shape == (1,) and float(act.low) == -1.0 and float(act.high) == 1.0
    else:
        assert act.n == len(SPECS[name].values) == env.num_actions


def test_jd_synthetic_row_env_spaces():
    env, params = gymnax.make("orpr/JDSynthetic-v0", row=5, num_skus=20)
    assert env.config.demand_mode == "trace" and env.config.num_rows == 1
    obs0, (obs, *_rest) = _rollout(env, params, jax.random.key(1), 30)
    space = env.observation_space(params)
    assert bool(space.contains(obs0)) and bool(jax.vmap(space.contains)(obs).all())


def test_truncation_and_auto_reset():
    n = 7
    env, params = ad.make("orpr/LostSales-v0", max_steps_in_episode=n)
    obs0, (obs, _, term, trunc, final, time) = _rollout(env, params, jax.random.key(2), 2 * n)
    trunc = np.asarray(trunc)
    # Steps are 1-based: the n-th and 2n-th steps truncate, nothing else.
    assert np.flatnonzero(trunc).tolist() == [n - 1, 2 * n - 1]
    assert not np.asarray(term).any()
    assert np.asarray(time)[n - 1] == 0 and np.asarray(time)[n] == 1
    # The returned observation at truncation is the reset one (reset is deterministic)...
    np.testing.assert_array_equal(obs[n - 1], obs0)
    # ... and the last observation of the episode is kept in info.
    assert not np.array_equal(final[n - 1], obs0)
    np.testing.assert_array_equal(final[n - 2], obs[n - 2])


def test_jit_equals_no_jit():
    env, params = ad.make("orpr/LostSales-v0")
    _, state = env.reset_env(jax.random.key(0), params)
    key = jax.random.key(4)
    eager = env.step_env(key, state, jnp.int32(7), params)
    jitted = jax.jit(env.step_env)(key, state, jnp.int32(7), params)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_vmap_over_keys_equals_loop():
    env, params = ad.make("orpr/LostSales-v0")
    keys = jax.random.split(jax.random.key(5), 4)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.arange(4, dtype=jnp.int32) * 3
    out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
    for i in range(4):
        _, s_i = env.reset(keys[i], params)
        o_i, _, r_i, *_ = env.step(keys[i], s_i, actions[i], params)
        np.testing.assert_allclose(np.asarray(out[0][i]), np.asarray(o_i), rtol=1e-6)
        assert float(out[2][i]) == pytest.approx(float(r_i))


def test_rows_match_the_batched_simulator():
    """vmap over every row's EnvParams replays what the batched env does for those rows
    (trace demand, fixed lead times: no random draw, so the runs must agree exactly).

    Capacity is made non-binding: a one-row env keeps its warehouse's capacity but cannot
    share it with the warehouse's other rows (documented), so binding capacity differs.
    """
    sim_env, sim_params = orpr_jax.make("jd_synthetic", num_skus=12,
                                        stochastic_lead_time=False)
    assert sim_env.config.use_capacity and sim_env.config.use_review
    sim_params = sim_params.replace(capacity=jnp.full_like(sim_params.capacity, 1e9))
    env, _ = ad.make_row_env("jd_synthetic", num_skus=12, stochastic_lead_time=False,
                             action=ActionSpec(values=(0.0, 1.0, 2.0)))
    rows = ad.all_rows(env, sim_params, sim_env.config)
    r = sim_env.num_rows
    key = jax.random.key(0)
    _, s_batch = sim_env.reset(key, sim_params)
    _, s_rows = jax.vmap(env.reset, in_axes=(None, 0))(key, rows)
    cost_b, cost_r = 0.0, 0.0
    for day in range(20):
        k = jax.random.fold_in(key, day)
        action = jnp.full((r,), day % 3, jnp.int32)
        _, s_batch, rew_b, *_ = sim_env.step(k, s_batch, action.astype(jnp.float32),
                                             sim_params)
        _, s_rows, rew_r, *_ = jax.vmap(env.step, in_axes=(None, 0, 0, 0))(k, s_rows, action,
                                                                          rows)
        cost_b, cost_r = cost_b - np.asarray(rew_b), cost_r - np.asarray(rew_r)
    assert np.asarray(cost_b).sum() > 0
    np.testing.assert_allclose(cost_r, cost_b, rtol=1e-5)


def test_row_axis_table_matches_distributed():
    from orpr_jax.distributed.padding import ROW_AXIS as DIST_ROW_AXIS

    assert ROW_AXIS == DIST_ROW_AXIS


def test_split_rows_gives_valid_one_row_params():
    env, params = orpr_jax.make("jd_synthetic", num_skus=8)
    rows = split_rows(env.config, params)
    row = take_row(rows, 3)
    assert row.demand_trace.shape == (params.demand_trace.shape[0], 1)
    np.testing.assert_array_equal(np.asarray(row.demand_trace[:, 0]),
                                  np.asarray(params.demand_trace[:, 3]))
    assert int(row.warehouse[0]) == 0
    assert float(row.capacity[0]) == float(params.capacity[int(params.warehouse[3])])


def test_registration_and_make_contract():
    assert {"orpr/LostSales-v0", "orpr/JDSynthetic-v0"} <= set(gymnax.registered_envs)
    env, params = gymnax.make("orpr/LostSales-v0", lead_time=3)
    assert isinstance(env, gymnax.environments.environment.Environment)
    assert env.name == "orpr/LostSales-v0" and env.config.max_lead_time == 3
    assert params is env.default_params and params.max_steps_in_episode == 365
    ge.register()  # idempotent
    with pytest.raises(ValueError, match="env_id='orpr/Nope-v0' is not allowed"):
        ad.make("orpr/Nope-v0")


def test_legacy_step_gives_five_values():
    env, params = ad.make("orpr/LostSales-v0", max_steps_in_episode=1)
    legacy = ad.legacy_step(env)
    obs, state = legacy.reset(jax.random.key(0), params)
    out = legacy.step(jax.random.key(1), state, 3, params)
    assert len(out) == 5 and bool(out[3])  # truncated after one day -> done
    assert legacy.default_params is params and legacy.num_actions == env.num_actions
    assert legacy.observation_space(params).shape == env.observation_space(params).shape


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(action=ActionSpec("inventory_days", window=40)), r"window=40 .*\[1, history_length=28\]"),
    (dict(reward_scale=0.0), r"reward_scale=0.0 is not allowed; expected a finite number > 0"),
    (dict(max_steps_in_episode=0), r"max_steps_in_episode=0 is not allowed; expected an integer >= 1"),
    (dict(scale=-1.0), r"scale=-1.0 is not allowed"),
    (dict(row=5, num_rows=3), r"row=5 is not allowed; expected an integer in \[0, 3\)"),
    (dict(lead_time=0), r"lead_time=0 is not allowed"),
])
def test_bad_input_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ad.make("orpr/LostSales-v0", **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(kind="units"), r"action='units' is not allowed"),
    (dict(values=(3.0,)), r"values=\(3.0,\) is not allowed; expected >= 2"),
    (dict(values=(0.0, float("nan"))), r"is not allowed; expected >= 2 finite"),
    (dict(values=(2.0, 1.0)), r"expected increasing bins"),
    (dict(window=0), r"window=0 is not allowed; expected an integer >= 1"),
])
def test_bad_action_spec(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActionSpec(**kwargs)
