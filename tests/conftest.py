"""Test configuration: CPU, strict dtype promotion, several host devices for sharding tests."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Several host devices so sharding tests can build a mesh on a CPU-only machine.
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
