"""Choosing how a trained policy decides (greedy or expected action) on training data."""

import jax
import numpy as np
import pytest

import orpr_jax
from orpr_jax.pipeline.align import choose_play_mode
from orpr_jax.pipeline.config import AlignSettings
from orpr_jax.sim.rollout import evaluate
from orpr_jax.train.agents import make_mlp_agent


def test_auto_picks_the_cheaper_mode_on_the_given_env():
    env, params = orpr_jax.make("lost_sales", num_rows=16, lead_time=1, history_length=7)
    agent = make_mlp_agent(np.arange(0, 13), env.config.max_lead_time, 3, scale=5.0,
                           hidden=(8,))
    key = jax.random.key(0)
    chosen, info = choose_play_mode(agent, env, params, key, 40, 5)
    costs = {m: float(evaluate(env, params, agent.playing(m), key, 40, 5)["total_cost"])
             for m in ("greedy", "expected")}
    assert info["train_cost"] == pytest.approx(costs)
    assert costs["greedy"] != costs["expected"]
    assert info["mode"] == min(costs, key=costs.get) and chosen.mode == info["mode"]
    fixed, info = choose_play_mode(agent, env, params, key, 40, 5, mode="greedy")
    assert fixed.mode == "greedy" and info == {"mode": "greedy", "train_cost": {}}


def test_bad_play_mode_raises():
    with pytest.raises(ValueError, match="play_mode='median'"):
        AlignSettings(play_mode="median")
    env, params = orpr_jax.make("lost_sales", num_rows=4, lead_time=1, history_length=7)
    agent = make_mlp_agent(np.arange(0, 5), env.config.max_lead_time, 0)
    with pytest.raises(ValueError, match="play_mode='sample'"):
        choose_play_mode(agent, env, params, jax.random.key(0), 10, 0, mode="sample")
