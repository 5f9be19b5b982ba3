"""orpr_jax: a JAX inventory simulator and the OR-guided Pretrain-then-Reinforce stack.

Public API::

    env, params = orpr_jax.make("lost_sales", num_rows=1000, lead_time=2)
    policy = orpr_jax.policies.base_stock(17.0)
    metrics = orpr_jax.evaluate(env, params, policy, jax.random.key(0), 365, 50)
"""

from orpr_jax import policies
from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.scenarios import make
from orpr_jax.sim import (
    DayOutcome,
    InventoryEnv,
    Observation,
    SimConfig,
    SimParams,
    SimState,
    evaluate,
    make_params,
    metrics_to_floats,
    rollout,
)

__version__ = "0.1.0"

__all__ = [
    "DayOutcome",
    "InventoryData",
    "InventoryEnv",
    "Observation",
    "SimConfig",
    "SimParams",
    "SimState",
    "env_from_data",
    "evaluate",
    "make",
    "make_params",
    "metrics_to_floats",
    "policies",
    "rollout",
]
