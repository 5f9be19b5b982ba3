"""What the gymnax and Gymnasium adapters share: one scenario row as its own env, the
flat observation and its bounds, and the action spec (bins or a box).

Peers see one SKU-warehouse row per environment instance. :func:`split_rows` turns a
scenario's ``[R]``-row :class:`~orpr_jax.sim.types.SimParams` into per-row params stacked
on a leading axis (``[N, ...]`` leaves, each row's slice a valid one-row ``SimParams``),
and :func:`row_config` is the one-row :class:`~orpr_jax.sim.types.SimConfig`. A row keeps
its own warehouse's inbound capacity: rows of one warehouse no longer share it (a
one-row env cannot see the others' orders).

The observation is :func:`orpr_jax.policies.flat_features` of the row, the same features
the project's MLP agent reads, so peers and the fused PPO see the same information.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.policies.heuristics import InventoryDays
from orpr_jax.policies.saved import SALES_DAYS, flat_feature_count, flat_features
from orpr_jax.sim.types import Observation, SimConfig, SimParams

#: Row axis of every SimParams field (None: shared by all rows). The same table as
#: ``orpr_jax.distributed.padding.ROW_AXIS`` (importing that package would pull in the
#: label solvers); a test checks they agree.
ROW_AXIS: dict[str, int | None] = {
    "holding_cost": 0, "penalty_cost": 0, "fixed_order_cost": 0, "purchase_cost": 0,
    "review_period": 0, "review_offset": 0, "lead_time": 0, "lead_time_cdf": 0, "moq": 0,
    "case_pack": 0, "max_order": 0, "warehouse": 0, "capacity": None, "category": 0,
    "initial_on_hand": 0, "initial_pipeline": 1, "initial_sales_history": 1,
    "demand_trace": 1, "demand_cdf": 0, "base_demand": 0, "dispersion": 0, "weekly": 0,
    "yearly_amplitude": 0, "yearly_phase": 0, "trend": 0, "zero_prob": 0, "promo_uplift": 0,
    "promo_calendar": 1, "start_day_of_year": None, "start_day_of_week": None,
    "temperature": None,
}

#: Bound of the scaled unit features (``flat_features`` clips to it).
UNIT_BOUND = 50.0

ACTION_KINDS = ("order_quantity", "inventory_days")


def row_config(config: SimConfig) -> SimConfig:
    """The one-row config of a scenario's ``config`` (one warehouse, no truncation: the
    adapters count the episode's days themselves)."""
    return config.replace(num_rows=1, num_warehouses=1, max_steps_in_episode=None)


def split_rows(config: SimConfig, params: SimParams) -> SimParams:
    """Per-row params of every row, stacked: leaves ``[R, ...]``; row ``i`` (``jax.tree.map(
    lambda x: x[i], out)``) is a valid ``SimParams`` of :func:`row_config`.

    Row-axis fields keep a length-1 row axis; shared fields (a ``[]`` lead time, a
    ``[1, K]`` demand table, scalars) are broadcast; each row gets warehouse 0 with its
    own warehouse's capacity.
    """
    r = config.num_rows
    out = {}
    for name, axis in ROW_AXIS.items():
        x = jnp.asarray(getattr(params, name))
        if name == "warehouse":
            x = jnp.zeros((r, 1), x.dtype)
        elif name == "capacity":
            x = x[jnp.asarray(params.warehouse)][:, None]
        elif axis is None or x.ndim <= axis or x.shape[axis] != r:
            x = jnp.broadcast_to(x, (r, *x.shape))
        else:
            x = jnp.expand_dims(jnp.moveaxis(x, axis, 0), axis + 1)
        out[name] = x
    return SimParams(**out)


def take_row(rows: SimParams, index: int) -> SimParams:
    """Row ``index`` of :func:`split_rows`' output.

    Raises:
        ValueError: ``index`` outside ``[0, R)``.
    """
    r = int(rows.holding_cost.shape[0])
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < r:
        raise ValueError(f"row={index!r} is not allowed; expected an integer in [0, {r})")
    return jax.tree.map(lambda x: x[int(index)], rows)


