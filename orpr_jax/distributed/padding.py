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

* :func:`sharded_evaluate`: ``evaluate`` with the rows split (padded as below).
* :func:`sharded_replay_candidates`: the OR labels' candidate replays, which lay
  candidates x rows side by side on one wide row axis, candidate-major; that axis is
  split by candidate blocks (see the function for why not by rows).
* :func:`replicate` / :func:`shard_batch`: model parameters whole on every device and a
  training batch split by example; a jitted step with a mean loss (for example the
  pretraining step of :mod:`orpr_jax.train.pretrain`) then all-reduces the gradients.

Padding. A mesh of n devices needs the row count to be a multiple of n.
:func:`pad_params` appends rows that cost nothing (zero costs; zero demand where demand
is given per row; nothing on hand or on order) and, when capacity is shared, puts them in
an extra warehouse of zero inbound capacity, so they never take capacity from a real
warehouse. Rows interact only through capacity, so the real rows run exactly as before;
the metrics are computed over the real rows only (the padded rows are sliced off before
aggregation; :func:`row_mask` gives the same mask for user code).

Random numbers. Results do not depend on the sharding: with
``jax_threefry_partitionable`` (the default since JAX 0.5) the random bits of element i
of a ``[R, ...]`` draw depend only on the key and i, so a sharded draw equals the
unsharded one and GSPMD partitions it without communication. Padding appends rows at the
end of the row axis, so the real rows keep their flat indices and their demand and
lead-time draws: ``sharded_evaluate`` on a padded problem equals ``evaluate`` on the
original one. With the flag off, JAX's older threefry lays a draw's bits out by its total
size, so the real rows' draws change when rows are appended; the sharded run then still
equals an unsharded run of the padded params (``pad_params``), not of the original.

Several hosts. Call :func:`initialize` once per process before anything else touches
JAX; ``jax.devices()`` then lists every process's devices and :func:`make_mesh` spans
them all. Every process runs the same program on the same (full) host inputs::

    # host 0                                   # host 1
    import orpr_jax.distributed as dist        import orpr_jax.distributed as dist
    dist.initialize("10.0.0.1:1234", 2, 0)     dist.initialize("10.0.0.1:1234", 2, 1)
    env, params = orpr_jax.make("lost_sales", num_rows=1_000_000)
    mesh = dist.make_mesh()                    # all devices of both hosts
    m = dist.sharded_evaluate(env, params, policy, jax.random.key(0), 365, 50, mesh)
    float(m["total_cost"])                     # aggregates are replicated on every host

