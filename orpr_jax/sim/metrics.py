"""The paper's metrics, accumulated inside ``lax.scan`` and finalised per row and overall.

Definitions (over the evaluation window, after the warm-up days):

* ``turnover_days`` = sum of end-of-day on hand / sum of sales (aggregate: totals over
  rows). A row with no sales has ``inf`` if it held stock, 0 otherwise.
* ``in_stock_rate`` = share of row-days with stock available after arrivals, before
  demand (net of backlog).
* ``fill_rate`` = demand met from stock on the day / demand (1 where no demand).
* ``lost_units`` (lost units, or backlog unit-days in backorder mode), ``holding_cost``,
  ``lost_sales_cost`` (the penalty), ``ordering_cost`` (fixed), ``purchase_cost``.
* ``total_cost`` = holding + lost-sales + ordering + purchase; ``cost_per_row_day``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from orpr_jax.sim.types import DayOutcome


@struct.dataclass
class MetricSums:
    """Running per-row sums (all ``[R]``) over the evaluation window."""

    on_hand: jax.Array
    sales: jax.Array
    demand: jax.Array
    filled: jax.Array
    unmet: jax.Array
    in_stock_days: jax.Array
    orders_placed: jax.Array
    ordered_units: jax.Array
    holding_cost: jax.Array
    penalty_cost: jax.Array
    ordering_cost: jax.Array
    purchase_cost: jax.Array
    days: jax.Array


def init_sums(num_rows: int, dtype=jnp.float32) -> MetricSums:
    """Zero accumulators for ``num_rows`` rows."""
    z = jnp.zeros((num_rows,), dtype)
    return MetricSums(z, z, z, z, z, z, z, z, z, z, z, z, jnp.zeros((), dtype))


def accumulate(sums: MetricSums, out: DayOutcome, weight: jax.Array) -> MetricSums:
    """Adds one day's outcome, times ``weight`` (0 during warm-up, 1 after)."""
    w = weight.astype(sums.sales.dtype)
    return MetricSums(
        on_hand=sums.on_hand + w * out.on_hand_end,
        sales=sums.sales + w * out.sales,
        demand=sums.demand + w * out.demand,
        filled=sums.filled + w * out.filled,
        unmet=sums.unmet + w * out.unmet,
        in_stock_days=sums.in_stock_days + w * out.in_stock,
        orders_placed=sums.orders_placed + w * out.order_placed,
        ordered_units=sums.ordered_units + w * out.order,
        holding_cost=sums.holding_cost + w * out.holding_cost,
        penalty_cost=sums.penalty_cost + w * out.penalty_cost,
        ordering_cost=sums.ordering_cost + w * out.ordering_cost,
        purchase_cost=sums.purchase_cost + w * out.purchase_cost,
        days=sums.days + w,
    )


def _ratio(num, den, empty):
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), empty)


def finalize(sums: MetricSums) -> dict:
    """Metrics per row (``[R]`` arrays under ``"per_row"``) and aggregated (scalars).

    Returns:
        A dict of 0-d arrays: ``total_cost``, ``cost_per_row_day``, ``holding_cost``,
        ``lost_sales_cost``, ``ordering_cost``, ``purchase_cost``, ``turnover_days``,
        ``in_stock_rate``, ``fill_rate``, ``lost_units``, ``sales``, ``demand``,
        ``orders_placed``, ``rows``, ``days``; and ``"per_row"`` with the per-row versions.
    """
    total = sums.holding_cost + sums.penalty_cost + sums.ordering_cost + sums.purchase_cost
    days = sums.days
    no_sales_turnover = jnp.where(sums.on_hand > 0, jnp.inf, 0.0)
    per_row = {
        "total_cost": total,
        "cost_per_day": _ratio(total, days, 0.0),
        "holding_cost": sums.holding_cost,
        "lost_sales_cost": sums.penalty_cost,
        "ordering_cost": sums.ordering_cost,
        "purchase_cost": sums.purchase_cost,
        "turnover_days": _ratio(sums.on_hand, sums.sales, no_sales_turnover),
        "in_stock_rate": _ratio(sums.in_stock_days, days, 0.0),
        "fill_rate": _ratio(sums.filled, sums.demand, 1.0),
        "lost_units": sums.unmet,
        "sales": sums.sales,
        "demand": sums.demand,
        "orders_placed": sums.orders_placed,
    }
    rows = sums.sales.shape[0]
    row_days = rows * days
    agg_total = total.sum()
    sales = sums.sales.sum()
    stock = sums.on_hand.sum()
    out = {
        "total_cost": agg_total,
        "cost_per_row_day": _ratio(agg_total, row_days, 0.0),
        "holding_cost": sums.holding_cost.sum(),
        "lost_sales_cost": sums.penalty_cost.sum(),
        "ordering_cost": sums.ordering_cost.sum(),
        "purchase_cost": sums.purchase_cost.sum(),
        "turnover_days": _ratio(stock, sales, jnp.where(stock > 0, jnp.inf, 0.0)),
        "in_stock_rate": _ratio(sums.in_stock_days.sum(), row_days, 0.0),
        "fill_rate": _ratio(sums.filled.sum(), sums.demand.sum(), 1.0),
        "lost_units": sums.unmet.sum(),
        "sales": sales,
        "demand": sums.demand.sum(),
        "orders_placed": sums.orders_placed.sum(),
        "rows": jnp.asarray(rows, days.dtype),
        "days": days,
        "per_row": per_row,
    }
    return out


#: Aggregate metrics shown in tables, in display order.
TABLE_METRICS = (
    "total_cost",
    "cost_per_row_day",
    "holding_cost",
    "lost_sales_cost",
    "ordering_cost",
    "turnover_days",
    "in_stock_rate",
    "fill_rate",
)