def feature_bounds(max_lead_time: int) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float32 ``[F]`` bounds of :func:`flat_features`."""
    units = 3 + max_lead_time + SALES_DAYS
    low = np.concatenate([np.full(units, -UNIT_BOUND), [-2.0, 0.0, 0.0, 0.0]])
    high = np.concatenate([np.full(units, UNIT_BOUND), [2.0, 1.0, 1.0, 1.0]])
    assert low.size == flat_feature_count(max_lead_time)
    return low.astype(np.float32), high.astype(np.float32)


def row_features(obs: Observation, scale: jax.Array) -> jax.Array:
    """``[F]`` float32 features of a one-row observation (``[1, ...]`` leaves)."""
    return flat_features(obs, scale)[0].astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """What a peer's action means.

    Attributes:
        kind: ``"order_quantity"`` (units) or ``"inventory_days"`` (order up to ``v``
            days of forecast demand, the paper's action).
        values: the bins (Discrete); with ``continuous``, ``(values[0], values[-1])`` is
            the range of the amount.
        continuous: a Box action instead of Discrete bins: one float in [-1, 1] (the
            normalised range Gymnasium and SB3 recommend), mapped linearly to
            ``[values[0], values[-1]]`` units or inventory days.
        window: forecast window of the inventory-days action (days).
    """

    kind: str = "order_quantity"
    values: tuple[float, ...] = tuple(float(v) for v in range(21))
    continuous: bool = False
    window: int = 28

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"action={self.kind!r} is not allowed; use one of {ACTION_KINDS}")
        vals = tuple(float(v) for v in np.asarray(self.values, np.float64).ravel())
        if len(vals) < 2 or not all(math.isfinite(v) and v >= 0 for v in vals):
            raise ValueError(f"values={self.values!r} is not allowed; expected >= 2 finite "
                             "numbers >= 0")
        if any(b <= a for a, b in zip(vals[:-1], vals[1:])):
            raise ValueError(f"values={vals!r} is not allowed; expected increasing bins")
        object.__setattr__(self, "values", vals)
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window={self.window!r} is not allowed; expected an integer >= 1")

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[-1]

    def _unit_to_amount(self, a: jax.Array) -> jax.Array:
        a = jnp.clip(a, -1.0, 1.0)
        return self.low + (a + 1.0) * jnp.float32(0.5 * (self.high - self.low))

    def amount(self, action: jax.Array) -> jax.Array:
        """Units or inventory days of ``action`` (a bin index, or a box value clipped)."""
        if self.continuous:
            return self._unit_to_amount(jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0])
        idx = jnp.clip(jnp.asarray(action, jnp.int32), 0, len(self.values) - 1)
        return jnp.asarray(self.values, jnp.float32)[idx]

    def amounts(self, actions: jax.Array) -> jax.Array:
        """``[R]`` amounts of a batch of actions (``[R]`` bins, or ``[R, 1]`` box values)."""
        if self.continuous:
            return self._unit_to_amount(jnp.reshape(jnp.asarray(actions, jnp.float32), (-1,)))
        idx = jnp.clip(jnp.asarray(actions, jnp.int32), 0, len(self.values) - 1)
        return jnp.asarray(self.values, jnp.float32)[idx]

    def orders(self, obs: Observation, amount: jax.Array) -> jax.Array:
        """``[R]`` order quantities for ``amount`` (``[]`` or ``[R]``)."""
        if self.kind == "order_quantity":
            return jnp.broadcast_to(jnp.maximum(amount, 0.0), obs.on_hand.shape)
        return InventoryDays(v=amount, window=self.window)(obs, None)


def scale_of(sim: SimParams, config: SimConfig) -> jax.Array:
    """``[]`` demand level of a one-row params (its mean demand: the trace mean in trace
    mode, ``E[D] = sum_k P(D > k)`` of a demand table, else ``base_demand``), >= 0.1.
    ``jax.vmap`` it over :func:`split_rows` for every row."""
    if config.demand_mode == "trace":
        level = jnp.mean(sim.demand_trace)
    elif config.demand_mode == "table":
        level = jnp.sum(1.0 - sim.demand_cdf[0, :-1])
    else:
        level = jnp.mean(sim.base_demand)
    return jnp.maximum(level, 0.1).astype(jnp.float32)


def row_scales(config: SimConfig, params: SimParams) -> jax.Array:
    """``[R]`` :func:`scale_of` of every row of a scenario."""
    return jax.vmap(lambda s: scale_of(s, row_config(config)))(split_rows(config, params))


def check_window(spec: ActionSpec, config: SimConfig) -> None:
    """Raises ValueError when the inventory-days window exceeds the sales history."""
    if spec.kind == "inventory_days" and spec.window > config.history_length:
        raise ValueError(f"window={spec.window} is not allowed; expected an integer in "
                         f"[1, history_length={config.history_length}]")