The ``"per_row"`` arrays stay split over the devices of all hosts when no padding was
needed (gather them with ``jax.experimental.multihost_utils.process_allgather``). On a
CPU the processes exchange data through gloo (JAX's default CPU collectives).

References:
    GSPMD: Xu et al., "GSPMD: General and Scalable Parallelization for ML Computation
    Graphs", arXiv:2105.04663.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

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
from orpr_jax.sim.types import SimConfig, SimParams, SimState

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

#: Row axis of every :class:`SimParams` field (``None``: no row axis, replicated). A field
#: whose row axis has length 1 while there are more rows (e.g. a ``[1, K]`` demand table
#: shared by all rows) and a ``[]`` shared lead time are replicated too.
ROW_AXIS: dict[str, int | None] = {
    "holding_cost": 0,
    "penalty_cost": 0,
    "fixed_order_cost": 0,
    "purchase_cost": 0,
    "review_period": 0,
    "review_offset": 0,
    "lead_time": 0,
    "lead_time_cdf": 0,
    "moq": 0,
    "case_pack": 0,
    "max_order": 0,
    "warehouse": 0,
    "capacity": None,
    "category": 0,
    "initial_on_hand": 0,
    "initial_pipeline": 1,
    "initial_sales_history": 1,
    "demand_trace": 1,
    "demand_cdf": 0,
    "base_demand": 0,
    "dispersion": 0,
    "weekly": 0,
    "yearly_amplitude": 0,
    "yearly_phase": 0,
    "trend": 0,
    "zero_prob": 0,
    "promo_uplift": 0,
    "promo_calendar": 1,
    "start_day_of_year": None,
    "start_day_of_week": None,
    "temperature": None,
}

#: Values of the padded rows' fields (0 where not listed): valid, cost-free, demand-free.
#: A demand CDF of ones draws 0 units; an order cap of 0 orders nothing (when caps are on).
_PAD_VALUE: dict[str, float] = {
    "review_period": 1,
    "lead_time": 1,
    "lead_time_cdf": 1.0,
    "case_pack": 1.0,
    "demand_cdf": 1.0,
    "dispersion": 1.0,
    "weekly": 1.0,
    "promo_uplift": 1.0,
}

# ------------------------------------------------------------------------------ mesh


def make_mesh(num_devices: int | None = None, axis_name: str = "rows") -> Mesh:
    """A one-axis device mesh for row sharding.

    Args:
        num_devices: devices in the mesh (the first ``num_devices`` of ``jax.devices()``,
            which lists every process's devices after :func:`initialize`); ``None`` takes
            them all.
        axis_name: name of the mesh axis the rows are split over.

    Returns:
        ``Mesh(devices[:num_devices], (axis_name,))``.

    Raises:
        ValueError: if ``num_devices`` is not an integer in ``[1, len(jax.devices())]``
            or ``axis_name`` is not a non-empty string.
    """
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if (
        isinstance(num_devices, bool)
        or not isinstance(num_devices, (int, np.integer))
        or not 1 <= num_devices <= len(devices)
    ):
        raise ValueError(
            f"num_devices={num_devices!r} is not allowed; expected an integer in "
            f"[1, {len(devices)}] (the {devices[0].platform} devices available; on a CPU set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax)"
        )
    if not isinstance(axis_name, str) or not axis_name:
        raise ValueError(f"axis_name={axis_name!r} is not allowed; expected a non-empty string")
    return Mesh(np.asarray(devices[: int(num_devices)]), (axis_name,))


def mesh_axis(mesh: Mesh) -> tuple[str, int]:
    """``(axis_name, size)`` of a one-axis mesh.

    Raises:
        ValueError: if the mesh has more than one axis.
    """
    if len(mesh.axis_names) != 1:
        raise ValueError(
            f"mesh axis_names={mesh.axis_names!r} is not allowed; row sharding takes a "
            "one-axis mesh (see make_mesh)"
        )
    name = mesh.axis_names[0]
    return name, int(mesh.shape[name])


def pad_rows(num_rows: int, num_devices: int) -> int:
    """The smallest multiple of ``num_devices`` that is ``>= num_rows``.

    Example: ``pad_rows(10, 4) == 12``, ``pad_rows(12, 4) == 12``.

    Raises:
        ValueError: if either argument is not an integer >= 1.
    """
    for name, value in (("num_rows", num_rows), ("num_devices", num_devices)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= 1")
    return -(-int(num_rows) // int(num_devices)) * int(num_devices)


def row_mask(num_rows: int, padded_rows: int) -> jax.Array:
    """``[padded_rows]`` bool: True on the ``num_rows`` real rows, False on the padding.

    Multiply per-row sums by it (or slice ``[:num_rows]``) before aggregating.
    """
    return jnp.arange(padded_rows) < num_rows


# --------------------------------------------------------------------------- padding


def _row_axis_of(name: str, leaf: jax.Array, axis: int | None, num_rows: int) -> int | None:
    if axis is None or leaf.ndim <= axis:
        return None
    n = leaf.shape[axis]
    if n == num_rows:
        return axis
    if n == 1:  # a table shared by every row
        return None
    raise ValueError(
        f"{name} has shape {tuple(leaf.shape)}; expected {num_rows} rows (or 1, shared) "
        f"along axis {axis}"
    )


def params_row_axes(params: SimParams) -> dict[str, int | None]:
    """Row axis of every field of ``params`` (``None`` where the field is replicated).

    The row count is ``params.holding_cost.shape[0]``.

    Raises:
        ValueError: if a field's row axis has neither that length nor 1.
    """
    num_rows = int(params.holding_cost.shape[0])
    return {
        name: _row_axis_of(name, leaf, ROW_AXIS[name], num_rows)
        for name, leaf in vars(params).items()
    }


def _append_rows(leaf: jax.Array, axis: int, extra: int, value) -> jax.Array:
    shape = list(leaf.shape)
    shape[axis] = extra
    return jnp.concatenate([leaf, jnp.full(shape, value, leaf.dtype)], axis=axis)


def _check_padded_rows(num_rows: Any, current: int) -> int:
    if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)) or (
        num_rows < current
    ):
        raise ValueError(
            f"num_rows={num_rows!r} is not allowed; expected an integer >= the current "
            f"{current} rows"
        )
    return int(num_rows)


def pad_params(
    config: SimConfig, params: SimParams, num_rows: int
) -> tuple[SimConfig, SimParams]:
    """Appends cost-free, demand-free rows so the problem has ``num_rows`` rows.

    Padded rows have zero costs, zero demand (trace 0, demand CDF of ones, base demand
    0), nothing on hand, on order or in the sales history, review every day, lead time 1
    and an order cap of 0 (binding when ``use_max_order``). Fields shared by all rows
    (a ``[1, K]`` demand table, a ``[]`` lead time) are kept as they are, so with a
    shared demand table the padded rows do draw demand; that is harmless, as rows only
    interact through capacity and the metrics drop the padded rows. With shared capacity
    (``config.use_capacity``) the padded rows form an extra warehouse (index
    ``num_warehouses``) of zero capacity, so they can neither order nor take capacity
    from a real warehouse. The real rows come first and are unchanged.

    Args:
        config: the static configuration of ``params``.
        params: traced parameters of ``config.num_rows`` rows.
        num_rows: rows after padding (e.g. ``pad_rows(config.num_rows, num_devices)``).

    Returns:
        ``(config, params)`` for ``num_rows`` rows (the inputs unchanged when no row is
        added).

    Raises:
        ValueError: if ``num_rows`` is below ``config.num_rows`` or ``params`` does not
            have ``config.num_rows`` rows.
    """
    real = config.num_rows
    num_rows = _check_padded_rows(num_rows, real)
    if int(params.holding_cost.shape[0]) != real:
        raise ValueError(
            f"params has {params.holding_cost.shape[0]} rows; expected config.num_rows={real}"
        )
    extra = num_rows - real
    if extra == 0:
        return config, params
    axes = params_row_axes(params)
    capacity_warehouse = config.num_warehouses if config.use_capacity else 0
    out = {}
    for name, leaf in vars(params).items():
        axis = axes[name]
        if name == "capacity" and config.use_capacity:
            out[name] = _append_rows(leaf, 0, 1, 0.0)
        elif axis is None:
            out[name] = leaf
        elif name == "warehouse":
            out[name] = _append_rows(leaf, axis, extra, capacity_warehouse)
        else:
            out[name] = _append_rows(leaf, axis, extra, _PAD_VALUE.get(name, 0))
    new_config = config.replace(
        num_rows=num_rows,
        num_warehouses=config.num_warehouses + (1 if config.use_capacity else 0),
    )
    return new_config, SimParams(**out)


def _pad_leading(tree: Any, num_rows: int, padded_rows: int, mode: str) -> Any:
    """Pads every array leaf whose first axis has ``num_rows`` entries to ``padded_rows``."""
    extra = padded_rows - num_rows

    def pad(leaf):
        if extra == 0 or not hasattr(leaf, "shape") or not leaf.shape:
            return leaf
        if leaf.shape[0] != num_rows:
            return leaf
        widths = [(0, extra)] + [(0, 0)] * (len(leaf.shape) - 1)
        return jnp.pad(jnp.asarray(leaf), widths, mode=mode)

    return jax.tree.map(pad, tree)


def pad_policy(policy: Policy, num_rows: int, padded_rows: int) -> Policy:
    """Pads a policy's per-row parameters (e.g. a base-stock ``[R]`` level).

    Every array leaf whose first axis has ``num_rows`` entries is treated as per-row and
    extended by repeating its last row (any value will do: the padded rows interact with
    no real row and are dropped from the metrics). Scalars and other leaves (model
    weights, ``[V]`` bin values) are left alone. A weight matrix whose first axis happens
    to equal ``num_rows`` would be padded too; give such a policy a padded row count
    that avoids the clash, or pad it yourself.
    """
    _check_padded_rows(padded_rows, num_rows)
    return _pad_leading(policy, num_rows, padded_rows, "edge")


def pad_batch(batch: Any, multiple: int) -> tuple[Any, jax.Array]:
    """Pads a batch (leading example axis ``N`` on every leaf) to a multiple of ``multiple``.

    Padded examples repeat the last one; use the returned weights in a weighted loss (for
    example ``cross_entropy_loss(..., weights=w)`` of :mod:`orpr_jax.train.pretrain`) so
    they count for nothing.

    Returns:
        ``(padded_batch, weights)`` with ``weights`` ``[N_padded]`` float32, 1 on real
        examples and 0 on padding.

    Raises:
        ValueError: if the leaves do not share one leading axis, or ``multiple < 1``.
    """
    n = _leading_size(batch)
    padded = pad_rows(n, multiple)
    weights = row_mask(n, padded).astype(jnp.float32)
    return _pad_leading(batch, n, padded, "edge"), weights


def _leading_size(tree: Any) -> int:
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"every leaf of a batch needs the same leading (example) axis; got sizes {sizes}"
        )
    return sizes.pop()


