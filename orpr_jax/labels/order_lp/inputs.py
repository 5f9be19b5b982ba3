"""Data of the SAA ordering LP: containers, validation and construction (host).

:class:`OrderLPInputs` holds one problem or a batch (NumPy leaves) and
:class:`OrderLPSolution` the solutions; :func:`order_lp_inputs` validates one problem,
:func:`stack_inputs` stacks problems of one shape into a batch and
:func:`lp_inputs_from_state` reads one warehouse's problem off a simulator state. The
model and its day conventions are described in :mod:`orpr_jax.labels.order_lp.formulation`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Bool, Float, Int

from orpr_jax._validation import as_float_array
from orpr_jax.sim.dynamics import is_review_day, lead_time_moments, observe
from orpr_jax.sim.types import SimConfig, SimParams, SimState

__all__ = [
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_RETRIED",
    "OrderLPInputs",
    "OrderLPSolution",
    "lp_inputs_from_state",
    "order_lp_inputs",
    "stack_inputs",
]

STATUS_OK = 0
"""Solved by the primary method."""
STATUS_RETRIED = 1
"""The primary method failed; solved by the fallback method."""
STATUS_FAILED = 2
"""Every method failed; orders are 0 and the objective is NaN."""


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


@struct.dataclass
class OrderLPInputs:
    """Data of one ordering LP, or of a batch of ``B`` (a leading axis on every leaf).

    NumPy leaves (host data). Build one with :func:`order_lp_inputs` or
    :func:`lp_inputs_from_state`, a batch with :func:`stack_inputs` (random test
    instances: ``benchmarks/order_lp_instances.py``). Shapes below are for one problem.

    Attributes:
        on_hand: ``[N]`` units on hand at the start of day 0, after day 0's arrivals.
        arrivals: ``[N, H]`` units of earlier orders arriving at the start of day t (column
            0 is added to ``on_hand``; it is normally 0 as ``on_hand`` is post-arrival).
        demand: ``[S, N, H]`` demand scenarios (units per day), equally likely.
        lead_time: ``[N]`` int, fixed lead time (days) of orders placed in the horizon.
        review_mask: ``[N, H]`` 1.0 where the row may order on day t, else 0.0.
        holding_cost: ``[N]`` h per unit of end-of-day stock per day.
        penalty_cost: ``[N]`` p per lost unit (> 0 for active rows).
        purchase_cost: ``[N]`` c per unit ordered.
        capacity: ``[H]`` the warehouse's inbound units per day (``inf``: none).
        max_order: ``[N]`` largest order per day (``inf``: none).
        active: ``[N]`` bool; inactive (padding) rows are ignored and never order.
    """

    on_hand: Float[np.ndarray, "*B N"]
    arrivals: Float[np.ndarray, "*B N H"]
    demand: Float[np.ndarray, "*B S N H"]
    lead_time: Int[np.ndarray, "*B N"]
    review_mask: Float[np.ndarray, "*B N H"]
    holding_cost: Float[np.ndarray, "*B N"]
    penalty_cost: Float[np.ndarray, "*B N"]
    purchase_cost: Float[np.ndarray, "*B N"]
    capacity: Float[np.ndarray, "*B H"]
    max_order: Float[np.ndarray, "*B N"]
    active: Bool[np.ndarray, "*B N"]

    @property
    def batched(self) -> bool:
        """True when the leaves carry a leading batch axis."""
        return np.ndim(self.demand) == 4

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(B, N, H, S)``; ``B = 1`` for a single problem."""
        d = np.shape(self.demand)
        b = d[0] if len(d) == 4 else 1
        s, n, h = d[-3:]
        return int(b), int(n), int(h), int(s)


@struct.dataclass
class OrderLPSolution:
    """Solutions of a batch of ordering LPs (NumPy leaves).

    :meth:`~orpr_jax.labels.order_lp.lp.OrderLP.solve_one_fresh` returns the same fields
    without the batch axis.

    Attributes:
        orders: ``[B, N, H]`` planned orders (units); ``orders[:, :, 0]`` is today's label.
            0 on inactive rows, non-review days and failed problems.
        objective: ``[B]`` the LP value (mean over scenarios of the horizon's holding,
            penalty and purchase cost); NaN for failed problems.
        status: ``[B]`` int32 :data:`STATUS_OK`, :data:`STATUS_RETRIED` or
            :data:`STATUS_FAILED`.
        solver: how it was solved (static, not a pytree leaf).
    """

    orders: Float[np.ndarray, "*B N H"]
    objective: Float[np.ndarray, "*B"]
    status: Int[np.ndarray, "*B"]
    solver: str = struct.field(pytree_node=False, default="")

    @property
    def label(self) -> np.ndarray:
        """``[B, N]`` today's order per row (the label)."""
        return self.orders[..., 0]

    @property
    def ok(self) -> np.ndarray:
        """``[B]`` bool, the problem was solved (by either method)."""
        return self.status != STATUS_FAILED


