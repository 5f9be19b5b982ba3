"""Static configuration, traced parameters, state and observation of the simulator.

The split follows the Craftax convention: :class:`SimConfig` holds everything that fixes a
shape, a loop count or a code path (it is hashable and passed as a static argument), while
:class:`SimParams` holds every number a sweep may change (it is a pytree of arrays, so
``jax.vmap`` sweeps it without code edits).

Shapes use ``R`` for rows (SKU x warehouse), ``W`` for warehouses, ``M = max_lead_time + 1``
for the pipeline ring, ``H`` for the sales-history window, ``P`` for the promotion look-ahead,
``T`` for a time-indexed table (demand trace or promotion calendar) and ``K`` for the
support of a stationary demand table.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
from flax import struct

from orpr_jax._validation import check_int

#: Time constant (days) of the long-run demand level kept in ``SimState.level``.
LONG_RUN_DAYS = 91.0

LeadTimeMode = Literal["shared", "per_row", "stochastic"]
DemandMode = Literal["trace", "table", "poisson", "negbin"]


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Shape-setting and code-path-setting configuration (static under ``jit``).

    Every feature a scenario does not use is a switch here, so its cost compiles away.

    Attributes:
        num_rows: R, number of SKU-warehouse rows simulated in parallel.
        num_warehouses: W, number of warehouses sharing inbound capacity.
        max_lead_time: largest vendor lead time in days (>= 1); the pipeline ring has
            ``max_lead_time + 1`` slots.
        history_length: H, days of censored sales kept for the observation.
        promo_lookahead: P, days of the known promotion calendar shown ahead of today.
        lead_time_mode: ``"shared"`` (one fixed L for all rows, ``params.lead_time`` of
            shape ``[]``), ``"per_row"`` (fixed L per row, shape ``[R]``) or
            ``"stochastic"`` (L drawn per order from ``params.lead_time_cdf``).
        demand_mode: ``"trace"`` replays ``params.demand_trace``; ``"table"`` samples a
            stationary per-row distribution by inverse-CDF lookup in
            ``params.demand_cdf``; ``"poisson"`` / ``"negbin"`` sample the parametric
            seasonal model (:mod:`orpr_jax.sim.demand`).
        backorder: unmet demand is backlogged instead of lost.
        use_review: rows order only on their review days (period, offset); off means
            every day is a review day.
        use_case_pack: orders are rounded up to multiples of ``params.case_pack``.
        use_moq: positive orders are raised to ``params.moq``.
        use_max_order: orders are capped at ``params.max_order``.
        use_capacity: orders are scaled down so no warehouse exceeds ``params.capacity``.
        use_promotions: the promotion calendar feeds demand uplift and the observation.
        max_steps_in_episode: days before ``truncated`` is raised and the env auto-resets;
            ``None`` never truncates.
        relaxed: smooth surrogates for every min/max/rounding/indicator (see
            :mod:`orpr_jax.sim.relax`) so gradients flow; exact when False.
    """

    num_rows: int
    num_warehouses: int = 1
    max_lead_time: int = 14
    history_length: int = 28
    promo_lookahead: int = 7
    lead_time_mode: LeadTimeMode = "per_row"
    demand_mode: DemandMode = "table"
    backorder: bool = False
    use_review: bool = False
    use_case_pack: bool = False
    use_moq: bool = False
    use_max_order: bool = False
    use_capacity: bool = False
    use_promotions: bool = False
    max_steps_in_episode: int | None = None
    relaxed: bool = False

    def __post_init__(self) -> None:
        check_int("num_rows", self.num_rows, 1)
        check_int("num_warehouses", self.num_warehouses, 1)
        check_int("max_lead_time", self.max_lead_time, 1)
        check_int("history_length", self.history_length, 1)
        check_int("promo_lookahead", self.promo_lookahead, 1)
        if self.lead_time_mode not in ("shared", "per_row", "stochastic"):
            raise ValueError(
                f"lead_time_mode={self.lead_time_mode!r} is not allowed; "
                "use 'shared', 'per_row' or 'stochastic'"
            )
        if self.demand_mode not in ("trace", "table", "poisson", "negbin"):
            raise ValueError(
                f"demand_mode={self.demand_mode!r} is not allowed; "
                "use 'trace', 'table', 'poisson' or 'negbin'"
            )
        if self.max_steps_in_episode is not None:
            check_int("max_steps_in_episode", self.max_steps_in_episode, 1)

    @property
    def ring_size(self) -> int:
        """Slots of the pipeline ring, ``max_lead_time + 1``."""
        return self.max_lead_time + 1

    def replace(self, **changes) -> SimConfig:
        """Returns a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@struct.dataclass
class SimParams:
    """Traced per-row parameters (a pytree; ``vmap`` over it to sweep).

    All costs are per unit (holding per unit of end-of-day stock per day; penalty per lost
    or backlogged unit per day) except ``fixed_order_cost`` (per order placed).

    Attributes:
        holding_cost: ``[R]`` h_i.
        penalty_cost: ``[R]`` p_i per lost (or backlogged, per day) unit.
        fixed_order_cost: ``[R]`` K_i per order placed.
        purchase_cost: ``[R]`` c_i per unit ordered.
        review_period: ``[R]`` int32 R_i >= 1.
        review_offset: ``[R]`` int32 o_i in [0, R_i); day t is a review day when
            ``(t - o_i) mod R_i == 0``.
        lead_time: ``[]`` (shared) or ``[R]`` (per_row) int32 fixed L >= 1.
        lead_time_cdf: ``[R, max_lead_time]`` CDF of L at 1..max_lead_time, last column 1
            (stochastic mode; ignored otherwise, may be ``[R, 1]``).
        moq: ``[R]`` minimum order quantity.
        case_pack: ``[R]`` case-pack size (>= 1).
        max_order: ``[R]`` largest order per review.
        warehouse: ``[R]`` int32 warehouse index in [0, W).
        capacity: ``[W]`` inbound units per day per warehouse.
        category: ``[R]`` int32 category index (an attribute for models and grouping).
        initial_on_hand: ``[R]`` stock on hand at day 0 before arrivals.
        initial_pipeline: ``[M, R]`` units due at the start of day k (row k of the ring,
            k = 0..max_lead_time).
        initial_sales_history: ``[H, R]`` censored sales of the H days before day 0,
            oldest first (seeds the observation's sales window and forecasts).
        demand_trace: ``[T, R]`` demand replayed in trace mode (day t uses t mod T).
        demand_cdf: ``[R or 1, K]`` CDF of a stationary demand on 0..K-1 (table mode).
        base_demand: ``[R]`` mean daily demand before seasonality and promotions.
        dispersion: ``[R]`` negative-binomial shape r (variance mean + mean^2 / r).
        weekly: ``[R, 7]`` multiplicative day-of-week profile (mean 1).
        yearly_amplitude: ``[R]`` relative amplitude of the yearly sine.
        yearly_phase: ``[R]`` day of year of the yearly peak.
        trend: ``[R]`` relative growth per 365 days.
        zero_prob: ``[R]`` probability a day has no demand (intermittent slow movers).
        promo_uplift: ``[R]`` demand multiplier on promotion days.
        promo_calendar: ``[T, R]`` 1.0 on promotion days (day t uses t mod T); known in
            advance, so the observation shows it ``promo_lookahead`` days ahead.
        start_day_of_year: ``[]`` int32 calendar day of year at t = 0 (0 = 1 January);
            day of week is ``t mod 7`` from a Monday at t = 0 plus ``start_day_of_week``.
        start_day_of_week: ``[]`` int32.
        temperature: ``[]`` temperature of the relaxed surrogates (relaxed mode only).
    """

    holding_cost: jax.Array
    penalty_cost: jax.Array
    fixed_order_cost: jax.Array
    purchase_cost: jax.Array
    review_period: jax.Array
    review_offset: jax.Array
    lead_time: jax.Array
    lead_time_cdf: jax.Array
    moq: jax.Array
    case_pack: jax.Array
    max_order: jax.Array
    warehouse: jax.Array
    capacity: jax.Array
    category: jax.Array
    initial_on_hand: jax.Array
    initial_pipeline: jax.Array
    initial_sales_history: jax.Array
    demand_trace: jax.Array
    demand_cdf: jax.Array
    base_demand: jax.Array
    dispersion: jax.Array
    weekly: jax.Array
    yearly_amplitude: jax.Array
    yearly_phase: jax.Array
    trend: jax.Array
    zero_prob: jax.Array
    promo_uplift: jax.Array
    promo_calendar: jax.Array
    start_day_of_year: jax.Array
    start_day_of_week: jax.Array
    temperature: jax.Array


@struct.dataclass
class SimState:
    """Simulator state at the start of a day, after that day's arrivals.

    Attributes:
        on_hand: ``[R]`` units on hand (>= 0).
        backlog: ``[R]`` backlogged units (0 in lost-sales mode).
        ring: ``[M, R]`` pipeline ring. ``shared``/``stochastic`` lead times: slot
            ``(t + L) mod M`` holds units due on day t+L (today's slot already emptied
            into ``on_hand``). ``per_row`` lead times: an order-history ring, slot
            ``s mod M`` holds the order placed on day s (it arrives on day s + L_i), and
            the initial pipeline is read from ``params`` while t < M. Read the pipeline
            through ``observe(...).pipeline``, which is the same in every mode.
        pipeline_total: ``[R]`` units on order (sum of ``ring``), kept as a running total.
        sales_ring: ``[H, R]`` censored sales of the last H days; day t-1 is in slot
            ``(t - 1) mod H``.
        stockout_ring: ``[H, R]`` 1.0 where the day ended with no stock on hand (its sales
            are censored), in the slots of ``sales_ring``.
        level: ``[R]`` long-run demand level (units/day): an exponential average of the
            sales of the days that ended in stock (time constant
            :data:`LONG_RUN_DAYS`), so stock-out days do not pull it to zero.
        arrivals: ``[R]`` units that arrived at the start of today.
        t: ``[]`` int32 day index since reset.
    """

    on_hand: jax.Array
    backlog: jax.Array
    ring: jax.Array
    pipeline_total: jax.Array
    sales_ring: jax.Array
    stockout_ring: jax.Array
    level: jax.Array
    arrivals: jax.Array
    t: jax.Array


@struct.dataclass
class Observation:
    """What a policy sees on a day, after arrivals and before ordering.

    Every leaf has the row axis first, so a single-row policy can be ``jax.vmap``-ed over
    an observation directly.

    Attributes:
        on_hand: ``[R]`` units on hand after today's arrivals.
        backlog: ``[R]`` backlogged units.
        pipeline: ``[R, max_lead_time]`` units due in 1..max_lead_time days.
        inventory_position: ``[R]`` on hand - backlog + on order.
        sales_history: ``[R, H]`` censored sales of the last H days, oldest first.
        stockout_history: ``[R, H]`` 1.0 where that day ended with no stock on hand (its
            sales are censored), oldest first.
        long_run_level: ``[R]`` long-run demand level (units/day) from the days that ended
            in stock (see ``SimState.level``).
        promo_today: ``[R]`` 1.0 if today is a promotion day.
        promo_ahead: ``[R, P]`` promotion flags for days t+1..t+P.
        is_review_day: ``[R]`` 1.0 if an order placed today is accepted.
        day_of_week: ``[R]`` int32 in [0, 7).
        day_of_year: ``[R]`` int32 in [0, 365).
        t: ``[R]`` int32 day index since reset.
        lead_time_mean: ``[R]`` expected vendor lead time (days).
        lead_time_std: ``[R]`` standard deviation of the vendor lead time (days).
        review_period: ``[R]`` int32.
        holding_cost: ``[R]``.
        penalty_cost: ``[R]``.
        category: ``[R]`` int32.
        warehouse: ``[R]`` int32.
    """

    on_hand: jax.Array
    backlog: jax.Array
    pipeline: jax.Array
    inventory_position: jax.Array
    sales_history: jax.Array
    stockout_history: jax.Array
    long_run_level: jax.Array
    promo_today: jax.Array
    promo_ahead: jax.Array
    is_review_day: jax.Array
    day_of_week: jax.Array
    day_of_year: jax.Array
    t: jax.Array
    lead_time_mean: jax.Array
    lead_time_std: jax.Array
    review_period: jax.Array
    holding_cost: jax.Array
    penalty_cost: jax.Array
    category: jax.Array
    warehouse: jax.Array


@struct.dataclass
class DayOutcome:
    """Per-row quantities of one simulated day (all ``[R]``).

    Attributes:
        demand: demand realised today.
        sales: units shipped today (censored sales; includes backlog cleared).
        filled: today's demand met from stock on the day.
        unmet: lost units (lost-sales mode) or end-of-day backlog (backorder mode).
        order: units ordered today after every constraint.
        order_placed: 1.0 where an order was placed.
        arrivals: units that arrived at the start of today.
        on_hand_end: end-of-day stock on hand.
        in_stock: 1.0 where stock was available after arrivals, before demand (net of
            backlog).
        holding_cost, penalty_cost, ordering_cost, purchase_cost: today's costs.
        cost: their sum.
    """

    demand: jax.Array
    sales: jax.Array
    filled: jax.Array
    unmet: jax.Array
    order: jax.Array
    order_placed: jax.Array
    arrivals: jax.Array
    on_hand_end: jax.Array
    in_stock: jax.Array
    holding_cost: jax.Array
    penalty_cost: jax.Array
    ordering_cost: jax.Array
    purchase_cost: jax.Array
    cost: jax.Array