# -------------------------------------------------------------------------- sharding


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


# ------------------------------------------------------------------------ simulation


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


def sharded_replay_candidates(
    config: SimConfig,
    params: SimParams,
    state: SimState,
    candidates: jax.Array,
    demand: jax.Array,
    row_horizon: jax.Array,
    key: jax.Array,
    horizon: int,
    window: int = 28,
    row_start: jax.Array | None = None,
    mesh: Mesh | None = None,
):
    """:func:`orpr_jax.labels.replay.replay_candidates` split over the devices of ``mesh``.

    The replay simulates ``V x R`` rows side by side, candidate-major (candidate j's
    copy of the rows is the contiguous block ``j R .. (j + 1) R - 1`` of its wide row
    axis). That wide axis is what is sharded: the candidates are split over the devices
    (padded to a multiple of the mesh size by repeating the last one), so each device
    simulates whole blocks of ``V / n`` candidates x ``R`` rows and the day loop runs
    without communication. The ``R``-sized inputs (params, state, demand, horizons) are
    replicated; they are ``V`` times smaller than the replay. Splitting the real rows
    instead would cut across every candidate block: GSPMD then all-gathers the tiled
    per-day vectors inside the loop and replicates the wide state, so nothing is gained.

    Every candidate sees the same lead-time draws (drawn over ``[R]`` on each device from
    the replicated key), so the result equals the unsharded one exactly.

    Args:
        config, params, state, candidates, demand, row_horizon, key, horizon, window,
        row_start: as for ``replay_candidates`` (``candidates`` is ``[V]``, ``demand``
            ``[S, horizon, R]``).
        mesh: a one-axis mesh (default: :func:`make_mesh` over every device).

    Returns:
        A :class:`~orpr_jax.labels.replay.ReplayResult` (``[V, R]`` leaves, ``demand``
        ``[R]``), its ``[V, R]`` leaves split over the devices by candidate when ``V``
        is a multiple of the mesh size.
    """
    from orpr_jax.labels.replay import ReplayResult, replay_candidates

    mesh = make_mesh() if mesh is None else mesh
    _, n = mesh_axis(mesh)
    candidates = jnp.asarray(candidates)
    v_count = int(candidates.shape[0])
    padded = pad_rows(v_count, n)
    cands = shard_rows(_pad_leading(candidates, v_count, padded, "edge"), mesh, padded)
    rep = replay_candidates(
        config,
        replicate(params, mesh),
        replicate(state, mesh),
        cands,
        replicate(demand, mesh),
        replicate(row_horizon, mesh),
        replicate(key, mesh),
        horizon,
        window,
        None if row_start is None else replicate(row_start, mesh),
    )
    if padded == v_count:
        return rep
    return ReplayResult(*(x[:v_count] for x in rep[:-1]), rep.demand)


