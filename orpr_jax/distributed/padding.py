"""Padding the row axis to a multiple of the mesh size, and the row axis of every field.

A mesh of n devices needs the row count to be a multiple of n.
:func:`pad_params` appends rows that cost nothing (zero costs; zero demand where demand
is given per row; nothing on hand or on order) and, when capacity is shared, puts them in
an extra warehouse of zero inbound capacity, so they never take capacity from a real
warehouse. Rows interact only through capacity, so the real rows run exactly as before;
the metrics are computed over the real rows only (the padded rows are sliced off before
aggregation; :func:`row_mask` gives the same mask for user code).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.sim.rollout import Policy
from orpr_jax.sim.types import SimConfig, SimParams


#: Row axis of every :class:`SimParams` field (``None``: no row axis, replicated). A field
#: whose row axis has length 1 while there are more rows (e.g. a ``[1, K]`` demand table
#: shared by all rows) and a ``[]`` shared lead time are replicated too.
ROW_AXIS: dict[str, int | None] = {
    "holding_cost": 0,
    "penalty_cost": 0,
    "fixed_order_cost": 0,
    "purchase_cost": 0,
    "review_period": 0,
    "review_offset": 0,
    "lead_time": 0,
    "lead_time_cdf": 0,
    "moq": 0,
    "case_pack": 0,
    "max_order": 0,
    "warehouse": 0,
    "capacity": None,
    "category": 0,
    "initial_on_hand": 0,
    "initial_pipeline": 1,
    "initial_sales_history": 1,
    "demand_trace": 1,
    "demand_cdf": 0,
    "base_demand": 0,
    "dispersion": 0,
    "weekly": 0,
    "yearly_amplitude": 0,
    "yearly_phase": 0,
    "trend": 0,
    "zero_prob": 0,
    "promo_uplift": 0,
    "promo_calendar": 1,
    "start_day_of_year": None,
    "start_day_of_week": None,
    "temperature": None,
}

#: Values of the padded rows' fields (0 where not listed): valid, cost-free, demand-free.
#: A demand CDF of ones draws 0 units; an order cap of 0 orders nothing (when caps are on).
_PAD_VALUE: dict[str, float] = {
    "review_period": 1,
    "lead_time": 1,
    "lead_time_cdf": 1.0,
    "case_pack": 1.0,
    "demand_cdf": 1.0,
    "dispersion": 1.0,
    "weekly": 1.0,
    "promo_uplift": 1.0,
}


def pad_rows(num_rows: int, num_devices: int) -> int:
    """The smallest multiple of ``num_devices`` that is ``>= num_rows``.

    Example: ``pad_rows(10, 4) == 12``, ``pad_rows(12, 4) == 12``.

    Raises:
        ValueError: if either argument is not an integer >= 1.
    """
    for name, value in (("num_rows", num_rows), ("num_devices", num_devices)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= 1")
    return -(-int(num_rows) // int(num_devices)) * int(num_devices)


def row_mask(num_rows: int, padded_rows: int) -> jax.Array:
    """``[padded_rows]`` bool: True on the ``num_rows`` real rows, False on the padding.

    Multiply per-row sums by it (or slice ``[:num_rows]``) before aggregating.
    """
    return jnp.arange(padded_rows) < num_rows


def _row_axis_of(name: str, leaf: jax.Array, axis: int | None, num_rows: int) -> int | None:
    if axis is None or leaf.ndim <= axis:
        return None
    n = leaf.shape[axis]
    if n == num_rows:
        return axis
    if n == 1:  # a table shared by every row
        return None
    raise ValueError(
        f"{name} has shape {tuple(leaf.shape)}; expected {num_rows} rows (or 1, shared) "
        f"along axis {axis}"
    )


def params_row_axes(params: SimParams) -> dict[str, int | None]:
    """Row axis of every field of ``params`` (``None`` where the field is replicated).

    The row count is ``params.holding_cost.shape[0]``.

    Raises:
        ValueError: if a field's row axis has neither that length nor 1.
    """
    num_rows = int(params.holding_cost.shape[0])
    return {
        name: _row_axis_of(name, leaf, ROW_AXIS[name], num_rows)
        for name, leaf in vars(params).items()
    }


def _append_rows(leaf: jax.Array, axis: int, extra: int, value) -> jax.Array:
    shape = list(leaf.shape)
    shape[axis] = extra
    return jnp.concatenate([leaf, jnp.full(shape, value, leaf.dtype)], axis=axis)


def _check_padded_rows(num_rows: Any, current: int) -> int:
    if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)) or (
        num_rows < current
    ):
        raise ValueError(
            f"num_rows={num_rows!r} is not allowed; expected an integer >= the current "
            f"{current} rows"
        )
    return int(num_rows)


def pad_params(
    config: SimConfig, params: SimParams, num_rows: int
) -> tuple[SimConfig, SimParams]:
    """Appends cost-free, demand-free rows so the problem has ``num_rows`` rows.

    Padded rows have zero costs, zero demand (trace 0, demand CDF of ones, base demand
    0), nothing on hand, on order or in the sales history, review every day, lead time 1
    and an order cap of 0 (binding when ``use_max_order``). Fields shared by all rows
    (a ``[1, K]`` demand table, a ``[]`` lead time) are kept as they are, so with a
    shared demand table the padded rows do draw demand; that is harmless, as rows only
    interact through capacity and the metrics drop the padded rows. With shared capacity
    (``config.use_capacity``) the padded rows form an extra warehouse (index
    ``num_warehouses``) of zero capacity, so they can neither order nor take capacity
    from a real warehouse. The real rows come first and are unchanged.

    Args:
        config: the static configuration of ``params``.
        params: traced parameters of ``config.num_rows`` rows.
        num_rows: rows after padding (e.g. ``pad_rows(config.num_rows, num_devices)``).

    Returns:
        ``(config, params)`` for ``num_rows`` rows (the inputs unchanged when no row is
        added).

    Raises:
        ValueError: if ``num_rows`` is below ``config.num_rows`` or ``params`` does not
            have ``config.num_rows`` rows.
    """
    real = config.num_rows
    num_rows = _check_padded_rows(num_rows, real)
    if int(params.holding_cost.shape[0]) != real:
        raise ValueError(
            f"params has {params.holding_cost.shape[0]} rows; expected config.num_rows={real}"
        )
    extra = num_rows - real
    if extra == 0:
        return config, params
    axes = params_row_axes(params)
    capacity_warehouse = config.num_warehouses if config.use_capacity else 0
    out = {}
    for name, leaf in vars(params).items():
        axis = axes[name]
        if name == "capacity" and config.use_capacity:
            out[name] = _append_rows(leaf, 0, 1, 0.0)
        elif axis is None:
            out[name] = leaf
        elif name == "warehouse":
            out[name] = _append_rows(leaf, axis, extra, capacity_warehouse)
        else:
            out[name] = _append_rows(leaf, axis, extra, _PAD_VALUE.get(name, 0))
    new_config = config.replace(
        num_rows=num_rows,
        num_warehouses=config.num_warehouses + (1 if config.use_capacity else 0),
    )
    return new_config, SimParams(**out)


def _pad_leading(tree: Any, num_rows: int, padded_rows: int, mode: str) -> Any:
    """Pads every array leaf whose first axis has ``num_rows`` entries to ``padded_rows``."""
    extra = padded_rows - num_rows

    def pad(leaf):
        if extra == 0 or not hasattr(leaf, "shape") or not leaf.shape:
            return leaf
        if leaf.shape[0] != num_rows:
            return leaf
        widths = [(0, extra)] + [(0, 0)] * (len(leaf.shape) - 1)
        return jnp.pad(jnp.asarray(leaf), widths, mode=mode)

    return jax.tree.map(pad, tree)


def pad_policy(policy: Policy, num_rows: int, padded_rows: int) -> Policy:
    """Pads a policy's per-row parameters (e.g. a base-stock ``[R]`` level).

    Every array leaf whose first axis has ``num_rows`` entries is treated as per-row and
    extended by repeating its last row (any value will do: the padded rows interact with
    no real row and are dropped from the metrics). Scalars and other leaves (model
    weights, ``[V]`` bin values) are left alone. A weight matrix whose first axis happens
    to equal ``num_rows`` would be padded too; give such a policy a padded row count
    that avoids the clash, or pad it yourself.
    """
    _check_padded_rows(padded_rows, num_rows)
    return _pad_leading(policy, num_rows, padded_rows, "edge")


def pad_batch(batch: Any, multiple: int) -> tuple[Any, jax.Array]:
    """Pads a batch (leading example axis ``N`` on every leaf) to a multiple of ``multiple``.

    Padded examples repeat the last one; use the returned weights in a weighted loss (for
    example ``cross_entropy_loss(..., weights=w)`` of :mod:`orpr_jax.train.pretrain`) so
    they count for nothing.

    Returns:
        ``(padded_batch, weights)`` with ``weights`` ``[N_padded]`` float32, 1 on real
        examples and 0 on padding.

    Raises:
        ValueError: if the leaves do not share one leading axis, or ``multiple < 1``.
    """
    n = _leading_size(batch)
    padded = pad_rows(n, multiple)
    weights = row_mask(n, padded).astype(jnp.float32)
    return _pad_leading(batch, n, padded, "edge"), weights


def _leading_size(tree: Any) -> int:
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"every leaf of a batch needs the same leading (example) axis; got sizes {sizes}"
        )
    return sizes.pop()
