"""Order-quantity labels from a sample-average-approximation (SAA) ordering LP.

A second OR model beside the inventory-days labeller (:mod:`orpr_jax.labels.labeller`):
for the ``N`` rows of one warehouse (padded with inactive rows to a fixed ``N``, so one
canonicalised problem serves every warehouse and date) it plans orders over the next
``H`` days against ``S`` demand scenarios. The first day's order of each row is the label;
the other days are the plan.

Per problem, with rows ``i < N``, days ``t < H`` (``t = 0`` is today) and scenarios
``s < S``:

.. math::

    \\min_{q, a, I, l}\\; \\frac{1}{S} \\sum_{s,i,t} \\left(h_i I_{sit} + p_i l_{sit}\\right)
        + \\sum_{i,t} c_i q_{it}

    \\text{s.t.}\\quad I_{sit} = I_{si,t-1} + b_{it} + a_{it} - d_{sit} + l_{sit},
    \\quad I_{si,-1} = 0,

    a_{it} = q_{i,t-L_i} \\;(0 \\text{ for } t < L_i),\\quad
    0 \\le q_{it} \\le u_{it},\\quad \\sum_i q_{it} \\le \\mathrm{cap}_t,\\quad I, l \\ge 0,

with the simulator's day conventions (:mod:`orpr_jax.sim.dynamics`): the state at the
start of a day is post-arrival, so ``b[i, 0]`` is today's on-hand stock (plus
``arrivals[i, 0]``, normally 0) and ``b[i, t]`` for ``t >= 1`` the pipeline units due on
day ``t``; an order placed on day ``t`` is sold from day ``t + L_i`` on (orders arriving
at or after ``H`` are dropped, so the LP places none); ``I`` is end-of-day stock and ``l``
lost units. ``u[i, t] = review_mask[i, t] * 1[t + L_i < H] * min(max_order_i,
max_s sum_t d[s, i, t])``: the mask forces orders to 0 on non-review days and on days whose
orders would arrive after the horizon, and the demand bound (never binding at an optimum,
as no order can sell more than the whole horizon's demand) keeps the LP bounded and well
scaled. Case packs and MOQs are relaxed (continuous ``q``); fixed order costs are
not modelled.

The lost-sales linearisation is exact for costs: for any fixed plan ``q`` with ``h >= 0``
and ``p > 0`` the cheapest ``(I, l)`` is the lost-sales recursion (losing a unit more
than necessary costs ``p`` and can save at most ``p`` later), so the LP value is the SAA
cost of its own plan replayed through the simulator (:func:`plan_costs`).

DPP encoding. Every number is a ``cvxpy.Parameter``; the per-row lead time enters as a
one-hot parameter ``lead[i, k-1] = 1[L_i = k]`` and ``a = sum_k lead[:, k-1] * (q Z_k)``
with constant shift matrices ``Z_k`` (a parameter times an affine expression, which is
DPP); lost units are eliminated through the stock balance (see :func:`_formulate`).
:class:`OrderLP` builds the problem once per ``(N, H, S, max_lead_time)``, checks
``is_dpp()`` and wraps it in a ``cvxpylayers.jax.CvxpyLayer``; :meth:`OrderLP.solve_batch`
solves a whole batch (dates x warehouses) in one layer call with Clarabel through diffcp
(outside ``jit``: the diffcp path is not jittable). Quantities are scaled per problem by
their largest value and costs by the largest cost before the layer call, so one layer
serves any units. :meth:`OrderLP.solve_one_fresh` builds and solves a new plain cvxpy
problem with constants (the check and the loop baseline).

Solver failures. diffcp's Clarabel path does not raise on a failed solve, so every
solution is checked on the host: finite, and orders, end stock and the lost units implied
by the stock balance non-negative, within the order bounds and the capacity, up to
:data:`FEAS_TOL` of the problem's quantity scale (primal feasibility; optimality is the
solver's). Failed problems are re-solved with a fallback method (SCS by default); those
still failing are reported with :data:`STATUS_FAILED` (orders 0, objective NaN) and the
rest of the batch is unaffected.

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory replenishment, arXiv 2512.19001
    (OR labels for pretraining).
    Shapiro, A., Dentcheva, D. and Ruszczynski, A. "Lectures on Stochastic Programming",
    SIAM, 2009 (sample average approximation).
    Agrawal, A. et al. "Differentiable convex optimization layers." NeurIPS 2019
    (disciplined parametrized programming, cvxpylayers).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sps
from flax import struct
from jaxtyping import Bool, Float, Int

from orpr_jax._validation import as_float_array
from orpr_jax.sim.dynamics import is_review_day, lead_time_moments, observe
from orpr_jax.sim.types import SimConfig, SimParams, SimState

__all__ = [
    "DEFAULT_FALLBACK_SOLVER_ARGS",
    "DEFAULT_SOLVER_ARGS",
    "FEAS_TOL",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_RETRIED",
    "OrderLP",
    "OrderLPInputs",
    "OrderLPSolution",
    "benchmark_order_lp",
    "lp_inputs_from_state",
    "make_order_lp",
    "order_lp_inputs",
    "plan_costs",
    "random_inputs",
    "stack_inputs",
]

STATUS_OK = 0
"""Solved by the primary method."""
STATUS_RETRIED = 1
"""The primary method failed; solved by the fallback method."""
STATUS_FAILED = 2
"""Every method failed; orders are 0 and the objective is NaN."""

FEAS_TOL = 1e-6
"""Largest constraint violation accepted, as a fraction of the problem's quantity scale
(its largest stock, arrival or demand value)."""

DEFAULT_SOLVER_ARGS: dict[str, Any] = {"solve_method": "Clarabel"}
"""diffcp arguments of the primary layer solve (other keys are Clarabel settings)."""

DEFAULT_FALLBACK_SOLVER_ARGS: dict[str, Any] = {
    "solve_method": "SCS", "eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200_000,
}
"""diffcp arguments of the retry of failed problems (other keys are SCS settings)."""


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


@struct.dataclass
class OrderLPInputs:
    """Data of one ordering LP, or of a batch of ``B`` (a leading axis on every leaf).

    NumPy leaves (host data). Build one with :func:`order_lp_inputs` or
    :func:`lp_inputs_from_state`, a batch with :func:`stack_inputs` or
    :func:`random_inputs`. Shapes below are for one problem.

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

    :meth:`OrderLP.solve_one_fresh` returns the same fields without the batch axis.

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