# ------------------------------------------------------------------------ multi-host


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    """Where this process stands after :func:`initialize`.

    Attributes:
        process_index: this process (0 is the coordinator).
        process_count: processes in the run.
        local_devices: devices of this process.
        global_devices: devices of every process (what :func:`make_mesh` spans).
    """

    process_index: int
    process_count: int
    local_devices: int
    global_devices: int


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs: Any,
) -> ProcessInfo:
    """Joins a multi-process (multi-host) JAX run: ``jax.distributed.initialize``.

    Call it once per process, first thing, before any JAX computation. Every process
    then sees every device in ``jax.devices()`` (``jax.local_devices()`` are its own),
    :func:`make_mesh` spans them all, and the same script runs on every process with
    the same host inputs (SPMD). With no arguments JAX detects the cluster itself
    (SLURM, Open MPI, Cloud TPU, ...).

    Recipe for two hosts (or two processes on one machine, ``localhost``)::

        # on host 0 (the coordinator; its address and a free port):
        python run.py --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0
        # on host 1:
        python run.py --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1

    where ``run.py`` calls ``initialize(args.coordinator, args.num_processes,
    args.process_id)`` and then ``sharded_evaluate(...)`` (see the module docstring).
    On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` gives each process N
    devices; processes exchange data through gloo.

    Args:
        coordinator_address: ``"host:port"`` of process 0 (``None``: auto-detect).
        num_processes: processes in the run (``None``: auto-detect).
        process_id: this process, in ``[0, num_processes)`` (``None``: auto-detect).
        **kwargs: passed on to ``jax.distributed.initialize`` (e.g. ``local_device_ids``,
            ``initialization_timeout``).

    Returns:
        A :class:`ProcessInfo`.

    Raises:
        ValueError: ``num_processes`` not an integer >= 1, ``process_id`` outside
            ``[0, num_processes)``, or a ``coordinator_address`` without a port.
    """
    if num_processes is not None and (
        isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1
    ):
        raise ValueError(
            f"num_processes={num_processes!r} is not allowed; expected an integer >= 1"
        )
    if process_id is not None:
        high = num_processes if num_processes is not None else None
        if (
            isinstance(process_id, bool)
            or not isinstance(process_id, int)
            or process_id < 0
            or (high is not None and process_id >= high)
        ):
            allowed = f"[0, {high})" if high is not None else ">= 0"
            raise ValueError(
                f"process_id={process_id!r} is not allowed; expected an integer in {allowed}"
            )
    if coordinator_address is not None and (
        not isinstance(coordinator_address, str) or ":" not in coordinator_address
    ):
        raise ValueError(
            f"coordinator_address={coordinator_address!r} is not allowed; expected "
            "'host:port'"
        )
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        **kwargs,
    )
    return ProcessInfo(
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        local_devices=jax.local_device_count(),
        global_devices=jax.device_count(),
    )
