""":func:`sharded_evaluate`: the simulator's ``evaluate`` with the rows split over a mesh.

Random numbers. Results do not depend on the sharding: with
``jax_threefry_partitionable`` (the default since JAX 0.5) the random bits of element i
of a ``[R, ...]`` draw depend only on the key and i, so a sharded draw equals the
unsharded one and GSPMD partitions it without communication. Padding appends rows at the
end of the row axis, so the real rows keep their flat indices and their demand and
lead-time draws: ``sharded_evaluate`` on a padded problem equals ``evaluate`` on the
original one. With the flag off, JAX's older threefry lays a draw's bits out by its total
size, so the real rows' draws change when rows are appended; the sharded run then still
equals an unsharded run of the padded params (``pad_params``), not of the original.
"""

from __future__ import annotations

import functools

import jax
from jax.sharding import Mesh

from orpr_jax.distributed.mesh import make_mesh, mesh_axis
from orpr_jax.distributed.padding import pad_params, pad_policy, pad_rows
from orpr_jax.distributed.sharding import replicate, shard_params, shard_rows
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.metrics import finalize
from orpr_jax.sim.rollout import (
    Policy,
    _check_days,
    evaluate,
    evaluate_sums,
    merge_policy,
    split_policy,
)
from orpr_jax.sim.types import SimParams


@functools.partial(
    jax.jit, static_argnames=("env", "static", "num_days", "warmup_days", "num_real")
)
def _sharded_metrics(env, params, dynamic, static, key, num_days, warmup_days, num_real):
    policy = merge_policy(dynamic, static)
    sums = evaluate_sums(env, params, policy, key, num_days, warmup_days)
    # Mask: the padded rows are dropped before aggregation, so ``finalize`` sees exactly
    # the real rows (its row count included). GSPMD turns the row sums into an all-reduce.
    sums = jax.tree.map(lambda x: x[:num_real] if x.ndim else x, sums)
    return finalize(sums)


def sharded_evaluate(
    env: InventoryEnv,
    params: SimParams,
    policy: Policy,
    key: jax.Array,
    num_days: int,
    warmup_days: int = 0,
    mesh: Mesh | None = None,
) -> dict:
    """:func:`orpr_jax.evaluate` with the rows split over the devices of ``mesh``.

    The rows are padded to a multiple of the mesh size (:func:`pad_params`,
    :func:`pad_policy`), placed with :func:`shard_params`, and the library's jitted
    evaluation runs on the sharded inputs (GSPMD partitions it); the padded rows are
    dropped before the metrics are aggregated. Per-row metrics equal ``evaluate``'s and
    the aggregates equal them up to float summation order (see the module docstring on
    random numbers). On a one-device mesh this is ``evaluate`` itself.

    Policies must act per row (every policy of :mod:`orpr_jax.policies` does): a
    policy that mixes rows would see the padded rows.

    Args:
        env: the environment (``env.num_rows`` real rows).
        params: traced parameters.
        policy: ``policy(obs, key) -> [R]`` orders; array leaves whose first axis has
            ``R`` entries are per-row and are padded and sharded with the rows.
        key: PRNG key.
        num_days: days to simulate, warm-up included.
        warmup_days: leading days excluded from the metrics.
        mesh: a one-axis mesh (default: :func:`make_mesh` over every device).

    Returns:
        The metrics dict of :func:`orpr_jax.evaluate` (aggregates replicated on every
        device, ``"per_row"`` of ``env.num_rows`` rows).

    Raises:
        ValueError: bad ``num_days`` / ``warmup_days``, or a mesh of several axes.
    """
    _check_days(num_days, warmup_days)
    mesh = make_mesh() if mesh is None else mesh
    _, n = mesh_axis(mesh)
    if n == 1:
        return evaluate(env, params, policy, key, num_days, warmup_days)
    real = env.num_rows
    padded = pad_rows(real, n)
    config, params = pad_params(env.config, params, padded)
    params = shard_params(params, mesh)
    policy = shard_rows(pad_policy(policy, real, padded), mesh, padded)
    key = replicate(key, mesh)
    dynamic, static = split_policy(policy)
    return _sharded_metrics(
        InventoryEnv(config), params, dynamic, static, key, num_days, warmup_days, real
    )
