"""Per-date label selection: batches of multiple-choice knapsack problems and their solvers.

* :mod:`~orpr_jax.labels.selection.problem`: the problem and result types,
  :func:`make_problem` (validation), the host-side helpers and the reports
  (:func:`evaluate_choice`, :func:`min_loss_choice`, :func:`infeasible_report`);
* :mod:`~orpr_jax.labels.selection.search` and :mod:`~orpr_jax.labels.selection.dual`:
  the pure-JAX Lagrangian dual with exchange and greedy moves (:func:`solve_dual`,
  :func:`dual_select`);
* :mod:`~orpr_jax.labels.selection.milp`: the exact cvxpy MILP (:func:`solve_milp`);
* :mod:`~orpr_jax.labels.selection.batched_lp`: the batched LP relaxation through
  ``cvxpylayers`` (:func:`solve_batched_lp`).

Random instances and the solver benchmark live in ``benchmarks/selection_instances.py``.
The package imports only ``orpr_jax._validation`` of the project (and cvxpy, cvxpylayers,
JAX, NumPy); ``problem`` imports no other module of the package, ``search`` none at all.
"""

from orpr_jax.labels.selection.batched_lp import solve_batched_lp
from orpr_jax.labels.selection.dual import dual_select, solve_dual
from orpr_jax.labels.selection.milp import solve_milp
from orpr_jax.labels.selection.problem import (
    FEAS_ATOL,
    FEAS_RTOL,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_OK,
    DualResult,
    Selection,
    SelectionProblem,
    evaluate_choice,
    infeasible_report,
    make_problem,
    min_loss_choice,
)

__all__ = [
    "FEAS_ATOL",
    "FEAS_RTOL",
    "STATUS_FAILED",
    "STATUS_INFEASIBLE",
    "STATUS_OK",
    "DualResult",
    "Selection",
    "SelectionProblem",
    "dual_select",
    "evaluate_choice",
    "infeasible_report",
    "make_problem",
    "min_loss_choice",
    "solve_batched_lp",
    "solve_dual",
    "solve_milp",
]
