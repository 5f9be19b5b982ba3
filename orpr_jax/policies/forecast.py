"""The daily demand forecast every inventory-days rule orders against.

A moving average of *censored* sales has a trap: once a row has run out of stock for a
whole window, it has sold nothing, so its forecast is 0 and no number of inventory days
ever orders again. The forecast here reads only the days that ended in stock (sales on a
day that ended with nothing on hand are a lower bound of demand, not demand), and shrinks
that mean towards the row's long-run level (``Observation.long_run_level``, itself kept
from in-stock days only) with the weight of :data:`PRIOR_DAYS` days. With no in-stock day
in the window the forecast is the long-run level, floored at :data:`LEVEL_FLOOR`, so a
row that stocked out keeps ordering. A row whose stock is on the shelf but does not sell
still forecasts (close to) zero: that is demand, not censoring.

The incumbent rule, the tuned inventory-days policies, the OR model's candidate replays
and its labels, the foundation model's inputs and the RL reward all use this one function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from orpr_jax.sim.types import Observation

#: Weight, in days, of the long-run level in the forecast (a prior of that many days).
PRIOR_DAYS = 3.0
#: Floor (units/day) of the long-run level when it stands in for an all-censored window.
LEVEL_FLOOR = 0.05


def censored_forecast(obs: Observation, window: int = 28) -> Float[Array, " R"]:
    """``[R]`` daily demand forecast that ignores censored (stock-out) days.

    ``f = (sum of in-stock sales + PRIOR_DAYS * m) / (in-stock days + PRIOR_DAYS)`` over
    the last ``window`` days, with ``m = max(long_run_level, LEVEL_FLOOR)``.

    Args:
        obs: observation with ``sales_history`` and ``stockout_history`` ``[R, H]`` and
            ``long_run_level`` ``[R]`` (the leading axes may be any batch shape).
        window: days of history read (static; at most ``H``).

    Returns:
        ``[R]`` units/day, finite and > 0.
    """
    sales = obs.sales_history[..., -window:]
    in_stock = 1.0 - obs.stockout_history[..., -window:].astype(sales.dtype)
    prior = jnp.maximum(obs.long_run_level.astype(sales.dtype), LEVEL_FLOOR)
    num = (sales * in_stock).sum(axis=-1) + PRIOR_DAYS * prior
    return num / (in_stock.sum(axis=-1) + PRIOR_DAYS)


def censoring_features(obs: Observation, window: int = 28) -> tuple[jax.Array, jax.Array]:
    """``([R], [R])``: the share of stock-out days in the window, and the days since the
    last day that ended in stock (``window`` when none did), both over ``window`` days."""
    out = obs.stockout_history[..., -window:].astype(jnp.float32)
    share = out.mean(axis=-1)
    # Trailing run of stock-out days: the product of flags from the newest day backwards.
    run = jnp.cumprod(out[..., ::-1], axis=-1).sum(axis=-1)
    return share, run
