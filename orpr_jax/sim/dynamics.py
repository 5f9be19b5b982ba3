"""One day of the inventory dynamics for all rows, as pure functions.

The day conventions (ARCHITECTURE "Model conventions"), for each row i on day t:

1. Arrivals: units due today were added to on-hand when the previous day closed (the
   state at the start of a day is always post-arrival; :func:`initial_state` does it for
   day 0).
2. Review: on review days (``(t - o_i) mod R_i == 0``) the requested order q >= 0 is
   rounded to whole units, then, in this order, rounded up to the case pack, raised to
   the MOQ, capped at the per-row maximum, and scaled down (floor to case packs, dropped
   if below the MOQ) so no warehouse's total exceeds its inbound capacity. It is due at
   the start of day t + L, L >= 1 drawn per order (orders may cross).
3. Demand d is realised. Outstanding = backlog + d; shipped = min(on hand, outstanding);
   the rest is lost (lost-sales mode) or backlogged (backorder mode).
4. Costs: h * end-of-day on hand + p * unmet (lost units, or end-of-day backlog) +
   K * 1[order placed] + c * q.

With R = 1, a fixed L and lost sales this is the classic single-stage lost-sales model:
an order placed in period t is sold from period t + L on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from orpr_jax.sim import relax
from orpr_jax.sim.demand import day_of_week, day_of_year, promo_on
from orpr_jax.sim.types import (
    LONG_RUN_DAYS,
    DayOutcome,
    Observation,
    SimConfig,
    SimParams,
    SimState,
)


def is_review_day(config: SimConfig, params: SimParams, t: jax.Array) -> jax.Array:
    """``[R]`` float flags: 1.0 where day ``t`` is a review day of the row."""
    if not config.use_review:
        return jnp.ones((config.num_rows,), params.holding_cost.dtype)
    due = (t - params.review_offset) % params.review_period == 0
    return due.astype(params.holding_cost.dtype)


def initial_state(config: SimConfig, params: SimParams) -> SimState:
    """State at the start of day 0, after day 0's arrivals (``initial_pipeline[0]``)."""
    dtype = params.holding_cost.dtype
    ring = params.initial_pipeline.astype(dtype)
    arrivals = ring[0]
    ring = ring.at[0].set(0.0)
    pipeline_total = ring.sum(axis=0)
    if _order_history_ring(config):
        # Order-history ring: slot s holds the order placed on day s (mod M); the initial
        # pipeline is read from params while t < M (see _order_history_step).
        ring = jnp.zeros_like(ring)
    return SimState(
        on_hand=params.initial_on_hand.astype(dtype) + arrivals,
        backlog=jnp.zeros((config.num_rows,), dtype),
        ring=ring,
        pipeline_total=pipeline_total,
        # Day -H + j lives in slot (-H + j) mod H = j: the history is already in ring order.
        sales_ring=params.initial_sales_history.astype(dtype),
        # The days before day 0 count as in stock: their sales are the demand seen.
        stockout_ring=jnp.zeros_like(params.initial_sales_history, dtype),
        level=params.initial_sales_history.astype(dtype).mean(axis=0),
        arrivals=arrivals,
        t=jnp.zeros((), jnp.int32),
    )


def draw_lead_time(key: jax.Array, config: SimConfig, params: SimParams) -> jax.Array:
    """Lead time of an order placed today: ``[]`` (shared), or ``[R]`` int32 in [1, L_max].

    Stochastic mode inverts the row's CDF: ``L = 1 + #{l < L_max : cdf_l < U}``.
    """
    if config.lead_time_mode != "stochastic":
        return params.lead_time
    cdf = params.lead_time_cdf
    u = jax.random.uniform(key, (config.num_rows,), cdf.dtype)
    return 1 + jnp.sum(cdf[:, :-1] < u[:, None], axis=1, dtype=jnp.int32)