# --------------------------------------------------------------------------------------
# Host arrays of a batch (derived bounds, scales)
# --------------------------------------------------------------------------------------


class _Host(NamedTuple):
    """Float64 arrays of a validated batch in original units, padding rows neutralised."""

    supply: np.ndarray  # [B, N, H] on hand (day 0) + arrivals
    demand: np.ndarray  # [B, S, N, H]
    lead: np.ndarray  # [B, N] int64 in [1, H]
    upper: np.ndarray  # [B, N, H] order bound (0 off review days / inactive rows)
    cap: np.ndarray  # [B, H] finite capacity
    h: np.ndarray  # [B, N]
    p: np.ndarray  # [B, N] > 0
    c: np.ndarray  # [B, N]
    active: np.ndarray  # [B, N] bool
    qscale: np.ndarray  # [B] > 0, largest supply or demand
    cscale: np.ndarray  # [B] > 0, largest cost of an active row


def _host(inputs: OrderLPInputs) -> _Host:
    x = _validated(inputs)
    if not x.batched:
        x = jax.tree.map(lambda a: a[None], x)
    act = x.active
    a3 = act[..., None]
    supply = np.where(a3, x.arrivals, 0.0)
    supply[..., 0] += np.where(act, x.on_hand, 0.0)
    demand = np.where(act[:, None, :, None], x.demand, 0.0)
    horizon_demand = demand.sum(axis=-1).max(axis=1)  # [B, N]
    # An order arriving at or after day H is dropped: fix it to 0 (else free when c = 0).
    arrives = np.arange(x.demand.shape[-1]) + x.lead_time[..., None] < x.demand.shape[-1]
    upper = np.where(a3 & arrives, x.review_mask, 0.0) * np.minimum(
        np.where(act, x.max_order, 0.0), horizon_demand)[..., None]
    cap = np.minimum(x.capacity, upper.sum(axis=1))
    qscale = np.maximum(supply.max(axis=(1, 2)), demand.max(axis=(1, 2, 3)))
    qscale = np.where(qscale > 0, qscale, 1.0)
    costs = np.where(a3, np.stack([x.holding_cost, x.penalty_cost, x.purchase_cost], -1), 0.0)
    cscale = costs.max(axis=(1, 2))
    cscale = np.where(cscale > 0, cscale, 1.0)
    # Padding rows get positive h and p (scaled 1) so their I = l = 0 is the unique optimum.
    pad_cost = np.where(act, 0.0, cscale[:, None])
    return _Host(
        supply=supply, demand=demand, lead=np.where(act, x.lead_time, 1), upper=upper,
        cap=cap, h=np.where(act, x.holding_cost, 0.0) + pad_cost,
        p=np.where(act, x.penalty_cost, 0.0) + pad_cost,
        c=np.where(act, x.purchase_cost, 0.0), active=act, qscale=qscale, cscale=cscale,
    )


