"""Choosing how a learned policy decodes (argmax, expected action or a quantile) on
training data, and measuring the chosen decoding's in-stock rate per group."""

import jax
import numpy as np
import pytest

import orpr_jax
from orpr_jax.pipeline.align import choose_play_mode, group_in_stock
from orpr_jax.pipeline.config import DECODINGS, AlignSettings
from orpr_jax.sim.rollout import evaluate
from orpr_jax.train.agents import make_mlp_agent


def test_auto_picks_the_cheaper_mode_on_the_given_env():
    env, params = orpr_jax.make("lost_sales", num_rows=16, lead_time=1, history_length=7)
    agent = make_mlp_agent(np.arange(0, 13), env.config.max_lead_time, 3, scale=5.0,
                           hidden=(8,))
    key = jax.random.key(0)
    chosen, info = choose_play_mode(agent, env, params, key, 40, 5)
    costs = {m: float(evaluate(env, params, agent.playing(m), key, 40, 5)["total_cost"])
             for m in DECODINGS}
    assert set(DECODINGS) >= {"greedy", "expected", "q0.8"}
    assert info["train_cost"] == pytest.approx(costs)
    assert len(set(costs.values())) > 2
    assert info["mode"] == min(costs, key=costs.get) and chosen.mode == info["mode"]
    fixed, info = choose_play_mode(agent, env, params, key, 40, 5, mode="greedy")
    assert fixed.mode == "greedy" and info == {"mode": "greedy", "train_cost": {}}
    # With groups and targets, the record holds the deployed decoding's in-stock per group.
    group = np.arange(16) % 2
    _, info = choose_play_mode(agent, env, params, key, 40, 5, mode="q0.8", group=group,
                               targets=[0.9, 0.8])
    rates = group_in_stock(env, params, agent.playing("q0.8"), key, 40, 5, group, 2)
    assert info["in_stock_by_group"] == pytest.approx(list(rates))
    assert info["targets"] == [0.9, 0.8]
    overall = float(evaluate(env, params, agent.playing("q0.8"), key, 40, 5)["in_stock_rate"])
    assert float(np.mean(rates)) == pytest.approx(overall, rel=1e-5)


def test_bad_play_mode_raises():
    with pytest.raises(ValueError, match="play_mode='median'"):
        AlignSettings(play_mode="median")
    env, params = orpr_jax.make("lost_sales", num_rows=4, lead_time=1, history_length=7)
    agent = make_mlp_agent(np.arange(0, 5), env.config.max_lead_time, 0)
    with pytest.raises(ValueError, match="play_mode='sample'"):
        choose_play_mode(agent, env, params, jax.random.key(0), 10, 0, mode="sample")
