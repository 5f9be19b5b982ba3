r"""Per-date label selection: a batch of multiple-choice knapsack problems (MCKP).

Each of ``B`` independent problems (one per decision date x warehouse) has ``G`` groups
(e.g. categories) and ``V`` candidate inventory-days values. Choosing candidate ``j`` for
group ``g`` holds ``stock[b, g, j]`` (value) and loses ``loss[b, g, j]`` (lost-sales units
or value). Per problem, pick exactly one allowed candidate per active group to

.. math::

    \min_x \sum_{g,j} \mathrm{stock}_{gj} x_{gj}
    \quad\text{s.t.}\quad \sum_{g,j} \mathrm{loss}_{gj} x_{gj} \le \mathrm{budget},
    \quad \sum_j x_{gj} = 1,\quad x_{gj} \in \{0, 1\},\quad x_{gj} = 0
    \text{ where not allowed},

with ``budget = (1 - alpha) x total sales`` computed by the caller.

This module holds the problem and result types, :func:`make_problem` (host-side
validation), the host-side float64 helpers every solver shares and the reports
(:func:`evaluate_choice`, :func:`min_loss_choice`, :func:`infeasible_report`). Three
solvers return the same :class:`Selection`:

* :func:`~orpr_jax.labels.selection.milp.solve_milp`: exact; one cvxpy MILP (HiGHS, then
  SciPy's HiGHS-MILP) per problem.
* :func:`~orpr_jax.labels.selection.batched_lp.solve_batched_lp`: the LP relaxation
  written once as a DPP cvxpy problem, wrapped in a ``cvxpylayers`` ``CvxpyLayer`` and
  solved for the whole batch in one call, then rounded and repaired in JAX.
* :func:`~orpr_jax.labels.selection.dual.solve_dual`: pure JAX (jittable, vectorised over
  ``B``): Lagrangian relaxation with a bisection on the multiplier that splits at the
  dual's breakpoints, then a single-group exchange along the Lagrangian path and greedy
  repair / improvement moves.

Infeasible problems (even the minimum-loss choice in every group exceeds the budget) are
reported with ``feasible=False`` and get the most service-preserving choice: per group the
minimum-loss allowed candidate, ties to the lowest stock. Nothing returns NaN.

Feasibility allows total loss up to ``budget (1 + FEAS_RTOL) + FEAS_ATOL x loss scale``
(the loss scale is ``max(budget, sum_g max_j loss)``), the same for every solver, so
float32 rounding does not flip a problem that meets its budget exactly.

References:
    Sinha, P. and Zoltners, A. A. "The multiple-choice knapsack problem." Operations
    Research 27(3), 1979 (LP relaxation, Lagrangian dominance).
    The ORPR paper, arXiv:2512.19001 (per-date OR labels for pretraining).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Bool, Float, Int

from orpr_jax._validation import as_float_array

FEAS_RTOL = 1e-5
"""Relative feasibility tolerance on total loss, as a fraction of the budget."""
FEAS_ATOL = 1e-7
"""Feasibility slack for float rounding, as a fraction of the loss scale
``max(budget, sum_g max_j loss)`` (keeps a zero budget meaningful)."""

STATUS_OK = 0
"""A feasible choice was found (optimal for :func:`~orpr_jax.labels.selection.milp.solve_milp`)."""
STATUS_INFEASIBLE = 1
"""No choice meets the budget; the minimum-loss fallback was returned."""
STATUS_FAILED = 2
"""Every solver failed on a feasible problem; a feasible fallback choice was returned."""


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


@struct.dataclass
class SelectionProblem:
    """A batch of ``B`` multiple-choice knapsack problems (a pytree of arrays).

    Build it with :func:`make_problem` (validates on the host); the solvers also accept an
    instance built directly (as the labeller does) and cast its dtypes.

    Attributes:
        stock: ``[B, G, V]`` float, stock (holding value) of candidate ``j`` in group ``g``;
            >= 0.
        loss: ``[B, G, V]`` float, lost sales (units or value) of that candidate; >= 0.
        budget: ``[B]`` float, largest total loss allowed, ``(1 - alpha) x total sales``;
            >= 0.
        allowed: ``[B, G, V]`` bool, candidate may be chosen (min/max v per group,
            turnover-days cap).
        active: ``[B, G]`` bool, group is real (padding groups are inactive and count
            nothing).
    """

    stock: Float[Array, "B G V"]
    loss: Float[Array, "B G V"]
    budget: Float[Array, " B"]
    allowed: Bool[Array, "B G V"]
    active: Bool[Array, "B G"]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(B, G, V)``."""
        b, g, v = self.stock.shape
        return int(b), int(g), int(v)