# --------------------------------------------------------------------------------------
# Validation and construction (host)
# --------------------------------------------------------------------------------------


def _check_size(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {low}")
    return int(value)


_as_float = as_float_array


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> tuple[Any, tuple[int, ...]]:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return arr[idx].item(), idx


def _check_values(name: str, arr: np.ndarray, low: float = 0.0, *, strict: bool = False,
                  allow_inf: bool = False, where: np.ndarray | None = None) -> None:
    """Raises ValueError naming ``name`` if an entry (where ``where``) is out of range."""
    sel = np.ones(arr.shape, bool) if where is None else np.broadcast_to(where, arr.shape)
    bad = sel & (np.isnan(arr) | (~np.isfinite(arr) & (not allow_inf or arr < 0)))
    if bad.any():
        v, idx = _first_bad(arr, bad)
        kind = "not NaN or -inf" if allow_inf else "finite"
        raise ValueError(f"{name} must be {kind}; got {v!r} at index {idx}")
    bad = sel & ((arr <= low) if strict else (arr < low))
    if bad.any():
        v, idx = _first_bad(arr, bad)
        rng = f"({low:g}, inf)" if strict else f"[{low:g}, inf)"
        if allow_inf:
            rng = rng[:-1] + "]"
        raise ValueError(f"{name}={v!r} at index {idx} is not allowed; allowed range {rng}")


def _check_shape(name: str, arr: np.ndarray, expected: tuple[int, ...], axes: str) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name} has shape {arr.shape}; expected {expected} ({axes})")


def _validated(inputs: OrderLPInputs) -> OrderLPInputs:
    """Checks shapes and ranges and returns float64 / int64 / bool NumPy leaves."""
    demand = _as_float("demand", inputs.demand)
    if demand.ndim not in (3, 4):
        raise ValueError(
            f"demand has shape {demand.shape}; expected [S, N, H] or [B, S, N, H]"
        )
    lead_b = demand.shape[:-3]
    s, n, h = demand.shape[-3:]
    for name, size in (("B", lead_b[0] if lead_b else 1), ("S", s), ("N", n), ("H", h)):
        if size < 1:
            raise ValueError(f"{name}={size} is not allowed; it must be an integer >= 1")
    pre = "[B, " if lead_b else "["
    fields: dict[str, np.ndarray] = {"demand": demand}
    for name, shape, axes in (
        ("on_hand", (n,), "N]"), ("arrivals", (n, h), "N, H]"),
        ("lead_time", (n,), "N]"), ("review_mask", (n, h), "N, H]"),
        ("holding_cost", (n,), "N]"), ("penalty_cost", (n,), "N]"),
        ("purchase_cost", (n,), "N]"), ("capacity", (h,), "H]"),
        ("max_order", (n,), "N]"), ("active", (n,), "N]"),
    ):
        arr = _as_float(name, getattr(inputs, name))
        _check_shape(name, arr, lead_b + shape, pre + axes)
        fields[name] = arr
    act = fields["active"]
    if not np.isin(act, (0.0, 1.0)).all():
        v, idx = _first_bad(act, ~np.isin(act, (0.0, 1.0)))
        raise ValueError(f"active must be boolean (or 0/1); got {v!r} at index {idx}")
    active = act.astype(bool)
    on_rows = active[..., None]
    on_days = active[..., None, :, None] if lead_b else active[None, :, None]
    _check_values("demand", demand, where=on_days)
    _check_values("on_hand", fields["on_hand"], where=active)
    _check_values("arrivals", fields["arrivals"], where=on_rows)
    mask = fields["review_mask"]
    bad = on_rows & ~np.isin(mask, (0.0, 1.0))
    if bad.any():
        v, idx = _first_bad(mask, bad)
        raise ValueError(f"review_mask must be 0 or 1; got {v!r} at index {idx}")
    _check_values("holding_cost", fields["holding_cost"], where=active)
    _check_values("penalty_cost", fields["penalty_cost"], strict=True, where=active)
    _check_values("purchase_cost", fields["purchase_cost"], where=active)
    _check_values("max_order", fields["max_order"], allow_inf=True, where=active)
    _check_values("capacity", fields["capacity"], allow_inf=True)
    lead = fields["lead_time"]
    bad = active & ~(np.isfinite(lead) & (lead == np.round(lead)) & (lead >= 1))
    if bad.any():
        v, idx = _first_bad(lead, bad)
        raise ValueError(
            f"lead_time={v!r} at index {idx} is not allowed; it must be an integer >= 1"
        )
    lead_int = np.where(active, lead, 1).astype(np.int64)
    longest = int(lead_int.max(initial=1))
    if longest > h:
        raise ValueError(
            f"horizon={h} is shorter than the longest lead time {longest}; use a horizon "
            f">= {longest} days"
        )
    fields["lead_time"] = lead_int
    fields["active"] = active
    return OrderLPInputs(**fields)


