"""The batched LP relaxation: one ``cvxpylayers`` call for the batch.

:func:`solve_batched_lp` solves the relaxation for the whole batch, then rounds and
repairs in JAX; :func:`_solve_lp_fresh` is the baseline it is measured against (a new
cvxpy problem built and solved per instance).
"""

from __future__ import annotations

import functools
from typing import Any

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.labels.selection.dual import _default_moves, _polish_batch
from orpr_jax.labels.selection.problem import (
    STATUS_INFEASIBLE,
    STATUS_OK,
    Selection,
    SelectionProblem,
    _host,
    _host_feasible,
    _host_min_loss,
    _host_selection,
    _HostProblem,
)

__all__ = ["solve_batched_lp"]


_MASK_COST = 2.0
"""Normalised stock and loss given to disallowed candidates in the LP relaxation.

Allowed candidates have normalised stock and loss in ``[0, 1]`` (stock over its maximum,
loss over ``max(budget, sum_g max_j loss)``), so a masked candidate is strictly dominated
in both and carries no weight at the LP optimum: the mask costs no extra constraint rows.
"""


def _lp_problem(num_groups: int, num_choices: int):
    """The LP relaxation as a DPP cvxpy problem: ``(problem, x, [stock, loss, budget])``."""
    shape = (num_groups, num_choices)
    x = cp.Variable(shape, name="x")
    stock = cp.Parameter(shape, nonneg=True, name="stock")
    loss = cp.Parameter(shape, nonneg=True, name="loss")
    budget = cp.Parameter(nonneg=True, name="budget")
    prob = cp.Problem(
        cp.Minimize(cp.sum(cp.multiply(stock, x))),
        [x >= 0, cp.sum(x, axis=1) == 1, cp.sum(cp.multiply(loss, x)) <= budget],
    )
    return prob, x, [stock, loss, budget]


@functools.lru_cache(maxsize=32)
def _lp_layer(num_groups: int, num_choices: int):
    """The canonicalised LP-relaxation layer for one ``(G, V)`` (built once, cached)."""
    from cvxpylayers.jax import CvxpyLayer

    prob, x, params = _lp_problem(num_groups, num_choices)
    return CvxpyLayer(prob, parameters=params, variables=[x])


