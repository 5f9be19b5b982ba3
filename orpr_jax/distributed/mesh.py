"""The one-axis device mesh rows are split over, and joining a multi-host run.

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
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh


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