def order_lp_inputs(
    *,
    on_hand: Any,
    demand: Any,
    lead_time: Any,
    holding_cost: Any,
    penalty_cost: Any,
    purchase_cost: Any = 0.0,
    arrivals: Any = None,
    review_mask: Any = None,
    capacity: Any = math.inf,
    max_order: Any = math.inf,
    active: Any = None,
) -> OrderLPInputs:
    """Validates the data of one ordering LP (scalars broadcast to their field's shape).

    Args:
        on_hand: ``[N]`` post-arrival stock at the start of day 0; finite, >= 0.
        demand: ``[S, N, H]`` demand scenarios; finite, >= 0. Fixes S, N and H.
        lead_time: ``[N]`` integer lead times in ``[1, H]`` (days).
        holding_cost: ``[N]`` h >= 0.
        penalty_cost: ``[N]`` p > 0.
        purchase_cost: ``[N]`` c >= 0.
        arrivals: ``[N, H]`` pipeline units due on day t; default none.
        review_mask: ``[N, H]`` 0/1 review days; default every day.
        capacity: ``[H]`` inbound units per day for the warehouse, >= 0 (``inf``: none).
        max_order: ``[N]`` largest order per day, >= 0 (``inf``: none).
        active: ``[N]`` bool real-row mask; default all True.

    Returns:
        Validated unbatched inputs (float64, lead times int64).

    Raises:
        ValueError: naming the field and value: a wrong shape, a size < 1, a non-finite,
            negative or out-of-range value, or a horizon shorter than the longest lead time.
    """
    d = _as_float("demand", demand)
    if d.ndim != 3:
        raise ValueError(f"demand has shape {d.shape}; expected (S, N, H) ([S, N, H])")
    _, n, h = d.shape

    def full(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        arr = _as_float(name, value)
        if arr.ndim == 0:
            return np.full(shape, float(arr))
        return arr

    return _validated(OrderLPInputs(
        on_hand=full("on_hand", on_hand, (n,)),
        arrivals=full("arrivals", 0.0 if arrivals is None else arrivals, (n, h)),
        demand=d,
        lead_time=full("lead_time", lead_time, (n,)),
        review_mask=full("review_mask", 1.0 if review_mask is None else review_mask, (n, h)),
        holding_cost=full("holding_cost", holding_cost, (n,)),
        penalty_cost=full("penalty_cost", penalty_cost, (n,)),
        purchase_cost=full("purchase_cost", purchase_cost, (n,)),
        capacity=full("capacity", capacity, (h,)),
        max_order=full("max_order", max_order, (n,)),
        active=full("active", True if active is None else active, (n,)),
    ))


def stack_inputs(problems: Sequence[OrderLPInputs]) -> OrderLPInputs:
    """Stacks single problems of one shape into a batch (leading axis ``B``).

    Raises:
        ValueError: an empty sequence, a batched element or differing shapes.
    """
    if len(problems) == 0:
        raise ValueError("problems is empty; stack at least one OrderLPInputs")
    shapes = {p.shape for p in problems}
    if any(p.batched for p in problems):
        raise ValueError("stack_inputs takes unbatched OrderLPInputs ([S, N, H] demand)")
    if len(shapes) > 1:
        raise ValueError(
            f"problems have different (B, N, H, S) shapes {sorted(shapes)}; pad rows to "
            "one N and use one horizon and scenario count"
        )
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *problems)


# --------------------------------------------------------------------------------------
# From a simulator state (host)
# --------------------------------------------------------------------------------------


def _rows_array(rows: Any, num_rows_total: int) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"rows_of_warehouse must be a non-empty 1-D array of row indices; got {rows!r}"
        )
    bad = (arr < 0) | (arr >= num_rows_total)
    if bad.any():
        raise ValueError(
            f"rows_of_warehouse has row {int(arr[bad][0])}; allowed range "
            f"[0, {num_rows_total - 1}]"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"rows_of_warehouse has repeated rows: {arr.tolist()}")
    return arr.astype(np.int64)


