"""Exact references for the classic lost-sales model (Poisson or geometric demand): value
iteration, exact policy evaluation on the Markov chain, the best base-stock level, the
best capped base-stock policy and :class:`OptimalPolicy`.

Modules: ``chain`` (state space, kernel, costs, Morton's bound), ``rvi`` (Bellman
operators, relative value iteration), ``value_iteration`` (:func:`lost_sales_optimum`),
``base_stock`` (:func:`base_stock_cost`, :func:`best_base_stock`), ``evaluation``
(:func:`policy_cost`: any stationary policy), ``capped`` (:func:`capped_base_stock_cost`,
:func:`best_capped_base_stock`), ``results``,
``policy`` (:class:`OptimalPolicy`), ``table`` (the classic table; printed by
``python -m orpr_jax.exact.optimal``). Imports only ``sim`` of the project (types, and
the observation builder for :func:`policy_cost`).
"""

from orpr_jax.exact.base_stock import base_stock_cost, best_base_stock
from orpr_jax.exact.capped import CappedResult, best_capped_base_stock, capped_base_stock_cost
from orpr_jax.exact.chain import DEMANDS, MAX_ENTRIES, position_bound
from orpr_jax.exact.evaluation import PolicyCostResult, policy_cost
from orpr_jax.exact.policy import OptimalPolicy, optimal_policy
from orpr_jax.exact.results import BaseStockResult, OptimalResult
from orpr_jax.exact.table import CLASSIC_LEAD_TIMES, CLASSIC_PENALTIES, classic_table
from orpr_jax.exact.value_iteration import lost_sales_optimum

__all__ = [
    "CLASSIC_LEAD_TIMES",
    "CLASSIC_PENALTIES",
    "DEMANDS",
    "MAX_ENTRIES",
    "BaseStockResult",
    "CappedResult",
    "OptimalPolicy",
    "OptimalResult",
    "PolicyCostResult",
    "base_stock_cost",
    "best_base_stock",
    "best_capped_base_stock",
    "capped_base_stock_cost",
    "classic_table",
    "lost_sales_optimum",
    "optimal_policy",
    "policy_cost",
    "position_bound",
]
