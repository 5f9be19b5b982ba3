""":func:`sharded_replay_candidates`: the OR labels' candidate replays split over a mesh
by candidate blocks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from orpr_jax.distributed.mesh import make_mesh, mesh_axis
from orpr_jax.distributed.padding import _pad_leading, pad_rows
from orpr_jax.distributed.sharding import replicate, shard_rows
from orpr_jax.sim.types import SimConfig, SimParams, SimState


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
