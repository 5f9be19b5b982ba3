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

from orpr_jax.policies.forecast import censored_forecast
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


def row_starts(config: SimConfig, params: SimParams) -> jax.Array:
    """``[R]`` int32 first counted day per row: ceil(mean lead time).

    Before an order placed on the decision day can arrive, stock and lost sales are fixed
    by earlier decisions whatever v is chosen; counting them would only add the same
    unavoidable losses to every candidate and make service targets look infeasible.
    """
    lt_mean, _ = lead_time_moments(config, params)
    return jnp.ceil(lt_mean).astype(jnp.int32)


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
    row_start: jax.Array | None = None,
) -> ReplayResult:
    """Replays ``horizon`` days from ``state`` under every candidate inventory-days value.

    Args:
        config: static configuration (use :func:`replay_config`).
        params: traced parameters.
        state: state at the start of the decision day (post-arrival).
        candidates: ``[V]`` inventory-days values.
        demand: ``[S, horizon, R]`` demand scenarios (S = 1 for hindsight).
        row_horizon: ``[R]`` int32 end (exclusive) of the days counted per row
            (<= ``horizon``).
        key: PRNG key for the lead-time draws (shared by candidates and scenarios).
        horizon: days simulated (static).
        window: moving-average window of the inventory-days forecast (static).
        row_start: ``[R]`` int32 first counted day per row (default 0; see
            :func:`row_starts`).

    Returns:
        :class:`ReplayResult`, averaged over the S scenarios.
    """
    r = config.num_rows
    v_count = candidates.shape[0]
    dtype = params.holding_cost.dtype
    day_keys = jax.random.split(key, horizon)
    days = jnp.arange(horizon, dtype=jnp.int32)[:, None]
    start = jnp.zeros_like(row_horizon) if row_start is None else row_start
    counted = ((days >= start[None, :]) & (days < row_horizon[None, :])).astype(dtype)
    forecast = censored_forecast(observe(config, params, state), window)
    # Candidates are laid side by side on the row axis ([V * R] rows, candidate-major), so
    # each day is one wide step of the simulator, as fast per element as a plain run;
    # vmapping over candidates instead made every ring access a batched gather.
    tcfg = config.replace(num_rows=v_count * r, history_length=1)
    tparams = tile_rows(params, config, v_count)
    tstate = SimState(
        on_hand=jnp.tile(state.on_hand, v_count),
        backlog=jnp.tile(state.backlog, v_count),
        ring=jnp.tile(state.ring, (1, v_count)),
        pipeline_total=jnp.tile(state.pipeline_total, v_count),
        sales_ring=jnp.zeros((1, v_count * r), dtype),
        stockout_ring=jnp.zeros((1, v_count * r), dtype),
        level=jnp.tile(state.level, v_count),
        arrivals=jnp.tile(state.arrivals, v_count),
        t=state.t,
    )
    # The forecast is frozen at the decision: the level is v days of it, and the replay
    # orders up to that level on the row's review days.
    level = (candidates[:, None] * forecast[None, :]).reshape(-1)
    penalty = jnp.tile(params.penalty_cost, v_count)

    def one(scenario):
        def day(carry, inputs):
            st, acc = carry
            d, k, w = inputs
            # One lead-time draw per row, shared by every candidate.
            lead = draw_lead_time(k, config, params)
            lead = lead if lead.ndim == 0 else jnp.tile(lead, v_count)
            ip = st.on_hand - st.backlog + st.pipeline_total
            st, out = transition(tcfg, tparams, st, jnp.maximum(level - ip, 0.0),
                                 jnp.tile(d, v_count), lead)
            w = jnp.tile(w, v_count)
            new_unmet = out.demand - out.filled
            acc = tuple(a + w * x for a, x in zip(acc, (
                out.on_hand_end, out.holding_cost, new_unmet, new_unmet * penalty,
                out.sales, out.demand), strict=True))
            return (st, acc), None

        zeros = tuple(jnp.zeros((v_count * r,), dtype) for _ in range(6))
        (_, acc), _ = jax.lax.scan(day, (tstate, zeros), (scenario, day_keys, counted))
        return acc

    sums = jax.vmap(one)(demand)
    su, sv, lu, lv, sa, de = (x.mean(axis=0).reshape(v_count, r) for x in sums)
    return ReplayResult(su, sv, lu, lv, sa, de[0])


#: SimParams fields whose row axis is 1 (time- or slot-major tables).
_ROW_AXIS_1 = ("initial_pipeline", "initial_sales_history", "demand_trace", "promo_calendar")
#: Fields with no row axis.
_NO_ROW_AXIS = ("capacity", "start_day_of_year", "start_day_of_week", "temperature")


def tile_rows(params: SimParams, config: SimConfig, reps: int) -> SimParams:
    """Params for ``reps`` copies of the rows side by side (``[reps * R]``, copy-major).

    Time-indexed tables the replay does not read (demand trace, promotion calendar) are
    replaced by a single zero day instead of being copied.
    """
    r = config.num_rows
    out = {}
    for name, leaf in vars(params).items():
        if name in ("demand_trace", "promo_calendar"):
            out[name] = jnp.zeros((1, r * reps), leaf.dtype)
        elif name in _NO_ROW_AXIS or leaf.ndim == 0:
            out[name] = leaf
        elif name in _ROW_AXIS_1:
            out[name] = jnp.tile(leaf, (1, reps))
        elif leaf.shape[0] == r:
            out[name] = jnp.tile(leaf, (reps,) + (1,) * (leaf.ndim - 1))
        else:  # a table shared by all rows (e.g. a [1, K] demand CDF)
            out[name] = leaf
    return SimParams(**out)
