"""``rollout`` and ``evaluate``: a policy run through the env in one ``lax.scan``.

A policy is any JAX-traceable ``policy(obs, key) -> orders [R]``. Policies built by
:mod:`orpr_jax.policies` are pytrees (their parameters are traced leaves), so changing a
base-stock level does not recompile; a plain Python function is treated as static.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.metrics import MetricSums, accumulate, finalize, init_sums
from orpr_jax.sim.types import DayOutcome, Observation, SimParams, SimState

Policy = Callable[[Observation, jax.Array], jax.Array]


def _is_array(x) -> bool:
    return isinstance(x, jax.Array) or hasattr(x, "__array__")


def split_policy(policy: Policy) -> tuple[list, Any]:
    """Splits a policy pytree into its array leaves and a hashable static remainder.

    The static part carries the treedef's text (with the node class names) as well as the
    treedef: custom-node treedefs of different classes with the same layout can compare
    equal, which would let ``jit`` reuse one policy's compiled program for another.
    """
    leaves, treedef = jax.tree_util.tree_flatten(policy)
    dynamic = [leaf if _is_array(leaf) else None for leaf in leaves]
    static = tuple(None if _is_array(leaf) else leaf for leaf in leaves)
    return dynamic, (treedef, static, str(treedef))


def merge_policy(dynamic: list, static: Any) -> Policy:
    """Inverse of :func:`split_policy`."""
    treedef, static_leaves, _ = static
    leaves = [d if s is None else s for d, s in zip(dynamic, static_leaves, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


class _RolloutCarry(NamedTuple):
    key: jax.Array
    obs: Observation
    state: SimState


class _EvalCarry(NamedTuple):
    key: jax.Array
    obs: Observation
    state: SimState
    sums: MetricSums


def _day(env: InventoryEnv, params: SimParams, policy: Policy, key, obs, state):
    key, policy_key, step_key = jax.random.split(key, 3)
    action = policy(obs, policy_key)
    obs, state, reward, _, _, info = env.step(step_key, state, action, params)
    return key, obs, state, reward, info["outcome"]


@functools.partial(jax.jit, static_argnames=("env", "static", "num_days"))
def _rollout(env, params, dynamic, static, key, num_days):
    policy = merge_policy(dynamic, static)
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def body(carry: _RolloutCarry, _):
        key, obs, state, reward, outcome = _day(
            env, params, policy, carry.key, carry.obs, carry.state
        )
        return _RolloutCarry(key, obs, state), (outcome, reward)

    carry, (outcomes, rewards) = jax.lax.scan(
        body, _RolloutCarry(key, obs, state), None, length=num_days
    )
    return carry.state, outcomes, rewards


def rollout(
    env: InventoryEnv, params: SimParams, policy: Policy, key: jax.Array, num_days: int
) -> tuple[SimState, DayOutcome, jax.Array]:
    """Runs ``policy`` for ``num_days`` days from a reset and keeps the whole trajectory.

    Memory grows as ``num_days x rows``; use :func:`evaluate` for large runs.

    Args:
        env: the environment.
        params: traced parameters.
        policy: ``policy(obs, key) -> [R]`` orders.
        key: PRNG key.
        num_days: days to simulate (static).

    Returns:
        ``(final_state, outcomes, rewards)``: ``outcomes`` is a
        :class:`~orpr_jax.sim.types.DayOutcome` with ``[T, R]`` leaves, ``rewards`` is
        ``[T, R]``.
    """
    _check_days(num_days, 0)
    dynamic, static = split_policy(policy)
    return _rollout(env, params, dynamic, static, key, num_days)


@functools.partial(jax.jit, static_argnames=("env", "static", "num_days", "warmup_days"))
def _evaluate_sums(env, params, dynamic, static, key, num_days, warmup_days):
    policy = merge_policy(dynamic, static)
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)
    sums = init_sums(env.num_rows, params.holding_cost.dtype)

    def body(carry: _EvalCarry, _):
        counted = carry.state.t >= warmup_days
        key, obs, state, _, outcome = _day(
            env, params, policy, carry.key, carry.obs, carry.state
        )
        return _EvalCarry(key, obs, state, accumulate(carry.sums, outcome, counted)), None

    carry, _ = jax.lax.scan(body, _EvalCarry(key, obs, state, sums), None, length=num_days)
    return carry.sums


def evaluate_sums(
    env: InventoryEnv,
    params: SimParams,
    policy: Policy,
    key: jax.Array,
    num_days: int,
    warmup_days: int = 0,
) -> MetricSums:
    """Per-row metric sums of a run (jitted; memory independent of ``num_days``)."""
    _check_days(num_days, warmup_days)
    dynamic, static = split_policy(policy)
    return _evaluate_sums(env, params, dynamic, static, key, num_days, warmup_days)


def evaluate(
    env: InventoryEnv,
    params: SimParams,
    policy: Policy,
    key: jax.Array,
    num_days: int,
    warmup_days: int = 0,
) -> dict:
    """Runs ``policy`` and returns the paper's metrics over days ``warmup_days..num_days``.

    Metrics are accumulated inside the scan, so memory does not grow with ``num_days``
    (1M rows x 365 days fit in a few hundred MB).

    Args:
        env: the environment.
        params: traced parameters.
        policy: ``policy(obs, key) -> [R]`` orders.
        key: PRNG key.
        num_days: days to simulate, warm-up included.
        warmup_days: leading days excluded from the metrics.

    Returns:
        The dict of :func:`orpr_jax.sim.metrics.finalize`: aggregate 0-d arrays
        (``total_cost``, ``cost_per_row_day``, ``holding_cost``, ``lost_sales_cost``,
        ``turnover_days``, ``in_stock_rate``, ``fill_rate``, ...) and ``"per_row"``.

    Raises:
        ValueError: if ``num_days < 1`` or ``warmup_days`` is not in ``[0, num_days)``.
    """
    return _finalize(evaluate_sums(env, params, policy, key, num_days, warmup_days))


#: ``finalize`` as one compiled program: eagerly it dispatches ~40 small ops (~1 ms).
_finalize = jax.jit(finalize)


def _check_days(num_days, warmup_days) -> None:
    if isinstance(num_days, bool) or not isinstance(num_days, int) or num_days < 1:
        raise ValueError(f"num_days={num_days!r} is not allowed; it must be an integer >= 1")
    if (
        isinstance(warmup_days, bool)
        or not isinstance(warmup_days, int)
        or not 0 <= warmup_days < num_days
    ):
        raise ValueError(
            f"warmup_days={warmup_days!r} is not allowed; it must be an integer in "
            f"[0, num_days={num_days})"
        )


def metrics_to_floats(metrics: dict) -> dict:
    """Aggregate metrics as Python floats (``per_row`` dropped), for tables and JSON."""
    return {k: float(v) for k, v in metrics.items() if k != "per_row"}


__all__ = ["evaluate", "evaluate_sums", "rollout", "metrics_to_floats", "Policy"]
