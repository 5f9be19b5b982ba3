"""The Gymnasium adapter: ``check_env`` on the single-row env, the vector env's spaces,
auto-reset contract and seeding, registration, the SB3 bridge's conventions, and every
bad-input error path."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="gymnasium is in the optional peers extra")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402

from orpr_jax.adapters.gymnasium_env import InventoryGymEnv, InventoryVectorEnv  # noqa: E402
from orpr_jax.adapters.rows import ActionSpec  # noqa: E402


@pytest.mark.parametrize("env_kwargs", [
    dict(),
    dict(action=ActionSpec(continuous=True), max_steps_in_episode=30),
    dict(action=ActionSpec("inventory_days", values=tuple(range(1, 31)))),
    dict(scenario="jd_synthetic", row=3, num_skus=12),
], ids=["discrete", "box", "inventory_days", "jd_synthetic"])
def test_check_env_passes(env_kwargs):
    # pytest turns the checker's warnings into errors, so this also asserts none is raised.
    check_env(InventoryGymEnv(**env_kwargs), skip_render_check=True)


def test_single_env_truncates_and_is_seeded():
    env = InventoryGymEnv(max_steps_in_episode=5)
    obs, _ = env.reset(seed=3)
    outs = [env.step(4) for _ in range(5)]
    assert [o[3] for o in outs] == [False] * 4 + [True]
    assert not any(o[2] for o in outs)
    assert all(env.observation_space.contains(o[0]) for o in outs)
    assert all(isinstance(o[1], float) and o[1] <= 0 for o in outs)
    env.reset(seed=3)
    again = [env.step(4) for _ in range(5)]
    assert [o[4]["demand"] for o in again] == [o[4]["demand"] for o in outs]
    env.reset(seed=4)
    other = [env.step(4)[4]["demand"] for _ in range(5)]
    assert other != [o[4]["demand"] for o in outs]


def test_vector_env_spaces_and_same_step_autoreset():
    n, days = 6, 4
    venv = InventoryVectorEnv("lost_sales", num_envs=n, max_steps_in_episode=days)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.num_envs == n and venv.single_action_space == gymnasium.spaces.Discrete(21)
    obs0, _ = venv.reset(seed=0)
    assert obs0.shape == (n, 16) and venv.observation_space.contains(obs0)
    for t in range(1, days + 1):
        obs, reward, term, trunc, info = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs) and reward.shape == (n,)
        assert not term.any()
        assert trunc.all() == (t == days) and trunc.any() == (t == days)
    # The truncating step returns the reset observations; the last ones are in info.
    np.testing.assert_array_equal(obs, obs0)
    assert info["_final_obs"].all() and venv.observation_space.contains(info["final_obs"])
    assert not np.array_equal(info["final_obs"], obs0)


def test_vector_env_costs_follow_the_actions():
    """Ordering nothing empties the rows: cost is then 9 per unit of demand lost."""
    venv = InventoryVectorEnv("lost_sales", num_envs=64)
    venv.reset(seed=1)
    for _ in range(10):
        _, reward, _, _, info = venv.step(np.zeros(64, np.int64))
    np.testing.assert_allclose(-reward, info["cost"], rtol=1e-6)
    assert 0.7 * 9 * 5 < info["cost"].mean() < 1.3 * 9 * 5  # ~ p x mean demand


def test_gymnasium_registration():
    import orpr_jax.adapters.gymnasium_env  # noqa: F401  (registers)

    env = gymnasium.make("orpr/LostSales-v0", max_steps_in_episode=3)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    venv = gymnasium.make_vec("orpr/LostSales-v0", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 16)


def test_sb3_bridge_conventions():
    pytest.importorskip("stable_baselines3", reason="stable-baselines3 is in the peers extra")
    from orpr_jax.adapters.sb3 import SB3VecEnv

    venv = SB3VecEnv(InventoryVectorEnv("lost_sales", num_envs=4, max_steps_in_episode=2))
    obs = venv.reset()
    assert obs.shape == (4, 16)
    venv.step(np.full(4, 5))
    obs, reward, done, infos = venv.step(np.full(4, 5))
    assert done.all() and reward.dtype == np.float32
    assert all(i["TimeLimit.truncated"] and i["terminal_observation"].shape == (16,)
               for i in infos)
    with pytest.raises(ValueError, match="venv of type int is not allowed"):
        SB3VecEnv(3)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: InventoryVectorEnv("jd_synthetic", num_envs=4), r"num_envs=4 is not allowed for 'jd_synthetic'"),
    (lambda: InventoryVectorEnv(max_steps_in_episode=0), r"max_steps_in_episode=0 is not allowed"),
    (lambda: InventoryVectorEnv(reward_scale=float("inf")), r"reward_scale=inf is not allowed"),
    (lambda: InventoryGymEnv(row=2, num_rows=2), r"row=2 is not allowed; expected an integer in \[0, 2\)"),
    (lambda: InventoryGymEnv(scale=0.0), r"scale=0.0 is not allowed; expected a finite number > 0"),
    (lambda: InventoryGymEnv(action=ActionSpec("inventory_days", window=29)), r"window=29 is not allowed"),
])
def test_bad_input_names_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_vector_env_step_checks():
    venv = InventoryVectorEnv(num_envs=3)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        venv.step(np.zeros(3, np.int64))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions has shape \(5,\); expected \(3,\)"):
        venv.step(np.zeros(5, np.int64))
