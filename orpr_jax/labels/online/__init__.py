"""The deployable OR model: the simulation-augmented selection run at decision time on
what is known then (``forecast``: demand scenarios fitted on the observed window;
``policy``: the policy pytree that replays them from the observed state and selects v).
Imports ``sim``, ``policies``, the rest of ``labels`` and the validation helpers.
"""

from orpr_jax.labels.online.forecast import (
    SCENARIO_MODELS,
    DemandFit,
    demand_means,
    fit_demand,
    past_promo_flags,
    sample_crps,
    scenario_demand,
)
from orpr_jax.labels.online.policy import (
    OnlineConfig,
    OnlineDecision,
    OnlineORPolicy,
    make_online_policy,
    max_reviewing,
    planning_params,
    state_from_obs,
    take_rows,
)

__all__ = [
    "SCENARIO_MODELS",
    "DemandFit",
    "OnlineConfig",
    "OnlineDecision",
    "OnlineORPolicy",
    "demand_means",
    "fit_demand",
    "make_online_policy",
    "max_reviewing",
    "past_promo_flags",
    "planning_params",
    "sample_crps",
    "scenario_demand",
    "state_from_obs",
    "take_rows",
]
