"""NumPy baselines of the simulator benchmark (``bench_sim.py``; not a test module).

:func:`numpy_simulate` is a NumPy version of the lost-sales base-stock dynamics of
``orpr_jax.sim.dynamics`` (loop over days, vectorised over rows), on a pre-drawn demand
trace or with ``Generator.poisson`` draws inside the loop; it accumulates the same per-row
metric sums as ``orpr_jax.sim.metrics.accumulate`` (:data:`SUM_FIELDS`), so the total
costs of both sides can be compared. :func:`total_cost` and :func:`per_row_cost_per_day`
summarise its output.
"""

from __future__ import annotations

import numpy as np

DTYPE = np.float32

#: Per-row metric sums accumulated by ``orpr_jax.sim.metrics.accumulate`` (same order).
SUM_FIELDS = (
    "on_hand",
    "sales",
    "demand",
    "filled",
    "unmet",
    "in_stock_days",
    "orders_placed",
    "ordered_units",
    "holding_cost",
    "penalty_cost",
    "ordering_cost",
    "purchase_cost",
)
COST_FIELDS = ("holding_cost", "penalty_cost", "ordering_cost", "purchase_cost")


def numpy_simulate(
    demand,
    lead_time,
    level,
    initial_on_hand,
    costs: dict[str, np.ndarray],
    max_lead_time: int,
    num_days: int,
    warmup_days: int = 0,
) -> dict[str, np.ndarray]:
    """Lost-sales base-stock run with the day conventions of ``orpr_jax.sim.dynamics``.

    Per day, after the previous day's arrivals: order ``round(max(level - position, 0))``
    (due at the start of day t + L), sales = min(on hand, demand), unmet = demand - sales,
    filled = min(max(on hand, 0), demand), in stock iff on hand > 0, an order is placed
    iff it is > 0.5; costs h * end stock, p * unmet, K * placed, c * order. The pipeline
    is a ring of ``max_lead_time + 1`` slots; slot ``(t + L) mod M`` holds units due on
    day t + L. All arithmetic in float32, like the JAX run.

    Args:
        demand: ``[T, R]`` trace (day t uses row t), or ``(rng, mean)`` to draw
            ``rng.poisson(mean, R)`` inside the loop.
        lead_time: an int (one lead time for all rows) or ``[R]`` ints in
            ``[1, max_lead_time]``.
        level: ``[R]`` or scalar order-up-to level.
        initial_on_hand: ``[R]`` stock at day 0 (nothing on order).
        costs: ``holding_cost``, ``penalty_cost``, ``fixed_order_cost``, ``purchase_cost``
            (``[R]`` or scalars).
        max_lead_time: ring size - 1.
        num_days: days to simulate.
        warmup_days: leading days left out of the sums.

    Returns:
        The per-row sums of :data:`SUM_FIELDS` (float32 ``[R]``).
    """
    f = DTYPE
    trace = None if isinstance(demand, tuple) else demand
    if trace is None:
        rng, mean = demand
        num_rows = np.shape(initial_on_hand)[0]
    else:
        num_rows = trace.shape[1]
    m = max_lead_time + 1
    r = num_rows
    level = np.broadcast_to(np.asarray(level, f), (r,))
    h = np.asarray(costs["holding_cost"], f)
    p = np.asarray(costs["penalty_cost"], f)
    k = np.asarray(costs["fixed_order_cost"], f)
    c = np.asarray(costs["purchase_cost"], f)

    shared = np.ndim(lead_time) == 0
    if shared:
        lead = int(lead_time)
        ring = np.zeros((m, r), f)
    else:
        # Flat [M, R] ring; the flat index of (slot (t + L_i) mod M, row i) only depends
        # on t mod M, so the M index vectors are built once.
        lead = np.asarray(lead_time, np.int64)
        ring = np.zeros(m * r, f)
        cols = np.arange(r, dtype=np.int64)
        phase_index = [((ph + lead) % m) * r + cols for ph in range(m)]

    on_hand = np.array(initial_on_hand, f)
    pipe = np.zeros(r, f)
    sums = {name: np.zeros(r, f) for name in SUM_FIELDS}
    q = np.empty(r, f)
    sales = np.empty(r, f)
    unmet = np.empty(r, f)
    end = np.empty(r, f)
    filled = np.empty(r, f)
    tmp = np.empty(r, f)
    in_stock = np.empty(r, bool)
    placed = np.empty(r, bool)

    for t in range(num_days):
        if trace is None:
            d = rng.poisson(mean, r).astype(f)
        else:
            d = trace[t]
        # Policy (base stock on the inventory position; no backlog in lost-sales mode)
        # and order constraints (non-negative whole units; requests are finite here).
        np.add(on_hand, pipe, out=q)
        np.subtract(level, q, out=q)
        np.maximum(q, 0.0, out=q)
        np.round(q, out=q)
        # Demand.
        np.minimum(on_hand, d, out=sales)
        np.subtract(d, sales, out=unmet)
        np.subtract(on_hand, sales, out=end)
        np.maximum(on_hand, 0.0, out=filled)
        np.minimum(filled, d, out=filled)
        np.greater(on_hand, 0.0, out=in_stock)
        np.greater(q, 0.5, out=placed)
        if t >= warmup_days:
            sums["on_hand"] += end
            sums["sales"] += sales
            sums["demand"] += d
            sums["filled"] += filled
            sums["unmet"] += unmet
            sums["in_stock_days"] += in_stock
            sums["orders_placed"] += placed
            sums["ordered_units"] += q
            sums["holding_cost"] += np.multiply(h, end, out=tmp)
            sums["penalty_cost"] += np.multiply(p, unmet, out=tmp)
            sums["ordering_cost"] += np.multiply(k, placed, out=tmp)
            sums["purchase_cost"] += np.multiply(c, q, out=tmp)
        # Today's order into the ring, then day t + 1's arrivals.
        nxt = (t + 1) % m
        if shared:
            ring[(t + lead) % m] += q
            arrivals = ring[nxt]
        else:
            ring[phase_index[t % m]] += q
            arrivals = ring[nxt * r : (nxt + 1) * r]
        np.add(end, arrivals, out=on_hand)
        pipe += q
        pipe -= arrivals
        arrivals[...] = 0.0
    return sums


def total_cost(sums: dict[str, np.ndarray]) -> float:
    """Total cost over rows (float64 sum of the float32 per-row sums)."""
    return float(sum(np.asarray(sums[name], np.float64).sum() for name in COST_FIELDS))


def per_row_cost_per_day(sums: dict[str, np.ndarray], days: float) -> np.ndarray:
    """Per-row cost per day (float64): the cost sums of :data:`COST_FIELDS` / ``days``."""
    total = sum(np.asarray(sums[name], np.float64) for name in COST_FIELDS)
    return total / days


__all__ = [
    "COST_FIELDS",
    "DTYPE",
    "SUM_FIELDS",
    "numpy_simulate",
    "per_row_cost_per_day",
    "total_cost",
]
