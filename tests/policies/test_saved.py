"""Trained policies as files: every trained agent saves and loads back in one call and
plays the same orders; mismatched environments, bins and corrupted folders are refused
with a ValueError naming the mismatch."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import orpr_jax
from orpr_jax.policies import FoundationConfig, FoundationModel, make_foundation_policy
from orpr_jax.policies.saved import PARAMS_FILE, POLICY_FILE, flat_features, load, save
from orpr_jax.train.agents import make_foundation_agent, make_mlp_agent, mlp_features
from orpr_jax.train.rl import HParams, RLConfig, make_train, trained_agent

VALUES = np.arange(0, 11, dtype=np.float32)
DAYS = np.arange(1, 9, dtype=np.float32)


def _obs(env, params, days=12, seed=0):
    """An observation after ``days`` days of a base-stock policy (non-trivial stock)."""
    obs, state = env.reset(jax.random.key(seed), params)
    policy = orpr_jax.policies.base_stock(14.0)
    for t in range(days):
        obs, state, *_ = env.step(jax.random.key(seed + t + 1), state, policy(obs, None),
                                  params)
    return obs


def _tiny_foundation(history_length=28, bins=len(DAYS)):
    cfg = FoundationConfig(num_bins=bins, history_length=history_length, patch_len=7,
                           d_model=16, num_heads=2, num_layers=1, mlp_dim=32,
                           num_categories=4, dropout_rate=0.0)
    return FoundationModel(cfg, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("scenario", ["lost_sales", "jd_synthetic"])
def test_flat_features_equal_the_mlp_agents(scenario):
    kwargs = dict(num_rows=8) if scenario == "lost_sales" else dict(num_skus=6)
    env, params = orpr_jax.make(scenario, **kwargs)
    obs = _obs(env, params)
    scale = jnp.linspace(1.0, 4.0, env.num_rows)
    np.testing.assert_array_equal(np.asarray(flat_features(obs, scale)),
                                  np.asarray(mlp_features(obs, scale)))


def _trained(algorithm: str, env, params):
    agent = make_mlp_agent(VALUES, env.config.max_lead_time, 1, scale=5.0, hidden=(16, 16))
    cfg = RLConfig(algorithm=algorithm, num_updates=2, num_steps=4, num_epochs=1,
                   num_minibatches=2, rloo_k=2)
    runner, _ = jax.jit(make_train(cfg, env, params, agent))(jax.random.key(3),
                                                            HParams.create(learning_rate=1e-2))
    trained = trained_agent(agent, runner, cfg)
    # Training moved the weights, so the round trip below checks trained values.
    assert not np.allclose(np.asarray(trained.params["policy_head"]["kernel"][...]),
                           np.asarray(agent.params["policy_head"]["kernel"][...]))
    return trained


@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "pathwise"])
def test_trained_mlp_agents_round_trip(algorithm, tmp_path):
    env, params = orpr_jax.make("lost_sales", num_rows=8)
    agent = _trained(algorithm, env, params)
    save(agent, tmp_path / "p", env=env)
    policy = orpr_jax.policies.load(tmp_path / "p", env=env)
    obs = _obs(env, params)
    key = jax.random.key(9)
    for mode in ("greedy", "sample", "expected"):
        a = agent.playing(mode)
        save(a, tmp_path / mode, env=env)
        p = load(tmp_path / mode)
        np.testing.assert_allclose(np.asarray(p(obs, key)), np.asarray(a(obs, key)), rtol=1e-6)
    assert policy.meta["mode"] == agent.mode
    assert policy.signature["max_lead_time"] == 2 and policy.signature["num_features"] == 16
    m1 = orpr_jax.evaluate(env, params, agent, jax.random.key(0), 30, 5)
    m2 = orpr_jax.evaluate(env, params, policy, jax.random.key(0), 30, 5)
    assert float(m1["total_cost"]) == pytest.approx(float(m2["total_cost"]), rel=1e-6)


def test_inventory_days_mlp_and_per_row_scale(tmp_path):
    env, params = orpr_jax.make("jd_synthetic", num_skus=6)
    scale = np.linspace(0.5, 3.0, env.num_rows)
    agent = make_mlp_agent(DAYS, env.config.max_lead_time, 2, scale=scale,
                           action="inventory_days", window=14)
    save(agent, tmp_path / "p")
    policy = load(tmp_path / "p", env=env)
    obs = _obs(env, params)
    np.testing.assert_allclose(np.asarray(policy(obs, None)), np.asarray(agent(obs, None)))
    other = orpr_jax.InventoryEnv(env.config.replace(num_rows=env.num_rows - 2))
    with pytest.raises(ValueError, match=rf"num_rows={other.num_rows} of the environment "
                                         rf"does not match the saved policy \(num_rows="
                                         rf"{env.num_rows}\)"):
        load(tmp_path / "p", env=other)


def test_foundation_agent_policy_and_model_round_trip(tmp_path):
    env, params = orpr_jax.make("jd_synthetic", num_skus=6)
    model = _tiny_foundation()
    agent = make_foundation_agent(model, DAYS, alpha=0.9, window=14)
    obs = _obs(env, params)
    key = jax.random.key(1)
    as_policy = make_foundation_policy(model, DAYS, alpha=0.9, window=14, expected_v=True)
    for name, trained in (("agent", agent), ("sample", agent.playing("sample")),
                          ("policy", as_policy)):
        save(trained, tmp_path / name, env=env)
        loaded = load(tmp_path / name, env=env, values=DAYS)
        np.testing.assert_allclose(np.asarray(loaded(obs, key)),
                                   np.asarray(trained(obs, key)), rtol=1e-5, atol=1e-5)
    save(model, tmp_path / "model", values=DAYS)
    loaded = load(tmp_path / "model")
    expected = make_foundation_policy(model, DAYS)
    np.testing.assert_allclose(np.asarray(loaded(obs, key)), np.asarray(expected(obs, key)),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="values=None is not allowed for a bare FoundationModel"):
        save(model, tmp_path / "nobins")
    short, _ = orpr_jax.make("lost_sales", num_rows=2, history_length=14)
    with pytest.raises(ValueError, match=r"history_length=14 of the environment does not "
                                         r"match the saved policy \(history_length=28\)"):
        load(tmp_path / "agent", env=short)


def test_mismatched_features_and_bins_are_refused(tmp_path):
    env, params = orpr_jax.make("lost_sales", num_rows=4)
    agent = make_mlp_agent(VALUES, 2, 0, scale=5.0)
    save(agent, tmp_path / "p")
    env3, params3 = orpr_jax.make("lost_sales", num_rows=4, lead_time=3)
    with pytest.raises(ValueError, match=r"max_lead_time=3 of the environment does not "
                                         r"match the saved policy \(max_lead_time=2\)"):
        load(tmp_path / "p", env=env3)
    with pytest.raises(ValueError, match=r"values \(bins\)=\[0.0, 1.0\] do not match"):
        load(tmp_path / "p", values=[0.0, 1.0])
    policy = load(tmp_path / "p")
    with pytest.raises(ValueError, match="max_lead_time=3 of the environment"):
        policy(_obs(env3, params3, days=1), None)  # refused at trace time as well
    with pytest.raises(ValueError, match="max_lead_time=3"):
        save(agent, tmp_path / "q", env=env3)
    short, _ = orpr_jax.make("lost_sales", num_rows=2, history_length=5)
    with pytest.raises(ValueError, match=r"history_length=5 .*allowed: integers >= 7"):
        policy.check_env(short)


def test_adapter_bins_are_checked(tmp_path):
    pytest.importorskip("gymnax", reason="gymnax is in the optional peers extra")
    import orpr_jax.adapters as ad

    save(make_mlp_agent(VALUES, 2, 0, scale=5.0), tmp_path / "p")
    env, _ = ad.make("orpr/LostSales-v0", action=ad.ActionSpec(values=tuple(VALUES)))
    load(tmp_path / "p", env=env)
    env21, _ = ad.make("orpr/LostSales-v0")  # bins 0..20
    with pytest.raises(ValueError, match=r"do not match the saved policy's bins"):
        load(tmp_path / "p", env=env21)


def test_folders_files_and_overwrite(tmp_path):
    agent = make_mlp_agent(VALUES, 2, 0, scale=5.0)
    folder = save(agent, tmp_path / "p")
    assert sorted(f.name for f in folder.iterdir()) == [PARAMS_FILE, POLICY_FILE]
    with pytest.raises(ValueError, match="is not empty; pass overwrite=True"):
        save(agent, folder)
    save(load(folder), folder, overwrite=True)  # a loaded policy re-saves (critic kept)
    again = load(folder)
    assert set(again.signature["param_shapes"]) == set(load(folder).signature["param_shapes"])
    assert any(k.startswith("critic/") for k in again.signature["param_shapes"])
    with pytest.raises(FileNotFoundError, match="is not a saved policy folder"):
        load(tmp_path / "missing")
    meta = json.loads((folder / POLICY_FILE).read_text())
    (folder / POLICY_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match=r"format_version=99 is not allowed"):
        load(folder)
    meta["signature"]["param_shapes"]["policy_head/bias/value"] = [12]
    (folder / POLICY_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"parameter policy_head/bias/value has shape \[11\]"):
        load(folder)
    with pytest.raises(ValueError, match="policy of type dict cannot be saved"):
        save({"a": 1}, tmp_path / "d")
    bad = make_mlp_agent(VALUES, 2, 0, scale=5.0)
    bad = bad.replace(params=jax.tree.map(lambda x: x * jnp.nan, bad.params))
    with pytest.raises(ValueError, match="has non-finite values; refusing to save"):
        save(bad, tmp_path / "nan")