def constrain_order(
    config: SimConfig, params: SimParams, request: jax.Array, t: jax.Array
) -> jax.Array:
    """Applies review days, whole units, case pack, MOQ, max order and capacity.

    Args:
        config: static configuration (switches select the constraints compiled in).
        params: traced parameters.
        request: ``[R]`` order requested by the policy (any real; non-finite and negative
            requests order nothing).
        t: ``[]`` int32 day index.

    Returns:
        ``[R]`` order actually placed, >= 0 (integer-valued in exact mode).
    """
    relaxed, tau = config.relaxed, params.temperature
    dtype = params.holding_cost.dtype
    q = jnp.where(jnp.isfinite(request), request, 0.0).astype(dtype)
    q = relax.relu(q, tau, relaxed)
    if config.use_review:
        q = q * is_review_day(config, params, t)
    q = relax.round_(q, tau, relaxed)
    cp = params.case_pack if config.use_case_pack else None
    moq = jnp.ceil(params.moq)  # whole units, so the MOQ tests below are exact
    if cp is not None:
        q = cp * relax.ceil(q / cp, tau, relaxed)
        moq = cp * jnp.ceil(moq / cp)
    if config.use_moq:
        # Whole units: "an order is placed" means q >= 1, so the indicator tests q - 1/2.
        placed = relax.step(q - 0.5, tau, relaxed)
        q = q + placed * relax.relu(moq - q, tau, relaxed)
    if config.use_max_order:
        cap = params.max_order if cp is None else cp * jnp.floor(params.max_order / cp)
        q = relax.minimum(q, cap, tau, relaxed)
    if config.use_capacity:
        q = _apply_capacity(config, params, q, cp, moq)
    return q


def _apply_capacity(config, params, q, cp, moq):
    """Scales a warehouse's orders by ``min(1, capacity / total)``; floor; MOQ drop."""
    relaxed, tau = config.relaxed, params.temperature
    total = jax.ops.segment_sum(q, params.warehouse, num_segments=config.num_warehouses)
    ratio = params.capacity / jnp.where(total > 0, total, 1.0)
    scale = relax.minimum(jnp.ones_like(ratio), ratio, tau, relaxed)
    q = q * scale[params.warehouse]
    if cp is None:
        q = relax.floor(q, tau, relaxed)
    else:
        q = cp * relax.floor(q / cp, tau, relaxed)
    if config.use_moq:
        q = q * relax.step(q - moq + 0.5, tau, relaxed)
    return q


