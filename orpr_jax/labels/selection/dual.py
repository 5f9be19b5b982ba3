"""The pure-JAX solver: Lagrangian dual, exchange and greedy moves (:func:`solve_dual`).

:func:`dual_select` solves one problem, :func:`solve_dual` a whole batch with the same
code (problem axis last, see :mod:`orpr_jax.labels.selection.search`); both are jittable.
:func:`_polish_batch` rounds the batched LP's starts with the same moves.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from orpr_jax.labels.selection.problem import (
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_OK,
    DualResult,
    Selection,
    SelectionProblem,
    _tolerance,
)
from orpr_jax.labels.selection.search import (
    _first_index,
    _forward_exchange,
    _group_sum,
    _lex_argmin,
    _pick,
    _polish,
    _row,
)

__all__ = ["dual_select", "solve_dual"]

# The JAX paths aim for the exact budget and accept a choice as feasible within half the
# tolerance, so their float32 sums, re-checked in float64 on the host with the full
# tolerance, still pass.
_JAX_TOL_FRACTION = 0.5


_TIE_ULPS = 4
"""Lagrangian scores within this many units in the last place of a group's minimum tie.

The multiplier search converges on breakpoints, where two candidates of a group tie in
exact arithmetic; XLA contracts ``stock + lam * loss`` into a fused multiply-add in some
fusions and not in others (and not in eager mode), so an exact comparison would break
such ties differently in the search and in the choice taken from it."""


def _lagrange_ties(s_masked, l, lam):
    """Each group's Lagrangian minimisers at ``lam``: ``(near [G, V, B], best [G, B])``.

    ``s_masked`` is the stock with ``inf`` where a candidate may not be chosen; every
    score is >= 0, so a relative band covers the rounding.
    """
    score = s_masked + lam * l
    best = jnp.min(score, axis=1)
    eps = jnp.finfo(score.dtype).eps
    return score <= best[:, None] * (1 + _TIE_ULPS * eps), best


def _lagrange_choice(s_masked, l, lam):
    """``[G, B]`` the Lagrangian choice at ``lam``: the lowest-loss minimiser (first of
    equals)."""
    near, _ = _lagrange_ties(s_masked, l, lam)
    loss = jnp.where(near, l, jnp.inf)
    return _first_index(loss <= jnp.min(loss, axis=1)[:, None], axis=1)


def _lagrange_totals(s_masked, l, lam):
    """``[B]`` total stock and loss of :func:`_lagrange_choice` at ``lam``."""
    near, best = _lagrange_ties(s_masked, l, lam)
    loss_g = jnp.min(jnp.where(near, l, jnp.inf), axis=1)
    # best - lam * loss is the stock of the choice up to rounding (one reduction less).
    total_l = _group_sum(loss_g)
    return _group_sum(best) - lam * total_l, total_l


_LAM_MAX = 1e30


class _Normalised(NamedTuple):
    """A problem batch cast, masked and scaled, batch first (``_batch_last`` turns the
    candidate arrays round for the solver)."""

    s: jax.Array  # [B, G, V] stock / stock_scale, zero where not valid
    l: jax.Array  # [B, G, V] loss / loss_scale, zero where not valid
    limit: jax.Array  # [B] budget / loss_scale: what the search and moves aim for
    accept: jax.Array  # [B] limit + half the tolerance: what counts as feasible
    valid: jax.Array  # [B, G, V] valid; inactive groups: only index 0 (zero stock, loss)
    active: jax.Array  # [B, G]
    stock_raw: jax.Array  # [B, G, V] zero where not valid
    loss_raw: jax.Array  # [B, G, V] zero where not valid


def _normalise(stock, loss, budget, allowed, active) -> _Normalised:
    """Casts, masks and scales a batch-first problem (``[B, G, V]``, ``[B]``, ``[B, G]``)."""
    dtype = stock.dtype if jnp.issubdtype(stock.dtype, jnp.floating) else jnp.result_type(float)
    stock = jnp.asarray(stock, dtype)
    loss = jnp.asarray(loss, dtype)
    budget = jnp.asarray(budget, dtype)
    active = jnp.asarray(active).astype(bool)
    valid = jnp.asarray(allowed).astype(bool) & active[..., None]
    first = jnp.arange(stock.shape[-1]) == 0
    stock_raw = jnp.where(valid, stock, 0)
    loss_raw = jnp.where(valid, loss, 0)
    s_scale = jnp.max(stock_raw, axis=(1, 2))
    s_scale = jnp.where(s_scale > 0, s_scale, 1)
    l_scale = jnp.maximum(budget, _group_sum(jnp.max(loss_raw, axis=2).T))
    l_scale = jnp.where(l_scale > 0, l_scale, 1)
    return _Normalised(
        s=stock_raw / s_scale[:, None, None],
        l=loss_raw / l_scale[:, None, None],
        limit=budget / l_scale,
        accept=budget / l_scale + _JAX_TOL_FRACTION * _tolerance(budget / l_scale, 1.0),
        valid=jnp.where(active[..., None], valid, first),
        active=active,
        stock_raw=stock_raw,
        loss_raw=loss_raw,
    )


def _batch_last(x: jax.Array) -> jax.Array:
    """``[B, G, ...] -> [G, ..., B]``."""
    return jnp.moveaxis(x, 0, -1)


def _take_last(values: jax.Array, choice: jax.Array) -> jax.Array:
    """``values[b, g, choice[b, g]]``. ``[B, G, V], [B, G] -> [B, G]``."""
    return jnp.take_along_axis(values, choice[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _finish(n: _Normalised, choice: jax.Array, min_loss: jax.Array, status: jax.Array,
            feasible: jax.Array) -> DualResult:
    """The result for ``[B, G]`` choices (the minimum-loss one where not ``feasible``)."""
    choice = jnp.where(feasible[:, None], choice, min_loss)
    return DualResult(
        choice=jnp.where(n.active, choice, -1).astype(jnp.int32),
        objective=_group_sum(jnp.where(n.active, _take_last(n.stock_raw, choice), 0).T),
        total_loss=_group_sum(jnp.where(n.active, _take_last(n.loss_raw, choice), 0).T),
        feasible=feasible,
        status=status.astype(jnp.int32),
    )


def _default_moves(num_groups: int, max_moves: int | None) -> int:
    return 4 * num_groups + 32 if max_moves is None else int(max_moves)


def _search(s, l, valid, limit, accept, min_loss, iters: int, exchange_steps: int,
            moves: int) -> jax.Array:
    """The :func:`dual_select` choice ``[G, B]`` of a normalised batch-last batch.

    ``min_loss`` (``[G, B]``) is each problem's minimum-loss choice; a problem none of
    whose starts fits its budget gets it back.
    """
    s_masked = jnp.where(valid, s, jnp.inf)
    lam0 = jnp.zeros_like(limit)
    s_lo, l_lo = _lagrange_totals(s_masked, l, lam0)
    s_hi, l_hi = _group_sum(_pick(s, min_loss)), _group_sum(_pick(l, min_loss))
    tiny = jnp.finfo(s.dtype).tiny

    def step(carry):
        lam_lo, s_lo, l_lo, lam_hi, s_hi, l_hi, hi_inf, last, prev, k = carry
        # Converged once the crossing point repeats (it sits on the optimal breakpoint).
        moving = (k < 2) | (last != prev)
        cross = (s_hi - s_lo) / jnp.maximum(l_lo - l_hi, tiny)
        lam = jnp.clip(cross, lam_lo, jnp.where(hi_inf, cross, lam_hi))
        lam = jnp.minimum(lam, _LAM_MAX)  # a near-zero bracket gap must not overflow
        s_x, l_x = _lagrange_totals(s_masked, l, lam)
        ok = l_x <= limit
        lo, hi = moving & ~ok, moving & ok
        return (
            jnp.where(lo, lam, lam_lo), jnp.where(lo, s_x, s_lo), jnp.where(lo, l_x, l_lo),
            jnp.where(hi, lam, lam_hi), jnp.where(hi, s_x, s_hi), jnp.where(hi, l_x, l_hi),
            hi_inf & ~hi, jnp.where(moving, lam, last), jnp.where(moving, last, prev), k + 1,
        )

    def any_moving(carry):
        last, prev, k = carry[-3:]
        return (k < iters) & ((k < 2) | jnp.any(last != prev))

    # A feasible minimum-stock choice (lam = 0) is optimal: start the bracket closed there.
    init = (lam0, s_lo, l_lo, lam0, s_hi, l_hi, l_lo > limit, lam0, lam0, jnp.int32(0))
    lam_lo, _, _, lam_hi, _, _, hi_inf, _, _, _ = jax.lax.while_loop(any_moving, step, init)
    c_hi = jnp.where(hi_inf, min_loss, _lagrange_choice(s_masked, l, lam_hi))
    c_lo = _lagrange_choice(s_masked, l, lam_lo)

    c_ex = _forward_exchange(c_hi, s, l, limit, valid, exchange_steps)
    # Polished one after the other: each loop runs as many rounds as its slowest problem,
    # and the exchange start needs few, so this beats one loop over the three.
    done = [_polish(c, s, l, limit, valid, moves) for c in (c_hi, c_lo, c_ex)]
    choices, cost, total = (jnp.stack(x) for x in zip(*done))  # [3, G, B], [3, B], [3, B]
    fits = total <= accept
    which = jnp.argmin(jnp.where(fits, cost, jnp.inf), axis=0)
    return jnp.where(jnp.any(fits, axis=0), _row(choices, which), min_loss)


def _dual_batch(stock, loss, budget, allowed, active, iters: int, exchange_steps: int,
                max_moves: int | None) -> DualResult:
    """:func:`dual_select` for a batch (``[B, G, V]``, ``[B]``, ``[B, G]`` leaves)."""
    n = _normalise(stock, loss, budget, allowed, active)
    min_loss = _lex_argmin(n.l, n.s, n.valid)
    feasible = _group_sum(_take_last(n.l, min_loss).T) <= n.accept
    search = functools.partial(_search, iters=iters, exchange_steps=exchange_steps,
                               moves=_default_moves(n.s.shape[1], max_moves))
    # Nothing to search when no problem can meet its budget. The conditional's operands
    # are also materialised once: XLA:CPU would otherwise redo the transposes inside each
    # of their many consumers.
    best = jax.lax.cond(
        jnp.any(feasible), search, lambda s, l, valid, limit, accept, start: start,
        _batch_last(n.s), _batch_last(n.l), _batch_last(n.valid), n.limit, n.accept,
        min_loss.T,
    )
    status = jnp.where(feasible, STATUS_OK, STATUS_INFEASIBLE)
    return _finish(n, best.T, min_loss, status, feasible)


def dual_select(
    stock: Float[Array, "G V"],
    loss: Float[Array, "G V"],
    budget: Float[Array, ""],
    allowed: Bool[Array, "G V"],
    active: Bool[Array, " G"],
    *,
    iters: int = 32,
    exchange_steps: int = 4,
    max_moves: int | None = None,
) -> DualResult:
    """Solves one MCKP by Lagrangian relaxation plus exchange and greedy moves (pure JAX).

    For a multiplier ``lam >= 0`` every group independently picks
    ``argmin_j stock + lam * loss`` over its allowed candidates (ties, up to a few units
    in the last place, to the lower loss); total loss ``L(lam)`` is non-increasing. The
    smallest feasible ``lam`` is found by bisection of the bracket ``[lam_lo, lam_hi]``:
    ``lam_lo`` infeasible (starts at 0, the minimum-stock choice), ``lam_hi`` feasible
    (starts at infinity, the minimum-loss choice). Each step splits the bracket where the
    two dual lines ``S_lo + lam (L_lo - b)`` and ``S_hi + lam (L_hi - b)`` cross rather
    than at the midpoint (Kelley's cutting plane on the piecewise-linear dual): the split
    points are the data's own breakpoints, so no ``lam_max`` is needed, and the search
    stops as soon as the crossing repeats, i.e. sits on the optimal breakpoint ``lam*``
    (about 10 steps for G = 20, 15 for G = 200; ``iters`` caps it). Three starts are then
    polished by :func:`~orpr_jax.labels.selection.search._polish` (repair to the budget
    if needed, then greedy stock-cutting single-group moves within it, each round a
    vectorised argmin over all ``G x V`` moves) and the cheapest feasible one is
    returned:

    * the feasible ``lam_hi`` choice;
    * the infeasible ``lam_lo`` choice (its neighbour across ``lam*``);
    * the best single-group exchange against the next ``exchange_steps`` breakpoints
      (:func:`~orpr_jax.labels.selection.search._forward_exchange`): one group steps
      back for a large stock saving while the others advance along their hulls to pay
      for it, a move single-step greedy cannot make and the typical shape of the MILP
      optimum when one group dominates.

    On the realistic instances of ``random_problem`` in
    ``benchmarks/selection_instances.py`` (G = 10-200, V = 30) this stays within 0.5% of
    the exact MILP (max 0.2-0.4%, mean ~0.03%).

    Works on data normalised by the problem's stock and loss scales; never NaN.
    :func:`solve_dual` runs the same computation for a whole batch and returns the same
    choices.

    Args:
        stock: ``[G, V]`` stock per candidate (>= 0).
        loss: ``[G, V]`` loss per candidate (>= 0).
        budget: ``[]`` largest total loss (>= 0).
        allowed: ``[G, V]`` bool candidate mask (each active row needs one True).
        active: ``[G]`` bool real-group mask.
        iters: cap on multiplier-search steps (static).
        exchange_steps: breakpoints walked by the exchange start (static).
        max_moves: cap on greedy rounds per start (static); default ``4 G + 32``.

    Returns:
        A :class:`DualResult` (infeasible: the minimum-loss choice, ``feasible=False``).

    References:
        Fisher, M. L. "The Lagrangian relaxation method for solving integer programming
        problems." Management Science 27(1), 1981.
        Kelley, J. E. "The cutting-plane method for solving convex programs." Journal of
        the SIAM 8(4), 1960.
    """
    out = _dual_batch(*(jnp.asarray(x)[None] for x in (stock, loss, budget, allowed, active)),
                      iters=iters, exchange_steps=exchange_steps, max_moves=max_moves)
    return DualResult(*(x[0] for x in out))


@functools.partial(jax.jit, static_argnames=("iters", "exchange_steps", "max_moves"))
def solve_dual(
    problem: SelectionProblem,
    iters: int = 32,
    exchange_steps: int = 4,
    max_moves: int | None = None,
) -> Selection:
    """Solves a batch with the :func:`dual_select` algorithm (pure JAX, jitted).

    The batch runs as one problem set with its problem axis moved last (see the notes in
    :mod:`orpr_jax.labels.selection.search`), not as a ``vmap`` of :func:`dual_select`;
    the results are the same. Compiled once per shape and static arguments; it composes
    with an outer ``jit`` or ``vmap``, and ``with jax.disable_jit():`` runs it eagerly.

    Args:
        problem: the batch (``[B, G, V]`` leaves).
        iters: cap on multiplier-search steps.
        exchange_steps: breakpoints walked by the exchange start.
        max_moves: cap on greedy rounds per start; default ``4 G + 32``.

    Returns:
        A :class:`Selection` of ``jax.Array`` leaves, ``solver="dual"``.
    """
    out = _dual_batch(problem.stock, problem.loss, problem.budget, problem.allowed,
                      problem.active, iters=iters, exchange_steps=exchange_steps,
                      max_moves=max_moves)
    return Selection(*out, solver="dual")


@functools.partial(jax.jit, static_argnames=("max_moves",))
def _polish_batch(stock, loss, budget, allowed, active, start, lp_ok, max_moves: int):
    """Rounds LP starts ``[B, G]``: repair to the budget, then improve (batch first)."""
    n = _normalise(stock, loss, budget, allowed, active)
    min_loss = _lex_argmin(n.l, n.s, n.valid)
    feasible = _group_sum(_take_last(n.l, min_loss).T) <= n.accept
    start = jnp.where(n.active & lp_ok[:, None], start, min_loss)
    c, _, total = _polish(start.T, _batch_last(n.s), _batch_last(n.l), n.limit,
                          _batch_last(n.valid), max_moves)
    c = jnp.where(total <= n.accept, c, min_loss.T)
    status = jnp.where(feasible, jnp.where(lp_ok, STATUS_OK, STATUS_FAILED), STATUS_INFEASIBLE)
    return _finish(n, c.T, min_loss, status, feasible)
