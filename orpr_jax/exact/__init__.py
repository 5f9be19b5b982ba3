"""Exact references for the classic lost-sales model: value iteration, exact policy
evaluation on the Markov chain, the best base-stock level and :class:`OptimalPolicy`.

Modules: ``chain`` (state space, kernel, costs, Morton's bound), ``rvi`` (Bellman
operators, relative value iteration), ``value_iteration`` (:func:`lost_sales_optimum`),
``base_stock`` (:func:`base_stock_cost`, :func:`best_base_stock`), ``results``,
``policy`` (:class:`OptimalPolicy`), ``table`` (the classic table; printed by
``python -m orpr_jax.exact.optimal``). Imports only ``sim`` (types) of the project.
"""

from orpr_jax.exact.base_stock import base_stock_cost, best_base_stock
from orpr_jax.exact.chain import MAX_ENTRIES, position_bound
from orpr_jax.exact.policy import OptimalPolicy, optimal_policy
from orpr_jax.exact.results import BaseStockResult, OptimalResult
from orpr_jax.exact.table import CLASSIC_LEAD_TIMES, CLASSIC_PENALTIES, classic_table
from orpr_jax.exact.value_iteration import lost_sales_optimum

__all__ = [
    "CLASSIC_LEAD_TIMES",
    "CLASSIC_PENALTIES",
    "MAX_ENTRIES",
    "BaseStockResult",
    "OptimalPolicy",
    "OptimalResult",
    "base_stock_cost",
    "best_base_stock",
    "classic_table",
    "lost_sales_optimum",
    "optimal_policy",
    "position_bound",
]
