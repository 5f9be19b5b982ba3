"""Candidate replays: the days ahead of a decision simulated under each inventory-days value.

For a decision on day t and every row, the simulator is run forward from the row's actual
state for the row's horizon under each candidate v (order up to v x the moving-average
forecast on the row's review days), with hindsight demand (the realised trace) or with S
sampled demand scenarios. Every candidate sees the same demand and lead-time draws, so the
trade-off curves are free of sampling noise between candidates. One jitted call covers
rows x candidates (x scenarios); callers loop over dates.

Rows are replayed independently: shared inbound capacity couples rows only in the real
run, not in the replays (it would make each row's outcome depend on every other row's
candidate).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from orpr_jax.sim.dynamics import draw_lead_time, lead_time_moments, observe, transition
from orpr_jax.sim.types import SimConfig, SimParams, SimState


class ReplayResult(NamedTuple):
    """Outcome of the candidate replays over each row's horizon (all ``[V, R]``).

    Attributes:
        stock_units: sum over the horizon of end-of-day units on hand.
        stock_value: the same weighted by the row's holding cost (holding cost incurred).
        lost_units: units of demand not met on the day (lost, or newly backlogged).
        lost_value: the same weighted by the row's penalty cost.
        sales: units sold.
        demand: ``[R]`` demand over the horizon (the same for every candidate).
    """

    stock_units: jax.Array
    stock_value: jax.Array
    lost_units: jax.Array
    lost_value: jax.Array
    sales: jax.Array
    demand: jax.Array


def replay_config(config: SimConfig) -> SimConfig:
    """The configuration used for replays: capacity off, never truncated."""
    return config.replace(use_capacity=False, max_steps_in_episode=None)


def row_horizons(config: SimConfig, params: SimParams, margin: int, max_horizon: int):
    """``[R]`` int32 horizon per row: ceil(mean lead time) + review period + ``margin``."""
    lt_mean, _ = lead_time_moments(config, params)
    review = params.review_period if config.use_review else jnp.ones_like(params.review_period)
    h = jnp.ceil(lt_mean).astype(jnp.int32) + review + margin
    return jnp.minimum(h, max_horizon)


@functools.partial(jax.jit, static_argnames=("config", "horizon", "window"))
def replay_candidates(
    config: SimConfig,
    params: SimParams,
    state: SimState,
    candidates: jax.Array,
    demand: jax.Array,
    row_horizon: jax.Array,
    key: jax.Array,
    horizon: int,
    window: int = 28,
) -> ReplayResult:
    """Replays ``horizon`` days from ``state`` under every candidate inventory-days value.

    Args:
        config: static configuration (use :func:`replay_config`).
        params: traced parameters.
        state: state at the start of the decision day (post-arrival).
        candidates: ``[V]`` inventory-days values.
        demand: ``[S, horizon, R]`` demand scenarios (S = 1 for hindsight).
        row_horizon: ``[R]`` int32 days counted per row (<= ``horizon``).
        key: PRNG key for the lead-time draws (shared by candidates and scenarios).
        horizon: days simulated (static).
        window: moving-average window of the inventory-days forecast (static).

    Returns:
        :class:`ReplayResult`, averaged over the S scenarios.
    """
    day_keys = jax.random.split(key, horizon)
    counted = (jnp.arange(horizon, dtype=jnp.int32)[:, None] < row_horizon[None, :]).astype(
        params.holding_cost.dtype
    )
    forecast = observe(config, params, state).sales_history[:, -window:].mean(axis=1)

    def one(v, scenario):
        # The forecast is frozen at the decision: the level is v days of it, and the
        # replay orders up to that level on the row's review days.
        level = v * forecast

        def day(st, inputs):
            d, k, w = inputs
            ip = st.on_hand - st.backlog + st.pipeline_total
            lead = draw_lead_time(k, config, params)
            st, out = transition(config, params, st, jnp.maximum(level - ip, 0.0), d, lead)
            new_unmet = out.demand - out.filled
            return st, (
                w * out.on_hand_end,
                w * out.holding_cost,
                w * new_unmet,
                w * new_unmet * params.penalty_cost,
                w * out.sales,
                w * out.demand,
            )

        _, sums = jax.lax.scan(day, state, (scenario, day_keys, counted))
        return tuple(s.sum(axis=0) for s in sums)

    per_v = jax.vmap(lambda v: jax.vmap(lambda sc: one(v, sc))(demand))(candidates)
    su, sv, lu, lv, sa, de = (x.mean(axis=1) for x in per_v)
    return ReplayResult(su, sv, lu, lv, sa, de[0])
