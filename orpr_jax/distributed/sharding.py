"""Placing arrays on a mesh: row-first leaves split with
``NamedSharding(mesh, PartitionSpec("rows"))``, everything else replicated; works across
processes (every process holds the same full value and supplies its devices' shards).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from orpr_jax.distributed.mesh import mesh_axis
from orpr_jax.distributed.padding import _leading_size, pad_rows, params_row_axes
from orpr_jax.sim.types import SimParams


def _sharding(mesh: Mesh, ndim: int, axis: int | None) -> NamedSharding:
    name, _ = mesh_axis(mesh)
    if axis is None:
        return NamedSharding(mesh, PartitionSpec())
    spec = [None] * ndim
    spec[axis] = name
    return NamedSharding(mesh, PartitionSpec(*spec))


def _check_divisible(what: str, num_rows: int, mesh: Mesh) -> None:
    _, n = mesh_axis(mesh)
    if num_rows % n:
        raise ValueError(
            f"{what}={num_rows} is not allowed; it must be a multiple of the mesh's {n} "
            f"devices (pad to pad_rows({num_rows}, {n}) = {pad_rows(num_rows, n)} first)"
        )


def _put_leaf(x: Any, sharding: NamedSharding) -> jax.Array:
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
        return x  # already in place (e.g. params placed once by the caller)
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    # Several processes: every process holds the same full value and supplies the shards
    # of its own devices (``device_put`` refuses committed arrays here).
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put_leaf(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _put(tree: Any, shardings: Any) -> Any:
    """``jax.device_put(tree, shardings)`` that also works across processes; leaves that
    are not arrays (a plain-function policy, a Python number) are left as they are."""
    return jax.tree.map(lambda x, s: _put_leaf(x, s) if _is_array(x) else x, tree, shardings)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every array leaf of ``tree`` (e.g. model parameters) whole on every device."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return _put(tree, jax.tree.map(lambda _: sharding, tree))


def shard_rows(tree: Any, mesh: Mesh, num_rows: int, axis: int = 0) -> Any:
    """Shards the leaves of ``tree`` whose ``axis`` has ``num_rows`` entries; replicates
    the rest.

    Raises:
        ValueError: if ``num_rows`` is not a multiple of the mesh size.
    """
    _check_divisible("num_rows", num_rows, mesh)

    def sharding(leaf):
        shape = np.shape(leaf)
        row = axis if len(shape) > axis and shape[axis] == num_rows else None
        return _sharding(mesh, len(shape), row)

    return _put(tree, jax.tree.map(sharding, tree))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Shards a batch (leading example axis on every leaf) over the mesh, for a training
    step whose parameters are :func:`replicate`-d.

    With a mean loss over the batch, ``jax.grad`` of the jitted step then yields
    gradients that GSPMD all-reduces over the devices: the replicated update is the one
    of the whole batch.

    Raises:
        ValueError: if the leaves do not share one leading axis, or its length is not a
            multiple of the mesh size (see :func:`pad_batch`).
    """
    n = _leading_size(batch)
    _check_divisible("batch size", n, mesh)
    return shard_rows(batch, mesh, n, axis=0)


def params_shardings(params: SimParams, mesh: Mesh) -> SimParams:
    """A :class:`SimParams` of ``NamedSharding``: rows split over the mesh, rest replicated."""
    axes = params_row_axes(params)
    return SimParams(**{
        name: _sharding(mesh, leaf.ndim, axes[name]) for name, leaf in vars(params).items()
    })


def shard_params(params: SimParams, mesh: Mesh) -> SimParams:
    """Places ``params`` on the mesh: each field's row axis split, the rest replicated.

    Args:
        params: traced parameters whose row count (``holding_cost.shape[0]``) is a
            multiple of the mesh size (see :func:`pad_params`).
        mesh: a one-axis mesh (:func:`make_mesh`).

    Returns:
        The same values as ``jax.Array`` s with ``NamedSharding`` s.

    Raises:
        ValueError: if the row count is not a multiple of the mesh size, or the mesh has
            more than one axis.
    """
    _check_divisible("num_rows", int(params.holding_cost.shape[0]), mesh)
    return _put(params, params_shardings(params, mesh))
