"""Device mesh and row sharding with JAX's own ``jax.sharding`` (no home-made layer).

Every SKU-warehouse row of the simulator is independent of the others except through a
warehouse's shared inbound capacity, so the row axis is the natural axis to split over
devices: a one-axis :class:`jax.sharding.Mesh` (axis ``"rows"``), row-first leaves placed
with ``NamedSharding(mesh, PartitionSpec("rows"))`` (time-first ``[M, R]`` / ``[H, R]``
/ ``[T, R]`` tables with ``PartitionSpec(None, "rows")``), everything else replicated.
The jitted programs are the library's own (``evaluate``, ``replay_candidates``, the
pretraining step); called with sharded inputs, XLA's GSPMD partitioner splits them and
inserts the few collectives they need (the metric totals, a warehouse's capacity sums, a
gradient all-reduce). The simulator's day loop itself runs without communication unless
capacity is shared.

Modules:

* ``mesh``: :func:`make_mesh`, :func:`mesh_axis` and :func:`initialize` (several hosts;
  its docstring has the recipe).
* ``padding``: :data:`ROW_AXIS`, :func:`pad_params`, :func:`pad_policy`,
  :func:`pad_batch`, :func:`pad_rows`, :func:`row_mask` (rows that cost nothing, so the
  row count is a multiple of the mesh size).
* ``sharding``: :func:`replicate` / :func:`shard_batch` (model parameters whole on every
  device and a training batch split by example; a jitted step with a mean loss, for
  example the pretraining step of :mod:`orpr_jax.train.pretrain`, then all-reduces the
  gradients), :func:`shard_rows`, :func:`shard_params`, :func:`params_shardings`.
* ``rollout``: :func:`sharded_evaluate`, ``evaluate`` with the rows split (padded); its
  docstring says why results do not depend on the sharding.
* ``replay``: :func:`sharded_replay_candidates`, the OR labels' candidate replays, which
  lay candidates x rows side by side on one wide row axis, candidate-major; that axis is
  split by candidate blocks (see the function for why not by rows).

Imports ``sim`` of the project, and ``labels.replay`` inside
:func:`sharded_replay_candidates` only.

References:
    GSPMD: Xu et al., "GSPMD: General and Scalable Parallelization for ML Computation
    Graphs", arXiv:2105.04663.
"""

from orpr_jax.distributed.mesh import ProcessInfo, initialize, make_mesh, mesh_axis
from orpr_jax.distributed.padding import (
    ROW_AXIS,
    pad_batch,
    pad_params,
    pad_policy,
    pad_rows,
    params_row_axes,
    row_mask,
)
from orpr_jax.distributed.replay import sharded_replay_candidates
from orpr_jax.distributed.rollout import sharded_evaluate
from orpr_jax.distributed.sharding import (
    params_shardings,
    replicate,
    shard_batch,
    shard_params,
    shard_rows,
)

__all__ = [
    "ROW_AXIS",
    "ProcessInfo",
    "initialize",
    "make_mesh",
    "mesh_axis",
    "pad_batch",
    "pad_params",
    "pad_policy",
    "pad_rows",
    "params_row_axes",
    "params_shardings",
    "replicate",
    "row_mask",
    "shard_batch",
    "shard_params",
    "shard_rows",
    "sharded_evaluate",
    "sharded_replay_candidates",
]
