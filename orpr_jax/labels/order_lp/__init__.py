"""The SAA ordering LP that gives order-quantity labels (host code, cvxpy / cvxpylayers).

Submodules, each importing only those before it: ``inputs`` (the data containers, their
validation and the problem of one warehouse read off a simulator state), ``plan`` (host
replay of an order plan: lost sales, costs, solution checks), ``formulation`` (the model
and its cvxpy problem) and ``lp`` (:class:`OrderLP`, the batched ``CvxpyLayer`` solves).
The package imports :mod:`orpr_jax.sim` and :mod:`orpr_jax._validation` only.
"""

from orpr_jax.labels.order_lp.inputs import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RETRIED,
    OrderLPInputs,
    OrderLPSolution,
    lp_inputs_from_state,
    order_lp_inputs,
    stack_inputs,
)
from orpr_jax.labels.order_lp.lp import (
    DEFAULT_FALLBACK_SOLVER_ARGS,
    DEFAULT_SOLVER_ARGS,
    FEAS_TOL,
    OrderLP,
    make_order_lp,
)
from orpr_jax.labels.order_lp.plan import plan_costs

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
    "lp_inputs_from_state",
    "make_order_lp",
    "order_lp_inputs",
    "plan_costs",
    "stack_inputs",
]