@struct.dataclass
class Selection:
    """Chosen candidates of a batch of selection problems.

    :func:`~orpr_jax.labels.selection.dual.solve_dual` returns ``jax.Array`` leaves; the
    host solvers (:func:`~orpr_jax.labels.selection.milp.solve_milp`,
    :func:`~orpr_jax.labels.selection.batched_lp.solve_batched_lp`) return NumPy arrays
    (float64 totals).

    Attributes:
        choice: ``[B, G]`` int32, index into ``V`` of the chosen candidate; ``-1`` for
            inactive (padding) groups.
        objective: ``[B]`` float, total stock of the choice over active groups.
        total_loss: ``[B]`` float, total loss of the choice over active groups.
        feasible: ``[B]`` bool, the problem has a choice meeting the budget (and this is
            one). False means even the minimum-loss choice exceeds the budget and
            ``choice`` is that minimum-loss fallback.
        status: ``[B]`` int32, :data:`STATUS_OK`, :data:`STATUS_INFEASIBLE` or
            :data:`STATUS_FAILED` (solver failure: a feasible fallback was returned).
        solver: name of the solver that produced it (static, not a pytree leaf).
    """

    choice: Int[Array, "B G"]
    objective: Float[Array, " B"]
    total_loss: Float[Array, " B"]
    feasible: Bool[Array, " B"]
    status: Int[Array, " B"]
    solver: str = struct.field(pytree_node=False, default="")


class DualResult(NamedTuple):
    """Single-problem output of :func:`~orpr_jax.labels.selection.dual.dual_select`.

    The leaves of one :class:`Selection` row.

    Attributes:
        choice: ``[G]`` int32 chosen index (``-1`` for inactive groups).
        objective: ``[]`` total stock.
        total_loss: ``[]`` total loss.
        feasible: ``[]`` bool.
        status: ``[]`` int32.
    """

    choice: jax.Array
    objective: jax.Array
    total_loss: jax.Array
    feasible: jax.Array
    status: jax.Array


# --------------------------------------------------------------------------------------
# Construction and validation (host)
# --------------------------------------------------------------------------------------


_as_float = as_float_array


def _as_bool(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr):
        bad = ~np.isin(arr, (0, 1))
        if not bad.any():
            return arr.astype(bool)
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be boolean (or 0/1); got value {arr[idx].item()!r} at index {idx}"
        )
    raise ValueError(f"{name} must be boolean (or 0/1); got dtype {arr.dtype}")


def _check_finite_nonneg(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite; got {int(bad.sum())} non-finite value(s), first "
            f"{arr[idx].item()!r} at index {idx}"
        )
    neg = arr < 0
    if neg.any():
        idx = tuple(int(i) for i in np.argwhere(neg)[0])
        raise ValueError(
            f"{name} must be >= 0; got {arr[idx].item()!r} at index {idx} "
            "(allowed range [0, inf))"
        )