def transition(
    config: SimConfig,
    params: SimParams,
    state: SimState,
    request: jax.Array,
    demand: jax.Array,
    lead_time: jax.Array,
) -> tuple[SimState, DayOutcome]:
    """Simulates day ``state.t`` given the exogenous demand and lead time.

    The deterministic core of :class:`~orpr_jax.sim.env.InventoryEnv`; the env draws
    ``demand`` and ``lead_time`` from its key, tests and the OR labeller pass them in.

    Args:
        config: static configuration.
        params: traced parameters.
        state: state at the start of day t (post-arrival).
        request: ``[R]`` order requested by the policy.
        demand: ``[R]`` demand of day t (>= 0).
        lead_time: ``[]`` or ``[R]`` int32 lead time (days) of today's order, in
            ``[1, max_lead_time]``.

    Returns:
        ``(state, outcome)``: the state at the start of day t + 1 (after its arrivals) and
        the per-row quantities of day t.
    """
    relaxed, tau = config.relaxed, params.temperature
    t = state.t
    order = constrain_order(config, params, request, t)

    on_hand, backlog = state.on_hand, state.backlog
    outstanding = backlog + demand
    sales = relax.minimum(on_hand, outstanding, tau, relaxed)
    unmet = outstanding - sales
    on_hand_end = on_hand - sales
    net = on_hand - backlog
    filled = relax.minimum(relax.relu(net, tau, relaxed), demand, tau, relaxed)
    # Relaxed: whole units, so "in stock" is net >= 1 and the surrogate tests net - 1/2.
    in_stock = relax.step(net - 0.5, tau, True) if relaxed else (net > 0).astype(net.dtype)
    if config.backorder:
        backlog = unmet
    placed = relax.step(order - 0.5, tau, relaxed)
    holding = params.holding_cost * on_hand_end
    penalty = params.penalty_cost * unmet
    ordering = params.fixed_order_cost * placed
    purchase = params.purchase_cost * order

    slot = t % config.history_length
    sales_ring = jax.lax.dynamic_update_index_in_dim(state.sales_ring, sales, slot, axis=0)
    # A day that ends with nothing on hand may have lost demand: its sales are censored.
    # The flag is a mask, not a cost, so it carries no gradient in the relaxed mode.
    stockout = jax.lax.stop_gradient((on_hand_end <= 1e-6).astype(on_hand_end.dtype))
    stockout_ring = jax.lax.dynamic_update_index_in_dim(
        state.stockout_ring, stockout, slot, axis=0
    )
    level = state.level + (1.0 - stockout) * (sales - state.level) / LONG_RUN_DAYS
    t_next = t + 1
    if _order_history_ring(config):
        ring, arrivals = _order_history_step(config, params, state.ring, order, t, lead_time)
    else:
        ring = _add_to_ring(config, state.ring, order, t, lead_time)
        slot = t_next % config.ring_size
        arrivals = jax.lax.dynamic_index_in_dim(ring, slot, 0, keepdims=False)
        ring = jax.lax.dynamic_update_index_in_dim(ring, jnp.zeros_like(arrivals), slot, 0)
    new_state = SimState(
        on_hand=on_hand_end + arrivals,
        backlog=backlog,
        ring=ring,
        pipeline_total=state.pipeline_total + order - arrivals,
        sales_ring=sales_ring,
        stockout_ring=stockout_ring,
        level=level,
        arrivals=arrivals,
        t=t_next,
    )
    outcome = DayOutcome(
        demand=demand,
        sales=sales,
        filled=filled,
        unmet=unmet,
        order=order,
        order_placed=placed,
        arrivals=state.arrivals,
        on_hand_end=on_hand_end,
        in_stock=in_stock,
        holding_cost=holding,
        penalty_cost=penalty,
        ordering_cost=ordering,
        purchase_cost=purchase,
        cost=holding + penalty + ordering + purchase,
    )
    return new_state, outcome


def _order_history_ring(config: SimConfig) -> bool:
    """Per-row fixed lead times use the order-history ring (no [M, R] pass per day)."""
    return config.lead_time_mode == "per_row"


def _initial_due(config, params, day):
    """``[R]`` units of the initial pipeline due at the start of ``day`` (0 once >= M)."""
    m = config.ring_size
    row = jax.lax.dynamic_index_in_dim(
        params.initial_pipeline, jnp.minimum(day, m - 1), 0, keepdims=False
    ).astype(params.holding_cost.dtype)
    return jnp.where(day < m, row, 0.0)


def _order_history_step(config, params, ring, order, t, lead_time):
    """Writes today's order to slot ``t mod M``; returns the ring and day t+1's arrivals.

    Row i's order of day s arrives on day s + L_i, so day t + 1 receives the order of day
    ``t + 1 - L_i`` (slot ``(t + 1 - L_i) mod M``, not yet overwritten as L_i < M), plus
    the initial pipeline due that day. One contiguous row write and one gather per day.
    """
    m = config.ring_size
    ring = jax.lax.dynamic_update_index_in_dim(ring, order, t % m, 0)
    src = (t + 1 - lead_time) % m
    arrivals = jnp.take_along_axis(ring, src[None, :], axis=0, mode="promise_in_bounds")[0]
    return ring, arrivals + _initial_due(config, params, t + 1)