def _lp_inputs(hp: _HostProblem, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    """Normalised, masked ``(stock [K, G, V], loss [K, G, V], budget [K])``."""
    valid = np.where(hp.active[idx][..., None], hp.valid[idx], True)
    s = np.where(valid, hp.stock[idx] / hp.stock_scale[idx, None, None], _MASK_COST)
    l_ = np.where(valid, hp.loss[idx] / hp.loss_scale[idx, None, None], _MASK_COST)
    return s, l_, hp.budget[idx] / hp.loss_scale[idx]


def _solve_lp_layer(
    hp: _HostProblem, idx: np.ndarray, batch_size: int | None, n_jobs: int,
    solver_args: dict[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """LP solutions ``[K, G, V]`` for problems ``idx`` and a ``[K]`` solved-ok mask."""
    _, g, v = hp.stock.shape
    layer = _lp_layer(g, v)
    args = {"solve_method": "Clarabel", "n_jobs_forward": n_jobs, **(solver_args or {})}
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    xs = np.zeros((len(idx), g, v))
    ok = np.zeros(len(idx), bool)
    step = len(idx) if batch_size is None else max(int(batch_size), 1)
    for start in range(0, len(idx), step):
        part = idx[start:start + step]
        params = [jnp.asarray(a, dtype) for a in _lp_inputs(hp, part)]
        try:
            (x,) = layer(*params, solver_args=args)
        except Exception:  # noqa: BLE001 - any solver failure falls back per problem
            continue
        x = np.asarray(x, np.float64)
        xs[start:start + len(part)] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        ok[start:start + len(part)] = np.isfinite(x).all(axis=(1, 2))
    return xs, ok


def solve_batched_lp(
    problem: SelectionProblem,
    batch_size: int | None = None,
    n_jobs: int = -1,
    solver_args: dict[str, Any] | None = None,
    max_moves: int | None = None,
) -> Selection:
    """Solves the LP relaxation for the batch with one ``CvxpyLayer`` call, then rounds.

    The relaxation (``x >= 0``, ``sum_j x[g, j] = 1``, total loss <= budget) is a DPP cvxpy
    problem with Parameters ``stock``, ``loss`` and ``budget``, canonicalised once per
    ``(G, V)`` into ``cvxpylayers.jax.CvxpyLayer`` and solved for the whole batch in one
    call through diffcp with ``solve_method="Clarabel"`` (the layer is not jittable with
    this solver; it stays outside ``jit``). The mask enters through the parameters as a
    large cost: disallowed candidates get normalised stock and loss :data:`_MASK_COST`,
    dominated by every allowed one. Problems already infeasible at their minimum-loss
    choice are skipped. Rounding: per group the allowed candidate with the largest ``x``
    (an interior-point solution has many fractional entries), then the JAX repair and
    improvement moves of :func:`~orpr_jax.labels.selection.dual.dual_select`. A failed
    LP solve starts the repair from the minimum-loss choice and is reported as
    ``STATUS_FAILED``.

    Args:
        problem: the batch.
        batch_size: problems per layer call; ``None`` solves all in one call.
        n_jobs: diffcp worker threads (``-1``: one per CPU).
        solver_args: extra diffcp / Clarabel settings, e.g. ``{"tol_gap_abs": 1e-6}``
            (Clarabel's defaults otherwise).
        max_moves: cap on greedy rounds, all phases; default ``4 G + 32``.

    Returns:
        A :class:`Selection` of NumPy arrays, ``solver="batched_lp"``.
    """
    hp = _host(problem)
    b, g, v = hp.stock.shape
    feasible = _host_feasible(hp)
    idx = np.flatnonzero(feasible)
    start = np.zeros((b, g), np.int32)
    lp_ok = np.zeros(b, bool)
    if len(idx):
        xs, ok = _solve_lp_layer(hp, idx, batch_size, n_jobs, solver_args)
        start[idx] = np.argmax(np.where(hp.valid[idx], xs, -np.inf), axis=-1)
        lp_ok[idx] = ok
    lp_ok = lp_ok | ~feasible
    out = _polish_batch(
        problem.stock, problem.loss, problem.budget, problem.allowed, problem.active,
        jnp.asarray(start), jnp.asarray(lp_ok), max_moves=_default_moves(g, max_moves),
    )
    choice = np.asarray(out.choice)
    # The host's float64 feasibility test is the reference (the JAX one uses half the
    # tolerance and can call a problem sitting exactly on its budget infeasible).
    status = np.asarray(out.status)
    status = np.where(status == STATUS_INFEASIBLE, STATUS_OK, status)
    status = np.where(feasible, status, STATUS_INFEASIBLE).astype(np.int32)
    choice = np.where(feasible[:, None] | ~hp.active, choice, _host_min_loss(hp))
    return _host_selection(hp, np.where(hp.active, choice, 0), status, "batched_lp")


def _solve_lp_fresh(hp: _HostProblem, i: int, solver_args: dict[str, Any] | None = None
                    ) -> np.ndarray:
    """Builds and solves a new cvxpy LP relaxation for problem ``i`` (benchmark baseline).

    The same relaxation and Clarabel settings as the layer, with the data as constants, so
    every call pays cvxpy's canonicalisation.
    """
    s, l_, b = (a[0] for a in _lp_inputs(hp, np.array([i])))
    x = cp.Variable(s.shape)
    prob = cp.Problem(
        cp.Minimize(cp.sum(cp.multiply(s, x))),
        [x >= 0, cp.sum(x, axis=1) == 1, cp.sum(cp.multiply(l_, x)) <= b],
    )
    prob.solve(solver=cp.CLARABEL, **(solver_args or {}))
    return np.asarray(x.value)