def _arrivals_of(orders: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """``[..., N, H]`` arrivals of ``orders [..., N, H]`` after ``lead [..., N]`` days."""
    h = orders.shape[-1]
    t = np.arange(h)
    src = t - lead[..., None]
    idx = np.clip(src, 0, h - 1)
    return np.where(src >= 0, np.take_along_axis(orders, idx, axis=-1), 0.0)


def _lost_sales(hb: _Host, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lost-sales recursion: ``([B, S, N, H] end stock, [B, S, N, H] lost units)``."""
    avail_in = hb.supply[:, None] + _arrivals_of(orders, hb.lead)[:, None]
    stock = np.zeros(hb.demand.shape[:-1])
    ends, losts = np.zeros_like(hb.demand), np.zeros_like(hb.demand)
    for t in range(hb.demand.shape[-1]):
        avail = stock + avail_in[..., t]
        sales = np.minimum(avail, hb.demand[..., t])
        losts[..., t] = hb.demand[..., t] - sales
        stock = avail - sales
        ends[..., t] = stock
    return ends, losts


def _cost(hb: _Host, orders: np.ndarray, end: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """``[B, S]`` cost per scenario of active rows."""
    act = hb.active
    h = np.where(act, hb.h, 0.0)[:, None, :, None]
    p = np.where(act, hb.p, 0.0)[:, None, :, None]
    buy = (np.where(act, hb.c, 0.0)[..., None] * orders).sum(axis=(1, 2))
    return (h * end + p * lost).sum(axis=(2, 3)) + buy[:, None]


def plan_costs(inputs: OrderLPInputs, orders: Any) -> np.ndarray:
    """Exact SAA cost of an order plan, replayed with lost sales in every scenario.

    Orders of inactive rows are ignored; ``orders[i, t]`` arrives on day
    ``t + lead_time[i]`` if that is inside the horizon. The cost of each day is
    ``h * end-of-day stock + p * lost units + c * ordered units`` as in the simulator.

    Args:
        inputs: one problem or a batch.
        orders: ``[N, H]`` (or ``[B, N, H]``) plan, finite and >= 0.

    Returns:
        ``[S]`` (or ``[B, S]``) total cost over the horizon per scenario; the LP objective
        of an optimal plan is their mean.

    Raises:
        ValueError: invalid inputs, or orders of the wrong shape, non-finite or negative.
    """
    hb = _host(inputs)
    b, n, h, _ = inputs.shape
    q = _as_float("orders", orders)
    expected = (b, n, h) if inputs.batched else (n, h)
    _check_shape("orders", q, expected, "[B, N, H]" if inputs.batched else "[N, H]")
    _check_values("orders", q)
    q = np.where(hb.active[..., None], q.reshape(b, n, h), 0.0)
    cost = _cost(hb, q, *_lost_sales(hb, q))
    return cost if inputs.batched else cost[0]


def _violation(hb: _Host, q: np.ndarray, inv: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """``[B]`` largest constraint violation of a solution, relative to ``qscale``."""
    arr = hb.supply[:, None] + _arrivals_of(q, hb.lead)[:, None]
    prev = np.concatenate([np.zeros_like(inv[..., :1]), inv[..., :-1]], axis=-1)
    balance = np.abs(inv - prev - arr + hb.demand - lost).max(axis=(1, 2, 3))
    neg = np.maximum(0.0, -np.minimum(np.minimum(inv, lost).min(axis=(1, 2, 3)),
                                      q.min(axis=(1, 2))))
    over = np.maximum(0.0, (q - hb.upper).max(axis=(1, 2)))
    cap = np.maximum(0.0, (q.sum(axis=1) - hb.cap).max(axis=1))
    worst = np.maximum.reduce([balance, neg, over, cap])
    ok = np.isfinite(q).all(axis=(1, 2)) & np.isfinite(inv).all(axis=(1, 2, 3)) & np.isfinite(
        lost).all(axis=(1, 2, 3))
    return np.where(ok, worst / hb.qscale, np.inf)


def _finish(hb: _Host, q: np.ndarray, inv: np.ndarray, lost: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Clips a checked solution to its bounds; returns ``(orders, objective)``."""
    q = np.clip(q, 0.0, hb.upper)
    inv, lost = np.maximum(inv, 0.0), np.maximum(lost, 0.0)
    return q, _cost(hb, q, inv, lost).mean(axis=1)


# --------------------------------------------------------------------------------------
# The cvxpy problem (DPP template and fresh constant problem)
# --------------------------------------------------------------------------------------


class _Template(NamedTuple):
    problem: cp.Problem
    parameters: tuple[Any, ...]  # supply, demand, lead, upper, cap, h, p, c
    q: cp.Variable  # [N, H]
    inv: cp.Variable  # [S*N, H], row s*N + i


@functools.lru_cache(maxsize=None)
def _shift(h: int, k: int) -> sps.csc_matrix:
    """``[H, H]`` constant with ``(x @ Z)[:, t] = x[:, t - k]`` (0 for ``t < k``)."""
    return sps.eye(h, h, k, format="csc")


def _formulate(n: int, h: int, s: int, k_max: int, values: dict[str, np.ndarray] | None
               ) -> _Template:
    """The LP with Parameters (``values=None``) or with NumPy constants.

    Lost units are eliminated (a third fewer variables, ~1.4x faster Clarabel solves):
    ``l = net - b + d`` with ``net = I_t - I_{t-1} - a_t``, so ``l >= 0`` reads
    ``net >= b - d`` and ``p l`` enters the objective as ``p net`` (the constant
    ``p (d - b)``, a parameter product that DPP forbids, is left out: it does not move the
    argmin, and the objective is recomputed on the host).
    """
    if values is None:
        data: dict[str, Any] = {
            "supply": cp.Parameter((n, h), name="supply"),
            "demand": cp.Parameter((s * n, h), nonneg=True, name="demand"),
            "lead": cp.Parameter((n, k_max), nonneg=True, name="lead_one_hot"),
            "upper": cp.Parameter((n, h), nonneg=True, name="upper"),
            "cap": cp.Parameter(h, nonneg=True, name="capacity"),
            "h": cp.Parameter(n, nonneg=True, name="holding_cost"),
            "p": cp.Parameter(n, nonneg=True, name="penalty_cost"),
            "c": cp.Parameter(n, nonneg=True, name="purchase_cost"),
        }
    else:
        data = values
    q = cp.Variable((n, h), nonneg=True, name="orders")
    arr = cp.Variable((n, h), name="arrivals")
    inv = cp.Variable((s * n, h), nonneg=True, name="end_stock")
    lead = data["lead"]
    # Lags >= H arrive after the horizon: no term (their one-hot column is inert).
    # (With H = 1 the one lag-1 term is identically 0; it keeps ``lead`` in the problem.)
    terms = [cp.multiply(lead[:, k - 1:k], q @ _shift(h, k))
             for k in range(1, max(1, min(k_max, h - 1)) + 1)]
    arr_def = arr == functools.reduce(lambda x, y: x + y, terms)
    supply = data["supply"]
    if s > 1:
        arr_rep = cp.vstack([arr] * s)
        supply_rep = np.tile(supply, (s, 1)) if values is not None else cp.vstack([supply] * s)
    else:
        arr_rep, supply_rep = arr, supply
    net = inv - inv @ _shift(h, 1) - arr_rep  # = b - d + l, per scenario
    constraints = [
        arr_def,
        net >= supply_rep - data["demand"],  # l >= 0
        q <= data["upper"],
        cp.sum(q, axis=0) <= data["cap"],
    ]
    mean_rows = sps.hstack([sps.eye(n)] * s, format="csr") / s  # [N, S*N] scenario mean
    objective = (
        data["h"] @ (mean_rows @ cp.sum(inv, axis=1))
        + data["p"] @ (mean_rows @ cp.sum(net, axis=1))
        + data["c"] @ cp.sum(q, axis=1)
    )
    problem = cp.Problem(cp.Minimize(objective), constraints)
    params = tuple(data[k] for k in ("supply", "demand", "lead", "upper", "cap", "h", "p", "c"))
    return _Template(problem, params, q, inv)


def _lost_of(hb: _Host, q: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """``[B, S, N, H]`` lost units implied by a solution: ``I_t - I_{t-1} - b - a + d``."""
    prev = np.concatenate([np.zeros_like(inv[..., :1]), inv[..., :-1]], axis=-1)
    return inv - prev - hb.supply[:, None] - _arrivals_of(q, hb.lead)[:, None] + hb.demand


def _values(hb: _Host, idx: np.ndarray, k_max: int, scaled: bool) -> tuple[np.ndarray, ...]:
    """Parameter values ``(supply, demand, lead, upper, cap, h, p, c)`` of problems ``idx``."""
    qs = hb.qscale[idx] if scaled else np.ones(len(idx))
    cs = hb.cscale[idx] if scaled else np.ones(len(idx))
    b = len(idx)
    _, s, n, h = hb.demand.shape
    lead = np.zeros((b, n, k_max))
    np.put_along_axis(lead, hb.lead[idx][..., None] - 1, 1.0, axis=-1)
    return (
        hb.supply[idx] / qs[:, None, None],
        hb.demand[idx].reshape(b, s * n, h) / qs[:, None, None],
        lead,
        hb.upper[idx] / qs[:, None, None],
        hb.cap[idx] / qs[:, None],
        hb.h[idx] / cs[:, None],
        hb.p[idx] / cs[:, None],
        hb.c[idx] / cs[:, None],
    )


# --------------------------------------------------------------------------------------
# The LP object
# --------------------------------------------------------------------------------------


class OrderLP:
    """The SAA ordering LP of one shape, canonicalised once into a ``CvxpyLayer``.

    Build it with :func:`make_order_lp` (cached per shape). The problem and its DPP check
    happen in the constructor; the layer (cvxpy canonicalisation into parametrised conic
    data) is built on first use and kept.

    Attributes:
        num_rows: N, rows per problem (real rows plus inactive padding).
        horizon: H, days planned.
        scenarios: S, demand scenarios.
        max_lead_time: K, the largest lead time the layer encodes (``<= H``).
        problem: the DPP ``cvxpy.Problem``.
        parameters: its Parameters in layer order (supply, demand, lead one-hot, order
            bound, capacity, holding, penalty, purchase cost).
    """

    def __init__(self, num_rows: int, horizon: int, scenarios: int,
                 max_lead_time: int | None = None) -> None:
        """Builds the DPP problem.

        Args:
            num_rows: N >= 1.
            horizon: H >= 1.
            scenarios: S >= 1.
            max_lead_time: K in ``[1, H]``; default H. Smaller K is a smaller problem.

        Raises:
            ValueError: a size < 1 or K outside ``[1, H]``.
            RuntimeError: the problem is not DPP (a bug).
        """
        self.num_rows = _check_size("num_rows", num_rows)
        self.horizon = _check_size("horizon", horizon)
        self.scenarios = _check_size("scenarios", scenarios)
        k = self.horizon if max_lead_time is None else _check_size("max_lead_time",
                                                                  max_lead_time)
        if k > self.horizon:
            raise ValueError(
                f"max_lead_time={k} is not allowed; allowed range [1, {self.horizon}] "
                "(the horizon)"
            )
        self.max_lead_time = k
        self._template = _formulate(self.num_rows, self.horizon, self.scenarios, k, None)
        if not self._template.problem.is_dpp():
            raise RuntimeError("the order LP is not DPP; cvxpylayers cannot canonicalise it")
        self._layer = None

    @property
    def problem(self) -> cp.Problem:
        return self._template.problem

    @property
    def parameters(self) -> tuple[cp.Parameter, ...]:
        return self._template.parameters

    @property
    def layer(self):
        """The ``cvxpylayers.jax.CvxpyLayer`` (built on first access, float64)."""
        if self._layer is None:
            from cvxpylayers.jax import CvxpyLayer

            tpl = self._template
            with jax.enable_x64(True):  # float64 parametrised data, whatever the default
                self._layer = CvxpyLayer(
                    tpl.problem, parameters=list(tpl.parameters), variables=[tpl.q, tpl.inv],
                )
        return self._layer

    def _check_shape(self, inputs: OrderLPInputs, batched: bool) -> None:
        if inputs.batched != batched:
            raise ValueError(
                "solve_batch takes a batch (demand [B, S, N, H]; see stack_inputs)"
                if batched else "solve_one_fresh takes one problem (demand [S, N, H])"
            )
        _, n, h, s = inputs.shape
        if (n, h, s) != (self.num_rows, self.horizon, self.scenarios):
            raise ValueError(
                f"inputs have (N, H, S) = {(n, h, s)}; this OrderLP is "
                f"{(self.num_rows, self.horizon, self.scenarios)}"
            )

    def _check_leads(self, hb: _Host) -> None:
        longest = int(hb.lead.max(initial=1))
        if longest > self.max_lead_time:
            raise ValueError(
                f"lead_time={longest} exceeds this OrderLP's max_lead_time="
                f"{self.max_lead_time}; allowed range [1, {self.max_lead_time}]"
            )

    def _layer_solve(self, hb: _Host, idx: np.ndarray, args: dict[str, Any]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solves problems ``idx`` in one layer call; original-unit ``(q, I, l)``."""
        vals = _values(hb, idx, self.max_lead_time, scaled=True)
        b, s, n, h = len(idx), self.scenarios, self.num_rows, self.horizon
        with jax.enable_x64(True), warnings.catch_warnings():
            # diffcp warns on inaccurate solves; every solution is checked below instead.
            warnings.simplefilter("ignore")
            q, inv = self.layer(*[jnp.asarray(v, jnp.float64) for v in vals],
                                solver_args=args)
            q, inv = np.asarray(q, np.float64), np.asarray(inv, np.float64)
        qs = hb.qscale[idx]
        q = q * qs[:, None, None]
        inv = inv.reshape(b, s, n, h) * qs[:, None, None, None]
        return q, inv, _lost_of(_take(hb, idx), q, inv)

    def _attempt(self, hb: _Host, idx: np.ndarray, args: dict[str, Any],
                 q_out: np.ndarray, obj_out: np.ndarray) -> np.ndarray:
        """Solves ``idx`` (one call, or one by one if the call raises); ``[len]`` ok mask."""
        ok = np.zeros(len(idx), bool)
        _ = self.layer  # built outside the try: a set-up error is a bug, not a failed solve
        try:
            parts = [(np.arange(len(idx)), self._layer_solve(hb, idx, args))]
        except Exception:  # noqa: BLE001 - a raising solver fails the call, not the batch
            parts = []
            for j in range(len(idx)):
                try:
                    parts.append((np.array([j]), self._layer_solve(hb, idx[j:j + 1], args)))
                except Exception:  # noqa: BLE001 - reported as failed below
                    continue
        for pos, (q, inv, lost) in parts:
            sub = _take(hb, idx[pos])
            good = _violation(sub, q, inv, lost) <= FEAS_TOL
            orders, obj = _finish(sub, q, inv, lost)
            q_out[idx[pos[good]]] = orders[good]
            obj_out[idx[pos[good]]] = obj[good]
            ok[pos[good]] = True
        return ok

    def solve_batch(
        self,
        inputs: OrderLPInputs,
        *,
        solver_args: dict[str, Any] | None = None,
        fallback_solver_args: dict[str, Any] | None = None,
        n_jobs: int = -1,
        batch_size: int | None = None,
    ) -> OrderLPSolution:
        """Solves a batch of problems with one ``CvxpyLayer`` call (per ``batch_size``).

        Host function (not jittable: the diffcp / Clarabel path runs in Python threads).
        Each problem is checked; failed ones are re-solved with ``fallback_solver_args``
        (one call for all of them, one by one if that call raises) and the rest reported
        with :data:`STATUS_FAILED`; no exception is raised for a solver failure.

        Args:
            inputs: a batch (leading axis B) of this LP's shape.
            solver_args: diffcp arguments merged over :data:`DEFAULT_SOLVER_ARGS`
                (``solve_method`` and solver settings, e.g. ``{"max_iter": 50}``).
            fallback_solver_args: diffcp arguments of the retry (replacing
                :data:`DEFAULT_FALLBACK_SOLVER_ARGS` when given).
            n_jobs: diffcp worker threads (``-1``: one per CPU).
            batch_size: problems per layer call; ``None`` solves all in one call.

        Returns:
            An :class:`OrderLPSolution` with ``orders [B, N, H]``, ``objective [B]`` and
            ``status [B]``; ``solution.label`` is today's ``[B, N]`` orders.

        Raises:
            ValueError: invalid inputs, a shape other than this LP's, a lead time above
                ``max_lead_time`` or ``batch_size < 1``.
        """
        self._check_shape(inputs, batched=True)
        hb = _host(inputs)
        self._check_leads(hb)
        b = inputs.shape[0]
        step = b if batch_size is None else _check_size("batch_size", batch_size)
        primary = {**DEFAULT_SOLVER_ARGS, "n_jobs_forward": n_jobs, **(solver_args or {})}
        fallback = {"n_jobs_forward": n_jobs,
                    **(DEFAULT_FALLBACK_SOLVER_ARGS if fallback_solver_args is None
                       else fallback_solver_args)}
        q = np.zeros((b, self.num_rows, self.horizon))
        obj = np.full(b, np.nan)
        status = np.full(b, STATUS_FAILED, np.int32)
        for start in range(0, b, step):
            idx = np.arange(start, min(start + step, b))
            ok = self._attempt(hb, idx, primary, q, obj)
            status[idx[ok]] = STATUS_OK
            if not ok.all():
                retry = idx[~ok]
                ok2 = self._attempt(hb, retry, fallback, q, obj)
                status[retry[ok2]] = STATUS_RETRIED
        return OrderLPSolution(orders=q, objective=obj, status=status, solver="cvxpylayers")

    def solve_one_fresh(
        self,
        inputs: OrderLPInputs,
        *,
        solver: str = cp.CLARABEL,
        fallback_solver: str | None = cp.SCS,
    ) -> OrderLPSolution:
        """Builds and solves a new plain cvxpy problem (constants, no DPP) for one problem.

        The check of :meth:`solve_batch` and its loop baseline: the same LP in original
        units, canonicalised from scratch. Failure handling as in :meth:`solve_batch`.

        Args:
            inputs: one problem (unbatched) of this LP's shape.
            solver: cvxpy solver name of the first try.
            fallback_solver: cvxpy solver of the retry (``None``: no retry).

        Returns:
            An :class:`OrderLPSolution` without the batch axis: ``orders [N, H]``,
            ``objective []``, ``status []``.

        Raises:
            ValueError: invalid inputs or a shape other than this LP's.
        """
        self._check_shape(inputs, batched=False)
        hb = _host(inputs)
        self._check_leads(hb)
        idx = np.zeros(1, np.int64)
        names = ("supply", "demand", "lead", "upper", "cap", "h", "p", "c")
        vals = {k: v[0] for k, v in zip(names, _values(hb, idx, self.max_lead_time, False))}
        q_out = np.zeros((self.num_rows, self.horizon))
        tries = [(solver, STATUS_OK)]
        if fallback_solver is not None:
            tries.append((fallback_solver, STATUS_RETRIED))
        for name, code in tries:
            tpl = _formulate(self.num_rows, self.horizon, self.scenarios,
                             self.max_lead_time, vals)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # checked below instead
                    kwargs = {"eps": 1e-7, "max_iters": 200_000} if name == cp.SCS else {}
                    tpl.problem.solve(solver=name, **kwargs)
            except Exception:  # noqa: BLE001 - a solver error is a failed try
                continue
            if tpl.q.value is None:
                continue
            s, n, h = self.scenarios, self.num_rows, self.horizon
            q = np.asarray(tpl.q.value, np.float64)[None]
            inv = np.asarray(tpl.inv.value, np.float64).reshape(1, s, n, h)
            lost = _lost_of(hb, q, inv)
            if _violation(hb, q, inv, lost)[0] <= FEAS_TOL:
                orders, obj = _finish(hb, q, inv, lost)
                return OrderLPSolution(orders=orders[0], objective=obj[0],
                                       status=np.int32(code), solver=f"fresh-{name}")
        return OrderLPSolution(orders=q_out, objective=np.float64(np.nan),
                               status=np.int32(STATUS_FAILED), solver=f"fresh-{solver}")


def _take(hb: _Host, idx: np.ndarray) -> _Host:
    return _Host(*(a[idx] for a in hb))


@functools.lru_cache(maxsize=32)
def make_order_lp(num_rows: int, horizon: int, scenarios: int,
                  max_lead_time: int | None = None) -> OrderLP:
    """The :class:`OrderLP` of one shape, built once and cached (layer included).

    Args:
        num_rows: N >= 1, rows per problem (pad warehouses to one N).
        horizon: H >= 1, days planned.
        scenarios: S >= 1, demand scenarios.
        max_lead_time: K in ``[1, H]``, largest lead time encoded; default H.

    Returns:
        The cached LP.

    Raises:
        ValueError: a size < 1 or K outside ``[1, H]``.
    """
    return OrderLP(num_rows, horizon, scenarios, max_lead_time)


# --------------------------------------------------------------------------------------
# Instances and benchmark
# --------------------------------------------------------------------------------------


def random_inputs(
    seed: int,
    B: int,  # noqa: N803 - shape letters as in the docstrings
    N: int,  # noqa: N803
    H: int,  # noqa: N803
    S: int,  # noqa: N803
    *,
    max_lead: int = 4,
    review: bool = True,
    capacity_frac: float | None = None,
    active_frac: float = 1.0,
    integer: bool = False,
) -> OrderLPInputs:
    """Random realistic instances (gamma demand around lognormal means, pipeline stock).

    Args:
        seed: NumPy seed.
        B: problems.
        N: rows per problem.
        H: horizon (days).
        S: scenarios.
        max_lead: lead times are drawn in ``[1, min(max_lead, H)]``.
        review: draw review periods in 1..3 with random offsets (else daily review).
        capacity_frac: daily capacity as this fraction of the mean total daily demand
            (``None``: no capacity).
        active_frac: fraction of rows (the first ones) that are active; >= 1 stays active.
        integer: round demand, stock and arrivals to whole units.

    Returns:
        A validated batch.

    Raises:
        ValueError: a size < 1, ``max_lead < 1``, ``capacity_frac < 0`` or
            ``active_frac`` outside ``(0, 1]``.
    """
    for name, v in (("B", B), ("N", N), ("H", H), ("S", S), ("max_lead", max_lead)):
        _check_size(name, v)
    if capacity_frac is not None and not capacity_frac >= 0:
        raise ValueError(f"capacity_frac={capacity_frac!r} is not allowed; allowed [0, inf)")
    if not 0.0 < active_frac <= 1.0:
        raise ValueError(f"active_frac={active_frac!r} is not allowed; allowed (0, 1]")
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(np.log(5.0), 0.8, (B, 1, N, 1))
    demand = rng.gamma(2.0, mu / 2.0, (B, S, N, H))
    lead = rng.integers(1, min(max_lead, H) + 1, (B, N))
    on_hand = rng.uniform(0, 3, (B, N)) * mu[:, 0, :, 0]
    arrivals = np.where(rng.random((B, N, H)) < 0.2, rng.uniform(0, 4, (B, N, H)), 0.0)
    arrivals *= mu[:, 0]
    arrivals[..., 0] = 0.0
    arrivals[np.arange(H)[None, None] > lead[..., None]] = 0.0  # pipeline within a lead time
    if integer:
        demand, on_hand, arrivals = np.round(demand), np.round(on_hand), np.round(arrivals)
    if review:
        period = rng.integers(1, 4, (B, N, 1))
        offset = rng.integers(0, 3, (B, N, 1)) % period
        mask = ((np.arange(H) - offset) % period == 0).astype(np.float64)
    else:
        mask = np.ones((B, N, H))
    h = rng.uniform(0.2, 1.0, (B, N))
    p = h * rng.uniform(2.0, 20.0, (B, N))
    c = rng.uniform(0.0, 2.0, (B, N))
    if capacity_frac is None:
        cap = np.full((B, H), math.inf)
    else:
        cap = np.repeat(capacity_frac * mu.sum(axis=(1, 2, 3))[:, None], H, axis=1)
    n_act = max(1, int(round(active_frac * N)))
    active = np.broadcast_to(np.arange(N) < n_act, (B, N)).copy()
    problems = [
        order_lp_inputs(
            on_hand=on_hand[i], demand=demand[i], lead_time=lead[i], holding_cost=h[i],
            penalty_cost=p[i], purchase_cost=c[i], arrivals=arrivals[i],
            review_mask=mask[i], capacity=cap[i], active=active[i],
        )
        for i in range(B)
    ]
    return stack_inputs(problems)


def benchmark_order_lp(B: int, N: int, H: int, S: int, seed: int = 0,  # noqa: N803
                       *, n_fresh: int | None = None, n_jobs: int = -1,
                       repeats: int = 2) -> dict[str, Any]:
    """Solves per second of the batched layer against a loop of fresh cvxpy solves.

    Host timings (``time.perf_counter``). Set-up is timed apart: ``canonicalise_s`` builds
    the layer (cvxpy canonicalisation of the DPP problem, once per shape) and
    ``first_call_s`` is the first batched call (it also compiles the JAX parameter maps for
    this batch size). The batched rate is the best of ``repeats`` further calls; the fresh
    loop (after one warm-up solve) builds, canonicalises and solves a new cvxpy problem per
    instance. Both use Clarabel.

    Args:
        B: problems in the batch.
        N: rows per problem.
        H: horizon.
        S: scenarios.
        seed: instance seed (:func:`random_inputs`: review days, no capacity).
        n_fresh: fresh solves timed (the first ``n_fresh`` problems); default ``min(B, 16)``.
        n_jobs: diffcp worker threads of the layer (``-1``: one per CPU).
        repeats: timed batched calls (>= 1).

    Returns:
        A dict with ``batched_solves_per_s``, ``fresh_solves_per_s``, ``speedup``,
        ``canonicalise_s``, ``first_call_s``, ``max_rel_objective_diff`` (batched vs
        fresh on the fresh subset), ``statuses`` (counts of OK / retried / failed) and the
        sizes, CPU count and versions.
    """
    import os

    import cvxpylayers
    import diffcp

    inputs = random_inputs(seed, B, N, H, S)
    n_fresh = min(B, 16) if n_fresh is None else max(1, min(int(n_fresh), B))
    lp = OrderLP(N, H, S)  # uncached, so its set-up is measured
    t0 = time.perf_counter()
    _ = lp.layer
    canon = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp.solve_batch(inputs, n_jobs=n_jobs)
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        sol = lp.solve_batch(inputs, n_jobs=n_jobs)
        best = min(best, time.perf_counter() - t0)
    batched = B / best

    problems = [jax.tree.map(lambda a, i=i: a[i], inputs) for i in range(n_fresh)]
    lp.solve_one_fresh(problems[0])
    t0 = time.perf_counter()
    fresh = [lp.solve_one_fresh(one) for one in problems]
    fresh_rate = n_fresh / (time.perf_counter() - t0)
    f_obj = np.array([f.objective for f in fresh])
    rel = np.abs(sol.objective[:n_fresh] - f_obj) / np.maximum(1.0, np.abs(f_obj))
    return {
        "B": B, "N": N, "H": H, "S": S, "seed": seed, "n_fresh": n_fresh, "n_jobs": n_jobs,
        "batched_solves_per_s": batched,
        "fresh_solves_per_s": fresh_rate,
        "speedup": batched / fresh_rate,
        "canonicalise_s": canon,
        "first_call_s": first,
        "max_rel_objective_diff": float(np.nanmax(rel)),
        "statuses": np.bincount(sol.status, minlength=3).tolist(),
        "cpu_count": os.cpu_count(),
        "device": "host (cvxpylayers diffcp path, Clarabel)",
        "versions": {"cvxpy": cp.__version__, "cvxpylayers": cvxpylayers.__version__,
                     "diffcp": getattr(diffcp, "__version__", "?"), "jax": jax.__version__},
    }


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    import json
    import sys

    sizes = [int(a) for a in sys.argv[1:5]] or [64, 8, 21, 4]
    print(json.dumps(benchmark_order_lp(*sizes), indent=2))
