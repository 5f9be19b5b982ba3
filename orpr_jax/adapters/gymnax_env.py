"""gymnax adapter (gymnax >= 1.0): one scenario row as a gymnax ``Environment``.

:class:`InventoryRowEnv` is a stateless gymnax environment of **one SKU-warehouse row**;
batch rows (or seeds) with ``jax.vmap``, as gymnax users do. Its :class:`EnvParams` carry
the row's :class:`~orpr_jax.sim.types.SimParams` (so ``vmap`` over params runs different
rows), the demand ``scale`` dividing the unit features, ``reward_scale`` and
``max_steps_in_episode``. The contract is gymnax 1.0's: ``step(key, state, action,
params) -> (obs, state, reward, terminated, truncated, info)``; ``terminated`` is always
False (inventory never ends by itself), ``truncated`` is raised after
``max_steps_in_episode`` days, and the env then auto-resets (``info["final_observation"]``
holds the last observation before the reset). ``reward = -cost / reward_scale``.

* Observation: ``Box`` ``[F]`` float32, :func:`orpr_jax.policies.flat_features` of the row
  (``F = 14 + max_lead_time``); bounds in :func:`~orpr_jax.adapters.rows.feature_bounds`.
* Action: ``Discrete(V)`` over order quantities or inventory-days bins, or a one-float
  ``Box`` (``ActionSpec(continuous=True)``).

Registered with gymnax's registry on import (``gymnax.make("orpr/LostSales-v0")`` and
``gymnax.make("orpr/JDSynthetic-v0", row=3)``); :func:`make` is the same call without
gymnax's registry. rejax 0.1.3 still unpacks the pre-1.0 five-tuple from ``step``:
:func:`legacy_step` wraps an env for it (``done = terminated | truncated``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from orpr_jax.adapters.rows import (
    ActionSpec,
    check_window,
    feature_bounds,
    row_config,
    row_features,
    scale_of,
    split_rows,
    take_row,
)
from orpr_jax.scenarios import make as make_scenario
from orpr_jax.sim.dynamics import observe
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimConfig, SimParams, SimState

#: Environment ids registered with gymnax -> (scenario name, default episode days).
ENV_IDS = {"orpr/LostSales-v0": ("lost_sales", 365), "orpr/JDSynthetic-v0": ("jd_synthetic", None)}


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Traced parameters of one row (``vmap`` over them to run many rows).

    Attributes:
        max_steps_in_episode: days before ``truncated`` (and the auto-reset).
        sim: the row's one-row :class:`SimParams`.
        scale: ``[]`` demand level dividing the unit features (units per day).
        reward_scale: ``[]`` reward = -cost / reward_scale.
    """

    max_steps_in_episode: int = 365
    sim: SimParams | None = None
    scale: jax.Array | float = 1.0
    reward_scale: jax.Array | float = 1.0


@struct.dataclass
class EnvState(environment.EnvState):
    """``time``: days since reset; ``sim``: the row's one-row :class:`SimState`."""

    sim: SimState


