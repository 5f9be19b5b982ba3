"""The exact solver: one cvxpy MILP per problem (:func:`solve_milp`)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import cvxpy as cp
import numpy as np

from orpr_jax.labels.selection.problem import (
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_OK,
    Selection,
    SelectionProblem,
    _host,
    _host_feasible,
    _host_min_loss,
    _host_selection,
    _HostProblem,
    _tolerance,
)

__all__ = ["solve_milp"]


class _Template(NamedTuple):
    problem: cp.Problem
    x: cp.Variable
    stock: cp.Parameter
    loss: cp.Parameter
    upper: cp.Parameter
    budget: cp.Parameter


def _build_template(num_groups: int, num_choices: int) -> _Template:
    """The (G, V) MCKP as a DPP cvxpy MILP with Parameters.

    The mask enters as an upper-bound parameter: ``x <= upper`` with ``upper = 0`` fixes a
    disallowed candidate to 0. Inactive groups get zero stock/loss and ``upper = 1``.
    """
    shape = (num_groups, num_choices)
    x = cp.Variable(shape, boolean=True, name="x")
    stock = cp.Parameter(shape, nonneg=True, name="stock")
    loss = cp.Parameter(shape, nonneg=True, name="loss")
    upper = cp.Parameter(shape, nonneg=True, name="upper")
    budget = cp.Parameter(nonneg=True, name="budget")
    constraints = [
        cp.sum(x, axis=1) == 1,
        x <= upper,
        cp.sum(cp.multiply(loss, x)) <= budget,
    ]
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(stock, x))), constraints)
    return _Template(prob, x, stock, loss, upper, budget)


@functools.lru_cache(maxsize=32)
def _milp_template(num_groups: int, num_choices: int) -> _Template:
    return _build_template(num_groups, num_choices)


def _normalised_np(hp: _HostProblem, i: int) -> tuple[np.ndarray, ...]:
    s = hp.stock[i] / hp.stock_scale[i]
    l_ = hp.loss[i] / hp.loss_scale[i]
    b = hp.budget[i] / hp.loss_scale[i]
    upper = np.where(hp.active[i][:, None], hp.valid[i], True).astype(np.float64)
    return s, l_, b, upper


_MILP_SOLVERS = frozenset(
    {cp.HIGHS, cp.SCIPY, "CBC", "COPT", "CPLEX", "GLPK_MI", "GUROBI", "MOSEK", "SCIP",
     "XPRESS"}
)


def _solver_options(name: str, time_limit: float) -> dict[str, Any]:
    if name == cp.HIGHS:
        # HiGHS's default MIP feasibility tolerance (1e-6) can overshoot the budget by
        # more than FEAS_ATOL on the normalised problem.
        return {"mip_rel_gap": 1e-9, "time_limit": float(time_limit),
                "mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}
    if name == cp.SCIPY:
        return {"scipy_options": {"mip_rel_gap": 1e-9, "time_limit": float(time_limit)}}
    return {}


def _choice_from_x(x: np.ndarray | None, valid: np.ndarray) -> np.ndarray | None:
    if x is None or not np.all(np.isfinite(x)):
        return None
    return np.argmax(np.where(valid, x, -np.inf), axis=-1).astype(np.int32)


def _solve_milp_one(
    tpl: _Template, name: str, budget: float, valid: np.ndarray, active: np.ndarray,
    loss: np.ndarray, time_limit: float,
) -> np.ndarray | None:
    """One solver's answer for one normalised problem, or None if it fails.

    An answer over budget (beyond the tolerance) is retried once with the budget
    tightened by the overshoot, for solvers whose feasibility tolerance is looser.
    """
    target = budget
    for _ in range(2):
        tpl.budget.value = max(target, 0.0)
        try:
            # warm_start=False: cvxpy 1.9 hands the previous problem's x to HiGHS 1.16 as
            # a MIP start, and HiGHS then returned that start as "optimal" though its
            # presolved search had found a better point (seen on random instances).
            tpl.problem.solve(solver=name, warm_start=False,
                              **_solver_options(name, time_limit))
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return None
        if tpl.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return None
        c = _choice_from_x(tpl.x.value, valid)
        if c is None:
            return None
        chosen = np.take_along_axis(loss, c[:, None], 1)[:, 0]
        excess = np.where(active, chosen, 0).sum() - budget
        if excess <= _tolerance(budget, 1.0):
            return c
        target = target - excess - _tolerance(budget, 1.0)
    return None


def solve_milp(
    problem: SelectionProblem,
    solver: str = "HIGHS",
    fallback_solvers: tuple[str, ...] = ("SCIPY",),
    time_limit: float = 60.0,
) -> Selection:
    """Solves each problem exactly as a cvxpy MILP (loop over ``B``).

    ``x[g, j]`` is boolean, one per group (``sum_j x = 1``), disallowed candidates fixed
    to 0 through an upper-bound parameter; the cvxpy problem is built once per ``(G, V)``
    and re-solved with new parameter values (data normalised by the problem's stock and
    loss scales). Problems whose minimum-loss choice exceeds the budget are not sent to the
    solver (fallback, ``feasible=False``). If ``solver`` fails (error, non-optimal status
    or an over-budget answer), each of ``fallback_solvers`` that cvxpy has installed is
    tried; if all fail the problem gets ``status=STATUS_FAILED`` and the (feasible)
    minimum-loss choice instead of an exception mid-batch.

    Args:
        problem: the batch.
        solver: cvxpy MILP solver name (``"HIGHS"``; ``"SCIPY"`` is scipy.optimize.milp).
        fallback_solvers: tried in order when ``solver`` fails.
        time_limit: seconds per solve and solver.

    Returns:
        A :class:`Selection` of NumPy arrays, ``solver="milp"``.

    Raises:
        ValueError: ``solver`` is not an installed MILP-capable cvxpy solver.
    """
    installed = set(cp.installed_solvers())
    if solver not in installed or solver not in _MILP_SOLVERS:
        raise ValueError(
            f"solver must be an installed MILP-capable cvxpy solver; got {solver!r} "
            f"(allowed: {sorted(installed & _MILP_SOLVERS)})"
        )
    chain = [solver] + [s for s in fallback_solvers if s in installed and s != solver]
    hp = _host(problem)
    b, g, v = hp.stock.shape
    feasible = _host_feasible(hp)
    choice = _host_min_loss(hp)
    status = np.where(feasible, STATUS_OK, STATUS_INFEASIBLE).astype(np.int32)
    tpl = _milp_template(g, v)
    for i in np.flatnonzero(feasible):
        s, l_, bud, upper = _normalised_np(hp, i)
        tpl.stock.value, tpl.loss.value, tpl.upper.value = s, l_, upper
        valid = hp.valid[i] | ~hp.active[i][:, None]
        solved = None
        for name in chain:
            solved = _solve_milp_one(tpl, name, bud, valid, hp.active[i], l_, time_limit)
            if solved is not None:
                break
        if solved is None:
            status[i] = STATUS_FAILED
        else:
            choice[i] = solved
    return _host_selection(hp, choice, status, "milp")
