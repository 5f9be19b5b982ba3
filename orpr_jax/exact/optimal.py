"""Exact optimum of the classic lost-sales model: the names of :mod:`orpr_jax.exact` under
their former module, and the command for the classic table.

The solvers live in the modules of :mod:`orpr_jax.exact`: the Markov chain and
:func:`position_bound` in :mod:`~orpr_jax.exact.chain`, relative value iteration in
:mod:`~orpr_jax.exact.rvi`, :func:`lost_sales_optimum` in
:mod:`~orpr_jax.exact.value_iteration`, :func:`base_stock_cost` and
:func:`best_base_stock` in :mod:`~orpr_jax.exact.base_stock`, the result types in
:mod:`~orpr_jax.exact.results`, :class:`OptimalPolicy` in :mod:`~orpr_jax.exact.policy`
and :func:`classic_table` in :mod:`~orpr_jax.exact.table`.

Run ``python -m orpr_jax.exact.optimal`` for the table of the 16 classic cases
(L = 1..4, p in {4, 9, 19, 39}, Poisson mean 5, h = 1).
"""

from __future__ import annotations

from orpr_jax import exact as _exact
from orpr_jax.exact import *  # noqa: F403 - the package's names under the former module
from orpr_jax.exact.table import _main

__all__ = list(_exact.__all__)

if __name__ == "__main__":
    _main()