def lp_inputs_from_state(
    config: SimConfig,
    params: SimParams,
    state: SimState,
    demand_scenarios: Any,
    rows_of_warehouse: Any,
    horizon: int,
    num_rows: int | None = None,
) -> OrderLPInputs:
    """LP data of one warehouse on day ``state.t`` (host helper, not jittable).

    On hand is ``state.on_hand`` (post-arrival); arrivals on days ``1..H-1`` come from the
    pipeline ring (``observe(...).pipeline``; units due at or after ``H`` are dropped);
    the review mask is :func:`~orpr_jax.sim.dynamics.is_review_day` on days
    ``state.t .. state.t + H - 1``; lead times are the rounded means of
    :func:`~orpr_jax.sim.dynamics.lead_time_moments` (stochastic rows included), clipped
    to ``[1, max_lead_time]``; capacity is the warehouse's (if ``use_capacity``) and
    ``max_order`` the rows' (if ``use_max_order``). Case packs, MOQs and fixed order costs
    are not modelled.

    Args:
        config: the simulator's static configuration (lost sales only).
        params: its parameters.
        state: the state at the start of the decision day (post-arrival).
        demand_scenarios: ``[S, H, R]`` demand scenarios of days ``t .. t + H - 1`` for all
            R rows (only the warehouse's rows are read).
        rows_of_warehouse: ``[n]`` int indices of the rows, all in one warehouse.
        horizon: H, days planned (>= the longest rounded lead time of the rows).
        num_rows: N, rows of the LP (>= n); rows n..N-1 are inactive padding. Default n.

    Returns:
        Unbatched :class:`OrderLPInputs` with ``N`` rows (row j is
        ``rows_of_warehouse[j]`` for ``j < n``).

    Raises:
        ValueError: backorder mode, bad row indices or rows spanning several warehouses,
            ``num_rows < n``, a scenario array of the wrong shape, a horizon < 1 or shorter
            than the longest lead time, or any invalid LP input.
    """
    if config.backorder:
        raise ValueError("backorder=True is not supported; the order LP models lost sales")
    h = _check_size("horizon", horizon)
    r = config.num_rows
    rows = _rows_array(rows_of_warehouse, r)
    n_real = rows.size
    n = n_real if num_rows is None else _check_size("num_rows", num_rows)
    if n < n_real:
        raise ValueError(
            f"num_rows={n} is smaller than the warehouse's {n_real} rows; allowed range "
            f"[{n_real}, inf)"
        )
    warehouse = np.asarray(params.warehouse)[rows]
    if np.unique(warehouse).size > 1:
        raise ValueError(
            f"rows_of_warehouse span warehouses {sorted(set(warehouse.tolist()))}; the LP "
            "shares one warehouse's inbound capacity, so pass one warehouse's rows"
        )
    scen = _as_float("demand_scenarios", demand_scenarios)
    if scen.ndim != 3 or scen.shape[1:] != (h, r):
        raise ValueError(
            f"demand_scenarios has shape {scen.shape}; expected (S, {h}, {r}) ([S, H, R])"
        )
    s = scen.shape[0]
    if s < 1:
        raise ValueError(f"S={s} is not allowed; it must be an integer >= 1")

    obs = observe(config, params, state)
    pipeline = np.asarray(obs.pipeline, np.float64)[rows]  # [n, max_lead_time]
    arrivals = np.zeros((n_real, h))
    k = min(h - 1, config.max_lead_time)
    arrivals[:, 1:k + 1] = pipeline[:, :k]
    days = jnp.asarray(state.t) + jnp.arange(h, dtype=jnp.asarray(state.t).dtype)
    review = np.broadcast_to(
        np.asarray(is_review_day(config, params, days[:, None]), np.float64), (h, r)
    ).T[rows]
    mean, _ = lead_time_moments(config, params)
    lead = np.clip(np.floor(np.asarray(mean, np.float64)[rows] + 0.5), 1,
                   config.max_lead_time).astype(np.int64)
    cap = float(np.asarray(params.capacity)[warehouse[0]]) if config.use_capacity else math.inf
    max_order = (np.asarray(params.max_order, np.float64)[rows] if config.use_max_order
                 else np.full(n_real, math.inf))

    def pad(x: np.ndarray, fill: float) -> np.ndarray:
        width = [(0, n - n_real)] + [(0, 0)] * (x.ndim - 1)
        return np.pad(x, width, constant_values=fill)

    demand = np.transpose(scen[:, :, rows], (0, 2, 1))  # [S, n, H]
    return order_lp_inputs(
        on_hand=pad(np.asarray(state.on_hand, np.float64)[rows], 0.0),
        demand=np.pad(demand, [(0, 0), (0, n - n_real), (0, 0)]),
        lead_time=pad(lead, 1),
        holding_cost=pad(np.asarray(params.holding_cost, np.float64)[rows], 1.0),
        penalty_cost=pad(np.asarray(params.penalty_cost, np.float64)[rows], 1.0),
        purchase_cost=pad(np.asarray(params.purchase_cost, np.float64)[rows], 0.0),
        arrivals=pad(arrivals, 0.0),
        review_mask=pad(review, 0.0),
        capacity=np.full(h, cap),
        max_order=pad(max_order, math.inf),
        active=pad(np.ones(n_real, bool), False),
    )
