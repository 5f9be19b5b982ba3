"""The classic lost-sales benchmark suite: the 56-instance grid (Poisson and geometric
demand, mean 5, h = 1, p in {4, 9, 19, 39}, L in {1, 2, 3, 4, 6, 8, 10}), each instance's
reference (exact optimum for L <= 4, best published cost for L >= 6, with its source),
tuned base-stock and capped base-stock, and the cost of any policy on an instance (exact
for L <= 4, simulated with common random numbers against capped base-stock for L >= 6).

Modules: ``instances`` (:class:`Instance`, :func:`instance`, :func:`instances`),
``references`` (:func:`reference`, :data:`PUBLISHED`), ``heuristics``
(:func:`tune_base_stock`, :func:`tune_capped`, :func:`crn_costs`,
:func:`policy_cost_on`). Imports ``sim``, ``scenarios``, ``policies`` and ``exact``
of the project; the study that runs the grid is ``python -m orpr_jax.studies.suite``.
"""

from orpr_jax.suite.heuristics import (
    SimSettings,
    Tuned,
    crn_costs,
    policy_cost_on,
    tune_base_stock,
    tune_capped,
)
from orpr_jax.suite.instances import (
    DEMANDS,
    EXACT_LEAD_TIMES,
    LEAD_TIMES,
    PENALTIES,
    Instance,
    instance,
    instances,
)
from orpr_jax.suite.references import (
    PUBLISHED,
    PUBLISHED_CAPPED_POISSON_P4,
    PUBLISHED_SOURCE,
    Reference,
    reference,
)

__all__ = [
    "DEMANDS",
    "EXACT_LEAD_TIMES",
    "LEAD_TIMES",
    "PENALTIES",
    "PUBLISHED",
    "PUBLISHED_CAPPED_POISSON_P4",
    "PUBLISHED_SOURCE",
    "Instance",
    "Reference",
    "SimSettings",
    "Tuned",
    "crn_costs",
    "instance",
    "instances",
    "policy_cost_on",
    "reference",
    "tune_base_stock",
    "tune_capped",
]
