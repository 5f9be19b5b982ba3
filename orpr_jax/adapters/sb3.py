"""A Stable-Baselines3 ``VecEnv`` over :class:`~orpr_jax.adapters.gymnasium_env.InventoryVectorEnv`.

Stable-Baselines3 (2.x) trains on its own ``VecEnv`` type, not on a Gymnasium
``VectorEnv``; its ``DummyVecEnv`` would step one Python env per row. :class:`SB3VecEnv`
hands SB3 the whole vector env instead: one jitted simulator call per step for all rows.
SB3's conventions are kept: ``done = terminated | truncated``, the observation returned at
a truncated step is the reset one, the last one is in ``infos[i]["terminal_observation"]``
and ``infos[i]["TimeLimit.truncated"]`` is True (so PPO bootstraps the value there).

Example:
    >>> from stable_baselines3 import PPO
    >>> venv = SB3VecEnv(InventoryVectorEnv("lost_sales", num_envs=64, reward_scale=5.0))
    >>> PPO("MlpPolicy", venv, n_steps=32).learn(50_000)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from orpr_jax.adapters.gymnasium_env import InventoryVectorEnv


class SB3VecEnv(VecEnv):
    """SB3 view of an :class:`InventoryVectorEnv` (see the module docstring)."""

    def __init__(self, venv: InventoryVectorEnv):
        if not isinstance(venv, InventoryVectorEnv):
            raise ValueError(f"venv of type {type(venv).__name__} is not allowed; expected "
                             "an InventoryVectorEnv")
        self.venv = venv
        self.render_mode = None
        super().__init__(venv.num_envs, venv.single_observation_space,
                         venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else self._seed
        obs, _ = self.venv.reset(seed=seed)
        self._seeds = [None] * self.num_envs
        self._seed = None
        return obs

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        done = np.logical_or(terminated, truncated)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if "final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs):
        raise ValueError(f"method_name={method_name!r} is not allowed; the rows of an "
                         "InventoryVectorEnv have no per-row methods")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)