def make_problem(
    stock: Any,
    loss: Any,
    budget: Any,
    allowed: Any = None,
    active: Any = None,
) -> SelectionProblem:
    """Validates inputs on the host and builds a :class:`SelectionProblem`.

    Float leaves are cast to JAX's default float dtype (float32 unless x64 is enabled), so
    every solver sees the same numbers.

    Args:
        stock: ``[B, G, V]`` stock (holding value) per candidate; finite, >= 0.
        loss: ``[B, G, V]`` lost sales per candidate; finite, >= 0.
        budget: ``[B]`` largest total loss per problem; finite, >= 0.
        allowed: ``[B, G, V]`` bool (or 0/1) candidate mask; default all True.
        active: ``[B, G]`` bool (or 0/1) real-group mask; default all True.

    Returns:
        The validated problem batch.

    Raises:
        ValueError: naming the field and offending value: wrong rank or shape, zero-size
            axes, non-numeric, non-finite or negative stock/loss/budget, non-boolean masks,
            or an active group with no allowed candidate ("empty group").
    """
    stock_np = _as_float("stock", stock)
    if stock_np.ndim != 3:
        raise ValueError(
            f"stock must have shape [B, G, V] (3 axes); got shape {stock_np.shape}"
        )
    b, g, v = stock_np.shape
    if min(b, g, v) < 1:
        raise ValueError(f"stock must have B, G, V >= 1; got shape {stock_np.shape}")
    loss_np = _as_float("loss", loss)
    if loss_np.shape != stock_np.shape:
        raise ValueError(
            f"loss must have the shape of stock {stock_np.shape}; got {loss_np.shape}"
        )
    budget_np = _as_float("budget", budget)
    if budget_np.shape != (b,):
        raise ValueError(f"budget must have shape ({b},) = [B]; got {budget_np.shape}")
    allowed_np = (
        np.ones(stock_np.shape, bool) if allowed is None else _as_bool("allowed", allowed)
    )
    if allowed_np.shape != stock_np.shape:
        raise ValueError(
            f"allowed must have the shape of stock {stock_np.shape}; got {allowed_np.shape}"
        )
    active_np = np.ones((b, g), bool) if active is None else _as_bool("active", active)
    if active_np.shape != (b, g):
        raise ValueError(f"active must have shape ({b}, {g}) = [B, G]; got {active_np.shape}")
    _check_finite_nonneg("stock", stock_np)
    _check_finite_nonneg("loss", loss_np)
    _check_finite_nonneg("budget", budget_np)
    empty = active_np & ~allowed_np.any(axis=-1)
    if empty.any():
        bi, gi = (int(i) for i in np.argwhere(empty)[0])
        raise ValueError(
            f"empty group: active group (b={bi}, g={gi}) has no allowed choice; "
            f"allowed[{bi}, {gi}, :] must contain at least one True "
            f"({int(empty.sum())} such group(s))"
        )
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    return SelectionProblem(
        stock=jnp.asarray(stock_np, dtype),
        loss=jnp.asarray(loss_np, dtype),
        budget=jnp.asarray(budget_np, dtype),
        allowed=jnp.asarray(allowed_np),
        active=jnp.asarray(active_np),
    )


class _HostProblem(NamedTuple):
    stock: np.ndarray  # [B, G, V] float64, zero where not valid
    loss: np.ndarray  # [B, G, V] float64, zero where not valid
    budget: np.ndarray  # [B] float64
    valid: np.ndarray  # [B, G, V] bool, allowed & active
    active: np.ndarray  # [B, G] bool
    loss_scale: np.ndarray  # [B] float64, > 0
    stock_scale: np.ndarray  # [B] float64, > 0


def _tolerance(budget, loss_scale):
    """Allowed excess of total loss over ``budget`` (host or traced)."""
    return FEAS_RTOL * budget + FEAS_ATOL * loss_scale


def _host(problem: SelectionProblem) -> _HostProblem:
    active = np.asarray(problem.active).astype(bool)
    valid = np.asarray(problem.allowed).astype(bool) & active[..., None]
    stock = np.where(valid, np.asarray(problem.stock, np.float64), 0.0)
    loss = np.where(valid, np.asarray(problem.loss, np.float64), 0.0)
    budget = np.asarray(problem.budget, np.float64)
    loss_scale = np.maximum(budget, loss.max(axis=-1).sum(axis=-1))
    loss_scale = np.where(loss_scale > 0, loss_scale, 1.0)
    stock_scale = stock.max(axis=(-1, -2))
    stock_scale = np.where(stock_scale > 0, stock_scale, 1.0)
    return _HostProblem(stock, loss, budget, valid, active, loss_scale, stock_scale)


def _lex_argmin_np(primary: np.ndarray, secondary: np.ndarray, valid: np.ndarray) -> np.ndarray:
    p = np.where(valid, primary, np.inf)
    tie = valid & (p <= p.min(axis=-1, keepdims=True))
    return np.argmin(np.where(tie, secondary, np.inf), axis=-1).astype(np.int32)


