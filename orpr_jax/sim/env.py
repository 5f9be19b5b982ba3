"""The inventory environment with the gymnax 1.0 contract (key first, params traced)."""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp

from orpr_jax.sim.demand import sample_demand
from orpr_jax.sim.dynamics import draw_lead_time, initial_state, observe, transition
from orpr_jax.sim.types import Observation, SimConfig, SimParams, SimState


@dataclasses.dataclass(frozen=True)
class InventoryEnv:
    """A vectorised inventory environment over ``config.num_rows`` SKU-warehouse rows.

    The env object is stateless and hashable (it only holds the static
    :class:`SimConfig`), so it can be closed over or passed as a static argument; state and
    params are pytrees. All rows share one clock, so ``terminated``/``truncated`` are the
    same for every row (returned as ``[R]`` flags for ``[T, B]`` bookkeeping).

    Example:
        >>> env, params = orpr_jax.make("lost_sales", num_rows=4)
        >>> obs, state = env.reset(jax.random.key(0), params)
        >>> obs, state, reward, terminated, truncated, info = env.step(
        ...     jax.random.key(1), state, jnp.zeros(4), params)
    """

    config: SimConfig

    @property
    def num_rows(self) -> int:
        return self.config.num_rows

    def reset(self, key: jax.Array, params: SimParams) -> tuple[Observation, SimState]:
        """Returns the observation and state at the start of day 0 (post-arrival).

        Args:
            key: PRNG key (the initial state is deterministic; kept for the contract).
            params: traced parameters.
        """
        del key
        state = initial_state(self.config, params)
        return observe(self.config, params, state), state

    def step(
        self, key: jax.Array, state: SimState, action: jax.Array, params: SimParams
    ) -> tuple[Observation, SimState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """Simulates one day for every row.

        Args:
            key: PRNG key for the day (demand and lead-time draws).
            state: state at the start of the day.
            action: ``[R]`` requested order quantities (constrained by the simulator).
            params: traced parameters.

        Returns:
            ``(obs, state, reward, terminated, truncated, info)``: reward is ``[R]``
            minus the day's cost; ``info["outcome"]`` is the
            :class:`~orpr_jax.sim.types.DayOutcome` of the day. When the episode is
            truncated the returned obs/state are those of a fresh reset (auto-reset).
        """
        cfg = self.config
        # A [R, 1] or [1] action would broadcast silently inside the dynamics.
        chex.assert_shape(action, (cfg.num_rows,))
        demand_key, lead_key, reset_key = jax.random.split(key, 3)
        demand = sample_demand(demand_key, cfg, params, state.t)
        lead_time = draw_lead_time(lead_key, cfg, params)
        next_state, outcome = transition(cfg, params, state, action, demand, lead_time)
        terminated = jnp.zeros((cfg.num_rows,), bool)
        if cfg.max_steps_in_episode is None:
            truncated = jnp.zeros((cfg.num_rows,), bool)
        else:
            done = next_state.t >= cfg.max_steps_in_episode
            _, reset_state = self.reset(reset_key, params)
            next_state = jax.tree.map(
                lambda r, s: jnp.where(done, r, s), reset_state, next_state
            )
            truncated = jnp.broadcast_to(done, (cfg.num_rows,))
        obs = observe(cfg, params, next_state)
        return obs, next_state, -outcome.cost, terminated, truncated, {"outcome": outcome}
