"""Real clients train on the adapters: rejax's PPO on the gymnax env and
Stable-Baselines3's PPO on the Gymnasium vector env, each for a small budget, and each
beats a uniformly random policy on the classic lost-sales model (L = 2, p = 9, Poisson 5;
a random order of 0..20 units, mean 10 against a demand of 5, costs ~90 per day; the
optimum is 6.09)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

REWARD_SCALE = 5.0
DAYS = 100


@pytest.mark.filterwarnings(
    # distrax (a rejax dependency) imports tensorflow_probability's JAX backend, which
    # touches jax.core attributes JAX has deprecated; not our code, not a failure.
    "ignore::DeprecationWarning:tensorflow_probability.*")
def test_rejax_ppo_trains_on_the_gymnax_adapter():
    rejax = pytest.importorskip("rejax", reason="rejax is in the optional peers extra")
    from rejax.evaluate import evaluate

    import orpr_jax.adapters as ad

    env, params = ad.make("orpr/LostSales-v0", reward_scale=REWARD_SCALE,
                          max_steps_in_episode=DAYS)
    env = ad.legacy_step(env)  # rejax 0.1.3 unpacks the pre-1.0 five-value step
    algo = rejax.PPO.create(env=env, env_params=params, num_envs=32, num_steps=32,
                            num_epochs=2, num_minibatches=4, learning_rate=1e-3,
                            ent_coef=0.0, total_timesteps=32 * 32 * 24,
                            eval_freq=32 * 32 * 24, skip_initial_evaluation=True)
    with jax.numpy_dtype_promotion("standard"):  # rejax's networks mix dtypes
        ts, _ = jax.jit(algo.train)(jax.random.key(0))
        act = algo.make_act(ts)
        lengths, returns = evaluate(act, jax.random.key(1), env, params, 16, DAYS)

        def random_act(obs, key):
            return env.action_space(params).sample(key)

        _, random_returns = evaluate(random_act, jax.random.key(1), env, params, 16, DAYS)
    assert int(lengths.min()) == DAYS
    cost = -float(returns.mean()) * REWARD_SCALE / DAYS
    random_cost = -float(random_returns.mean()) * REWARD_SCALE / DAYS
    assert random_cost > 50.0
    assert cost < 0.5 * random_cost, (cost, random_cost)

def _vector_cost(venv, act, days: int, seed: int) -> float:
    obs, _ = venv.reset(seed=seed)
    total = 0.0
    for _ in range(days):
        obs, _, _, _, info = venv.step(act(obs))
        total += float(info["cost"].mean())
    return total / days


def test_sb3_ppo_trains_on_the_gymnasium_adapter():
    sb3 = pytest.importorskip("stable_baselines3",
                              reason="stable-baselines3 is in the optional peers extra")
    pytest.importorskip("torch", reason="torch is in the optional peers extra")
    from orpr_jax.adapters.gymnasium_env import InventoryVectorEnv
    from orpr_jax.adapters.sb3 import SB3VecEnv

    venv = InventoryVectorEnv("lost_sales", num_envs=32, reward_scale=REWARD_SCALE,
                              max_steps_in_episode=DAYS)
    model = sb3.PPO("MlpPolicy", SB3VecEnv(venv), n_steps=32, batch_size=256, n_epochs=2,
                    learning_rate=1e-3, seed=0, device="cpu")
    model.learn(32 * 32 * 12)
    cost = _vector_cost(venv, lambda o: model.predict(o, deterministic=True)[0], 60, 7)
    rng = np.random.default_rng(0)
    random_cost = _vector_cost(venv, lambda o: rng.integers(0, 21, size=32), 60, 7)
    assert random_cost > 50.0
    assert cost < 0.5 * random_cost, (cost, random_cost)