def _host_min_loss(hp: _HostProblem) -> np.ndarray:
    """``[B, G]`` minimum-loss allowed candidate, ties to the lowest stock (0 if inactive)."""
    valid = np.where(hp.active[..., None], hp.valid, np.arange(hp.valid.shape[-1]) == 0)
    return _lex_argmin_np(hp.loss, hp.stock, valid)


def min_loss_choice(problem: SelectionProblem) -> np.ndarray:
    """The infeasible-budget fallback: per group the minimum-loss allowed candidate.

    Args:
        problem: the batch.

    Returns:
        ``[B, G]`` int32 indices into ``V`` (ties to the lowest stock; ``-1`` for inactive
        groups).
    """
    hp = _host(problem)
    return np.where(hp.active, _host_min_loss(hp), -1).astype(np.int32)


def _host_totals(hp: _HostProblem, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.clip(choice, 0, None)[..., None]
    s = np.take_along_axis(hp.stock, idx, axis=-1)[..., 0]
    l_ = np.take_along_axis(hp.loss, idx, axis=-1)[..., 0]
    s = np.where(hp.active, s, 0.0).sum(axis=-1)
    l_ = np.where(hp.active, l_, 0.0).sum(axis=-1)
    return s, l_


def evaluate_choice(
    problem: SelectionProblem, choice: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Totals and feasibility of a choice, in float64 on the host.

    Args:
        problem: the batch.
        choice: ``[B, G]`` int indices into ``V`` (ignored for inactive groups).

    Returns:
        ``(objective [B], total_loss [B], within_budget [B] bool)``; ``within_budget`` uses
        the feasibility tolerance (module docstring) and requires every active choice to
        be allowed.

    Raises:
        ValueError: ``choice`` has the wrong shape or an active index outside ``[0, V)``.
    """
    hp = _host(problem)
    b, g, v = hp.stock.shape
    choice = np.asarray(choice)
    if choice.shape != (b, g):
        raise ValueError(f"choice must have shape ({b}, {g}) = [B, G]; got {choice.shape}")
    out = hp.active & ((choice < 0) | (choice >= v))
    if out.any():
        bi, gi = (int(i) for i in np.argwhere(out)[0])
        raise ValueError(
            f"choice must be in [0, {v}) for active groups; got {int(choice[bi, gi])} at "
            f"(b={bi}, g={gi})"
        )
    obj, tot = _host_totals(hp, choice)
    ok_mask = np.take_along_axis(hp.valid, np.clip(choice, 0, v - 1)[..., None], axis=-1)[..., 0]
    ok_mask = np.where(hp.active, ok_mask, True).all(axis=-1)
    within = (tot <= hp.budget + _tolerance(hp.budget, hp.loss_scale)) & ok_mask
    return obj, tot, within


def infeasible_report(problem: SelectionProblem, selection: Selection) -> np.ndarray:
    """Indices of the problems whose budget cannot be met.

    Args:
        problem: the batch that was solved.
        selection: a solver's result for it.

    Returns:
        ``[K]`` int64 sorted indices ``b`` with ``selection.feasible[b] == False``.

    Raises:
        ValueError: the selection's batch size differs from the problem's.
    """
    feasible = np.asarray(selection.feasible).astype(bool)
    b = problem.shape[0]
    if feasible.shape != (b,):
        raise ValueError(
            f"selection.feasible must have shape ({b},) = [B] of the problem; got "
            f"{feasible.shape}"
        )
    return np.flatnonzero(~feasible)


def _host_selection(
    hp: _HostProblem, choice: np.ndarray, status: np.ndarray, solver: str
) -> Selection:
    obj, tot = _host_totals(hp, choice)
    return Selection(
        choice=np.where(hp.active, choice, -1).astype(np.int32),
        objective=obj,
        total_loss=tot,
        feasible=status != STATUS_INFEASIBLE,
        status=status.astype(np.int32),
        solver=solver,
    )


def _host_feasible(hp: _HostProblem) -> np.ndarray:
    """``[B]`` bool: the minimum-loss choice meets the budget (within tolerance)."""
    _, min_tot = _host_totals(hp, _host_min_loss(hp))
    return min_tot <= hp.budget + _tolerance(hp.budget, hp.loss_scale)