class InventoryRowEnv(environment.Environment[EnvState, EnvParams]):
    """One SKU-warehouse row of a scenario as a gymnax environment.

    Args:
        config: the one-row :class:`SimConfig` (see :func:`~orpr_jax.adapters.rows.row_config`).
        default_params: the :class:`EnvParams` ``gymnax.make`` returns.
        action: the :class:`~orpr_jax.adapters.rows.ActionSpec`.
        env_id: the name shown by ``env.name``.
    """

    def __init__(self, config: SimConfig, default_params: EnvParams,
                 action: ActionSpec | None = None, env_id: str = "orpr/Inventory-v0"):
        super().__init__()
        if config.num_rows != 1:
            raise ValueError(f"num_rows={config.num_rows} is not allowed; a gymnax row env "
                             "has num_rows=1 (vmap over rows)")
        self.config = config
        self.sim_env = InventoryEnv(config)
        self.action_spec = action or ActionSpec()
        check_window(self.action_spec, config)
        self._default_params = default_params
        self._env_id = env_id
        self.obs_shape = (len(feature_bounds(config.max_lead_time)[0]),)

    @property
    def default_params(self) -> EnvParams:
        return self._default_params

    @property
    def action_values(self) -> tuple[float, ...] | None:
        """The Discrete action's bins (None for a Box action)."""
        return None if self.action_spec.continuous else self.action_spec.values

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        obs, sim_state = self.sim_env.reset(key, params.sim)
        return row_features(obs, params.scale), EnvState(time=jnp.zeros((), jnp.int32),
                                                         sim=sim_state)

    def step_env(self, key: jax.Array, state: EnvState, action, params: EnvParams):
        spec = self.action_spec
        obs = observe(self.config, params.sim, state.sim)
        orders = spec.orders(obs, spec.amount(action)).astype(obs.on_hand.dtype)
        next_obs, sim_state, reward, _, _, info = self.sim_env.step(key, state.sim, orders,
                                                                    params.sim)
        out = info["outcome"]
        new_state = EnvState(time=state.time + 1, sim=sim_state)
        reward = (reward[0] / jnp.asarray(params.reward_scale, reward.dtype)).astype(jnp.float32)
        details = {"cost": out.cost[0], "order": out.order[0], "demand": out.demand[0],
                   "sales": out.sales[0], "unmet": out.unmet[0]}
        return (row_features(next_obs, params.scale), new_state, reward,
                jnp.zeros((), bool), details)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.zeros((), bool)

    def observe(self, key, state: EnvState, action, params: EnvParams) -> jax.Array:
        del key, action
        return row_features(observe(self.config, params.sim, state.sim), params.scale)

    @property
    def name(self) -> str:
        return self._env_id

    @property
    def num_actions(self) -> int:
        return 1 if self.action_spec.continuous else len(self.action_spec.values)

    def action_space(self, params: EnvParams | None = None):
        spec = self.action_spec
        if spec.continuous:
            return spaces.Box(np.float32(-1.0), np.float32(1.0), (1,), jnp.float32)
        return spaces.Discrete(len(spec.values))

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        low, high = feature_bounds(self.config.max_lead_time)
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), self.obs_shape, jnp.float32)


def make_row_env(scenario: str = "lost_sales", row: int = 0, *,
                 action: ActionSpec | None = None, max_steps_in_episode: int | None = None,
                 reward_scale: float = 1.0, scale: float | None = None, env_id: str | None = None,
                 **overrides) -> tuple[InventoryRowEnv, EnvParams]:
    """``(env, params)`` of one row of ``orpr_jax.make(scenario, **overrides)``.

    Args:
        scenario: ``"lost_sales"`` or ``"jd_synthetic"``.
        row: the row's index.
        action: the action spec (default: order quantities 0..20, Discrete).
        max_steps_in_episode: days per episode (default: 365 for lost_sales, the replayed
            period's length for trace scenarios).
        reward_scale: reward = -cost / reward_scale (> 0).
        scale: demand level dividing the unit features (default: the row's mean demand).
        env_id: the env's name.
        **overrides: the scenario's keyword arguments (``num_rows`` is set to ``row + 1``
            for lost_sales, whose rows are identical, when not given).

    Raises:
        ValueError: naming the bad argument, its value and the allowed range.
    """
    if scenario == "lost_sales":
        overrides.setdefault("num_rows", max(int(row) + 1, 1) if isinstance(row, int) else 1)
    if not (isinstance(reward_scale, (int, float)) and not isinstance(reward_scale, bool)
            and np.isfinite(reward_scale) and reward_scale > 0):
        raise ValueError(f"reward_scale={reward_scale!r} is not allowed; expected a finite "
                         "number > 0")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale={scale!r} is not allowed; expected a finite number > 0")
    env, params = make_scenario(scenario, **overrides)
    sim = take_row(split_rows(env.config, params), row)
    config = row_config(env.config)
    if max_steps_in_episode is None:
        trace_days = int(params.demand_trace.shape[0])
        max_steps_in_episode = trace_days if config.demand_mode == "trace" else 365
    if isinstance(max_steps_in_episode, bool) or not isinstance(max_steps_in_episode, int) \
            or max_steps_in_episode < 1:
        raise ValueError(f"max_steps_in_episode={max_steps_in_episode!r} is not allowed; "
                         "expected an integer >= 1")
    level = scale_of(sim, config) if scale is None else jnp.asarray(scale, jnp.float32)
    env_params = EnvParams(max_steps_in_episode=max_steps_in_episode, sim=sim, scale=level,
                           reward_scale=jnp.asarray(reward_scale, jnp.float32))
    name = env_id or f"orpr/{scenario}-row{row}"
    return InventoryRowEnv(config, env_params, action, name), env_params


