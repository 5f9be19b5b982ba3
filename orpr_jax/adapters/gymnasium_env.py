"""Gymnasium adapter (gymnasium >= 1.0): a scenario's rows as a ``gymnasium.vector.VectorEnv``
and one row as a ``gymnasium.Env``.

* :class:`InventoryVectorEnv`: sub-environment ``i`` is row ``i`` of the scenario; every
  step is one jitted call of the simulator over all rows (no Python loop over rows).
  ``metadata["autoreset_mode"]`` is ``AutoresetMode.SAME_STEP``: rows share one clock, so
  all of them are truncated together after ``max_steps_in_episode`` days; the step that
  truncates returns the reset observations, with the last ones in ``info["final_obs"]``
  (mask ``info["_final_obs"]``). ``terminated`` is always False.
* :class:`InventoryGymEnv`: one row; no auto-reset (call ``reset`` after ``truncated``, as
  Gymnasium asks); passes ``gymnasium.utils.env_checker.check_env``.

Observations are ``float32`` :func:`orpr_jax.policies.flat_features` (``Box``, bounds in
:func:`~orpr_jax.adapters.rows.feature_bounds`); actions are ``Discrete`` bins (order
quantities or inventory days) or a one-float ``Box``; reward = -cost / reward_scale.
Randomness: ``reset(seed=s)`` seeds a JAX key; each step splits it, so a seed replays the
same demand and lead-time draws.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from orpr_jax.adapters.rows import (
    ActionSpec,
    check_window,
    feature_bounds,
    row_config,
    row_scales,
    split_rows,
    take_row,
)
from orpr_jax.policies.saved import flat_features
from orpr_jax.scenarios import make as make_scenario
from orpr_jax.sim.dynamics import observe
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimConfig, SimParams


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            np.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number > 0")
    return float(value)


def _check_steps(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_steps_in_episode={value!r} is not allowed; expected an "
                         "integer >= 1")
    return value


class _Core:
    """Jitted reset/step of ``R`` rows returning flat features (no auto-reset)."""

    def __init__(self, config: SimConfig, params: SimParams, spec: ActionSpec, scale,
                 reward_scale: float):
        self.config = config.replace(max_steps_in_episode=None)
        self.env = InventoryEnv(self.config)
        self.params = params
        self.spec = spec
        self.scale = jnp.asarray(scale, jnp.float32)
        self.reward_scale = jnp.float32(reward_scale)
        self.reset = jax.jit(self._reset)
        self.step = jax.jit(self._step)

    def _reset(self, key):
        obs, state = self.env.reset(key, self.params)
        return flat_features(obs, self.scale).astype(jnp.float32), state

    def _step(self, key, state, actions):
        obs = observe(self.config, self.params, state)
        orders = self.spec.orders(obs, self.spec.amounts(actions)).astype(obs.on_hand.dtype)
        next_obs, state, reward, _, _, info = self.env.step(key, state, orders, self.params)
        feats = flat_features(next_obs, self.scale).astype(jnp.float32)
        return feats, state, (reward / self.reward_scale).astype(jnp.float32), info["outcome"]


def _spaces(config: SimConfig, spec: ActionSpec) -> tuple[spaces.Box, spaces.Space]:
    low, high = feature_bounds(config.max_lead_time)
    obs_space = spaces.Box(low, high, low.shape, np.float32)
    if spec.continuous:
        act = spaces.Box(np.float32(-1.0), np.float32(1.0), (1,), np.float32)
    else:
        act = spaces.Discrete(len(spec.values))
    return obs_space, act


def _seed_key(np_random: np.random.Generator, seed: int | None) -> jax.Array:
    if seed is not None:
        return jax.random.key(int(seed))
    return jax.random.key(int(np_random.integers(0, 2**31 - 1)))


class InventoryVectorEnv(VectorEnv):
    """A scenario's rows as a Gymnasium vector environment (one row per sub-env).

    Args:
        scenario: ``"lost_sales"`` or ``"jd_synthetic"`` (``orpr_jax.make``).
        num_envs: rows (lost_sales only: sets ``num_rows``; for other scenarios the
            scenario's rows).
        action: the :class:`~orpr_jax.adapters.rows.ActionSpec`.
        max_steps_in_episode: days before every row is truncated and reset.
        reward_scale: reward = -cost / reward_scale (> 0).
        scale: demand level dividing the unit features (default: each row's mean demand).
        env, params: an already built ``(InventoryEnv, SimParams)`` instead of a scenario.
        **overrides: the scenario's keyword arguments.

    Raises:
        ValueError: naming the bad argument, its value and the allowed range.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, scenario: str = "lost_sales", num_envs: int | None = None, *,
                 action: ActionSpec | None = None, max_steps_in_episode: int = 365,
                 reward_scale: float = 1.0, scale=None, env: InventoryEnv | None = None,
                 params: SimParams | None = None, **overrides):
        if env is None:
            if num_envs is not None:
                if scenario != "lost_sales":
                    raise ValueError(f"num_envs={num_envs!r} is not allowed for {scenario!r}; "
                                     "its rows are the data set's (pass num_skus instead)")
                overrides["num_rows"] = num_envs
            env, params = make_scenario(scenario, **overrides)
        elif params is None:
            raise ValueError("params=None is not allowed with env; give the env's SimParams")
        self.action_spec = action or ActionSpec()
        check_window(self.action_spec, env.config)
        self.max_steps = _check_steps(max_steps_in_episode)
        self.num_envs = env.config.num_rows
        levels = row_scales(env.config, params) if scale is None else jnp.broadcast_to(
            jnp.float32(_check_positive("scale", scale)), (self.num_envs,))
        self.core = _Core(env.config, params, self.action_spec, levels,
                          _check_positive("reward_scale", reward_scale))
        self.config = env.config
        self.single_observation_space, self.single_action_space = _spaces(env.config, self.action_spec)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._key = jax.random.key(0)
        self._state = None
        self._t = 0

    @property
    def action_values(self) -> tuple[float, ...] | None:
        """The Discrete action's bins (None for a Box action)."""
        return None if self.action_spec.continuous else self.action_spec.values

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        key = _seed_key(self.np_random, seed)
        self._key, reset_key = jax.random.split(key)
        obs, self._state = self.core.reset(reset_key)
        self._t = 0
        return np.array(obs), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        expected = (self.num_envs, 1) if self.action_spec.continuous else (self.num_envs,)
        if actions.shape != expected and actions.size != self.num_envs:
            raise ValueError(f"actions has shape {actions.shape}; expected {expected}")
        self._key, step_key, reset_key = jax.random.split(self._key, 3)
        obs, self._state, reward, outcome = self.core.step(step_key, self._state,
                                                           jnp.asarray(actions))
        self._t += 1
        obs = np.array(obs)
        truncated = np.full(self.num_envs, self._t >= self.max_steps)
        info: dict[str, Any] = {"cost": np.asarray(outcome.cost)}
        if truncated[0]:
            info["final_obs"] = obs
            info["_final_obs"] = truncated.copy()
            reset_obs, self._state = self.core.reset(reset_key)
            obs = np.array(reset_obs)
            self._t = 0
        return (obs, np.array(reward), np.zeros(self.num_envs, bool), truncated, info)


class InventoryGymEnv(gymnasium.Env):
    """One row of a scenario as a ``gymnasium.Env`` (no auto-reset).

    Args:
        scenario: ``"lost_sales"`` or ``"jd_synthetic"``.
        row: the row's index.
        action, max_steps_in_episode, reward_scale, scale, env, params, **overrides: as in
            :class:`InventoryVectorEnv` (``scale`` defaults to the row's mean demand).

    Raises:
        ValueError: naming the bad argument, its value and the allowed range.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: str = "lost_sales", row: int = 0, *,
                 action: ActionSpec | None = None, max_steps_in_episode: int = 365,
                 reward_scale: float = 1.0, scale=None, env: InventoryEnv | None = None,
                 params: SimParams | None = None, **overrides):
        if env is None:
            if scenario == "lost_sales":
                overrides.setdefault("num_rows", row + 1 if isinstance(row, int) else 1)
            env, params = make_scenario(scenario, **overrides)
        elif params is None:
            raise ValueError("params=None is not allowed with env; give the env's SimParams")
        config = row_config(env.config)
        sim = take_row(split_rows(env.config, params), row)
        self.action_spec = action or ActionSpec()
        check_window(self.action_spec, config)
        self.max_steps = _check_steps(max_steps_in_episode)
        level = row_scales(env.config, params)[row] if scale is None else jnp.float32(
            _check_positive("scale", scale))
        self.core = _Core(config, sim, self.action_spec, level,
                          _check_positive("reward_scale", reward_scale))
        self.config = config
        self.observation_space, self.action_space = _spaces(config, self.action_spec)
        self.render_mode = None
        self._key = jax.random.key(0)
        self._state = None
        self._t = 0

    @property
    def action_values(self) -> tuple[float, ...] | None:
        return None if self.action_spec.continuous else self.action_spec.values

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._key, reset_key = jax.random.split(_seed_key(self.np_random, seed))
        obs, self._state = self.core.reset(reset_key)
        self._t = 0
        return np.array(obs[0]), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, step_key = jax.random.split(self._key)
        a = np.asarray(action).reshape(1, 1) if self.action_spec.continuous else np.asarray(
            action).reshape(1)
        obs, self._state, reward, outcome = self.core.step(step_key, self._state,
                                                           jnp.asarray(a))
        self._t += 1
        info = {"cost": float(outcome.cost[0]), "demand": float(outcome.demand[0]),
                "order": float(outcome.order[0])}
        return (np.array(obs[0]), float(reward[0]), False, bool(self._t >= self.max_steps),
                info)


@functools.cache
def _registered() -> bool:
    """Registers ``orpr/LostSales-v0`` with Gymnasium (``gymnasium.make`` /
    ``gymnasium.make_vec`` with ``vector_entry_point``)."""
    if "orpr/LostSales-v0" not in gymnasium.registry:
        gymnasium.register(
            id="orpr/LostSales-v0",
            entry_point="orpr_jax.adapters.gymnasium_env:InventoryGymEnv",
            vector_entry_point="orpr_jax.adapters.gymnasium_env:InventoryVectorEnv",
            disable_env_checker=True,
        )
    return True


_registered()
