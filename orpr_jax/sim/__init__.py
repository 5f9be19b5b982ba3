"""The simulator: config/params/state types, one-day dynamics, env, relaxations, metrics,
rollouts. Imports nothing of the project but the validation helpers (``_validation``).
"""

from orpr_jax.sim.demand import negbin_cdf_table, poisson_cdf_table, sample_demand
from orpr_jax.sim.dynamics import (
    constrain_order,
    draw_lead_time,
    initial_state,
    is_review_day,
    observe,
    transition,
)
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.metrics import MetricSums, finalize
from orpr_jax.sim.params import lead_time_cdf_from_probs, make_params
from orpr_jax.sim.rollout import evaluate, evaluate_sums, metrics_to_floats, rollout
from orpr_jax.sim.types import DayOutcome, Observation, SimConfig, SimParams, SimState

__all__ = [
    "DayOutcome",
    "InventoryEnv",
    "MetricSums",
    "Observation",
    "SimConfig",
    "SimParams",
    "SimState",
    "constrain_order",
    "draw_lead_time",
    "evaluate",
    "evaluate_sums",
    "finalize",
    "initial_state",
    "is_review_day",
    "lead_time_cdf_from_probs",
    "make_params",
    "metrics_to_floats",
    "negbin_cdf_table",
    "observe",
    "poisson_cdf_table",
    "rollout",
    "sample_demand",
    "transition",
]
