"""One process of the two-process test in ``tests/test_distributed.py`` (not a test module).

Run as ``python tests/distributed_worker.py HOST:PORT NUM_PROCESSES PROCESS_ID``, with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` so each process has two CPU
devices. Every process joins the run through ``orpr_jax.distributed.initialize``, runs
``sharded_evaluate`` on a mesh over all devices of all processes, runs the plain
single-device ``evaluate`` on the same problem and prints one JSON line with both sets of
aggregate metrics.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    address, num_processes, process_id = argv[0], int(argv[1]), int(argv[2])
    import jax

    from orpr_jax import distributed

    info = distributed.initialize(address, num_processes, process_id)
    import jax.numpy as jnp

    import orpr_jax

    # 10 rows over 4 devices: padded to 12, each process holding two devices' shards.
    env, params = orpr_jax.make("lost_sales", num_rows=10, lead_time=2)
    policy = orpr_jax.policies.base_stock(jnp.linspace(8.0, 20.0, 10, dtype=jnp.float32))
    key = jax.random.key(0)
    mesh = distributed.make_mesh()
    sharded = distributed.sharded_evaluate(env, params, policy, key, 40, 5, mesh)
    local = orpr_jax.evaluate(env, params, policy, key, 40, 5)
    print(json.dumps({
        "process_index": info.process_index,
        "process_count": info.process_count,
        "global_devices": info.global_devices,
        "local_devices": info.local_devices,
        "mesh_size": int(mesh.size),
        "sharded": orpr_jax.metrics_to_floats(sharded),
        "local": orpr_jax.metrics_to_floats(local),
    }), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