def _add_to_ring(config, ring, order, t, lead_time):
    """Adds today's order to slot ``(t + L) mod M`` of the pipeline ring."""
    m = config.ring_size
    if config.lead_time_mode == "shared":
        slot = (t + lead_time) % m
        row = jax.lax.dynamic_index_in_dim(ring, slot, 0, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(ring, row + order, slot, 0)
    slot = (t + lead_time) % m
    hit = jnp.arange(m, dtype=slot.dtype)[:, None] == slot[None, :]
    return ring + jnp.where(hit, order[None, :], 0.0)


def observe(config: SimConfig, params: SimParams, state: SimState) -> Observation:
    """Builds the :class:`Observation` of the day ``state.t`` (post-arrival).

    Fields a policy does not read cost nothing under ``jit`` (dead-code eliminated).
    """
    r = config.num_rows
    t = state.t
    m, h = config.ring_size, config.history_length
    # Slot (t + k) mod M holds units due in k days; k = 1..max_lead_time.
    if _order_history_ring(config):
        # Due in k days: the order of day t + k - L_i (pending only if k < L_i), plus the
        # initial pipeline due on day t + k.
        ks = jnp.arange(1, m, dtype=t.dtype)
        lt = params.lead_time
        src = (t + ks[:, None] - lt[None, :]) % m
        orders = jnp.take_along_axis(state.ring, src, axis=0, mode="promise_in_bounds")
        orders = jnp.where(ks[:, None] < lt[None, :], orders, 0.0)
        init = jax.vmap(lambda k: _initial_due(config, params, t + k))(ks)
        pipeline = (orders + init).T
    else:
        due_slots = (t + jnp.arange(1, m, dtype=t.dtype)) % m
        pipeline = jnp.take(state.ring, due_slots, axis=0).T
    hist_slots = (t + jnp.arange(h, dtype=t.dtype)) % h  # oldest first: slot t mod H holds day t - H
    sales_history = jnp.take(state.sales_ring, hist_slots, axis=0).T
    stockout_history = jnp.take(state.stockout_ring, hist_slots, axis=0).T
    promo_today = promo_on(config, params, t)
    if config.use_promotions:
        ahead_days = t + jnp.arange(1, config.promo_lookahead + 1, dtype=t.dtype)
        cal = params.promo_calendar
        promo_ahead = jnp.take(cal, ahead_days % cal.shape[0], axis=0).T
    else:
        promo_ahead = jnp.zeros((r, config.promo_lookahead), promo_today.dtype)
    lt_mean, lt_std = lead_time_moments(config, params)
    ones_i = jnp.ones((r,), jnp.int32)
    return Observation(
        on_hand=state.on_hand,
        backlog=state.backlog,
        pipeline=pipeline,
        inventory_position=state.on_hand - state.backlog + state.pipeline_total,
        sales_history=sales_history,
        stockout_history=stockout_history,
        long_run_level=state.level,
        promo_today=promo_today,
        promo_ahead=promo_ahead,
        is_review_day=is_review_day(config, params, t),
        day_of_week=day_of_week(params, t) * ones_i,
        day_of_year=day_of_year(params, t) * ones_i,
        t=t * ones_i,
        lead_time_mean=lt_mean,
        lead_time_std=lt_std,
        review_period=params.review_period * ones_i,
        holding_cost=params.holding_cost,
        penalty_cost=params.penalty_cost,
        category=params.category,
        warehouse=params.warehouse,
    )


def lead_time_moments(config: SimConfig, params: SimParams) -> tuple[jax.Array, jax.Array]:
    """``[R]`` mean and standard deviation of each row's vendor lead time (days)."""
    dtype = params.holding_cost.dtype
    r = config.num_rows
    if config.lead_time_mode != "stochastic":
        mean = jnp.broadcast_to(params.lead_time, (r,)).astype(dtype)
        return mean, jnp.zeros((r,), dtype)
    cdf = params.lead_time_cdf
    probs = jnp.diff(cdf, axis=1, prepend=0.0)
    ls = jnp.arange(1, cdf.shape[1] + 1, dtype=dtype)
    mean = probs @ ls
    var = probs @ (ls**2) - mean**2
    return mean, jnp.sqrt(jnp.maximum(var, 0.0))