def all_rows(env: InventoryRowEnv, scenario_params: SimParams, scenario_config: SimConfig,
             scale=None) -> EnvParams:
    """:class:`EnvParams` of every row of a scenario stacked on a leading ``[R]`` axis,
    for ``jax.vmap(env.step, in_axes=(0, 0, 0, 0))``."""
    sims = split_rows(scenario_config, scenario_params)
    r = scenario_config.num_rows
    if scale is None:
        levels = jax.vmap(lambda s: scale_of(s, env.config))(sims)
    else:
        levels = jnp.broadcast_to(jnp.asarray(scale, jnp.float32), (r,))
    d = env.default_params
    return EnvParams(
        max_steps_in_episode=jnp.full((r,), d.max_steps_in_episode, jnp.int32), sim=sims,
        scale=levels, reward_scale=jnp.full((r,), d.reward_scale, jnp.float32))


def _factory(env_id: str):
    scenario, _ = ENV_IDS[env_id]

    def factory(**kwargs) -> InventoryRowEnv:
        kwargs.setdefault("env_id", env_id)
        if scenario == "jd_synthetic":
            kwargs.setdefault("num_skus", 50)
        env, _ = make_row_env(scenario, **kwargs)
        return env

    return factory


def register() -> list[str]:
    """Registers :data:`ENV_IDS` with gymnax (idempotent); returns the ids."""
    import gymnax

    for env_id in ENV_IDS:
        if env_id not in gymnax.registered_envs:
            gymnax.register(env_id, _factory(env_id))
    return list(ENV_IDS)


def make(env_id: str, **kwargs) -> tuple[InventoryRowEnv, EnvParams]:
    """``(env, env.default_params)`` for an id of :data:`ENV_IDS`, as ``gymnax.make``.

    ``kwargs`` go to :func:`make_row_env` (``row``, ``action``, ``max_steps_in_episode``,
    ``reward_scale``, ``scale`` and the scenario's overrides; the jd_synthetic id
    defaults to ``num_skus=50``).

    Raises:
        ValueError: an unknown id (naming the known ones) or a bad argument.
    """
    if env_id not in ENV_IDS:
        raise ValueError(f"env_id={env_id!r} is not allowed; known ids: {sorted(ENV_IDS)}")
    env = _factory(env_id)(**kwargs)
    return env, env.default_params


class LegacyStep(environment.Environment):
    """An env with the pre-1.0 gymnax step ``(obs, state, reward, done, info)``, for
    libraries that still unpack five values (rejax 0.1.3). ``done = terminated |
    truncated``; ``info`` keeps both flags. Everything else is the wrapped env's."""

    def __init__(self, env: environment.Environment):
        super().__init__()
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self):
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action,
                                                                         params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)


def legacy_step(env: environment.Environment) -> LegacyStep:
    """``env`` with the five-value step of gymnax < 1.0 (see :class:`LegacyStep`)."""
    return LegacyStep(env)


register()
