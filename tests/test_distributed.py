"""Row sharding over the 4 host devices forced by conftest: sharded equals unsharded.

Covers the simulator (``sharded_evaluate`` against ``evaluate``, with and without
padding, with every cross-row feature switched on), the candidate replays, one
pretraining update with a row-sharded batch, the padding itself, the bad-input errors and
a two-process run over a loopback coordinator.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh, PartitionSpec

import orpr_jax
from orpr_jax import distributed as dist
from orpr_jax.policies.features import (
    ModelInputs,
    num_attr_features,
    num_history_features,
    num_target_features,
)
from orpr_jax.sim.dynamics import initial_state
from orpr_jax.sim.types import SimConfig, SimParams

NUM_DEVICES = 4

pytestmark = pytest.mark.skipif(
    jax.device_count() < NUM_DEVICES,
    reason=f"needs {NUM_DEVICES} devices (tests/conftest.py forces 4 host devices)",
)


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return dist.make_mesh(NUM_DEVICES)


def rich_problem(num_rows: int, demand_mode: str, seed: int = 0):
    """Every feature that couples or shapes rows: shared capacity (binding), review days,
    case packs, MOQ, caps, stochastic lead times, promotions, per-row levels."""
    rng = np.random.default_rng(seed)
    r = num_rows
    cfg = SimConfig(
        num_rows=r, num_warehouses=2, max_lead_time=4, history_length=7,
        lead_time_mode="stochastic", demand_mode=demand_mode, use_review=True,
        use_case_pack=True, use_moq=True, use_max_order=True, use_capacity=True,
        use_promotions=True,
    )
    period = rng.integers(1, 4, r)
    kw = dict(
        demand_trace=rng.poisson(4.0, (20, r)),
        demand_cdf=orpr_jax.sim.poisson_cdf_table(rng.uniform(2.0, 6.0, r)),
        base_demand=rng.uniform(2.0, 6.0, r),
        promo_calendar=(rng.random((20, r)) < 0.1).astype(float),
        promo_uplift=2.0,
        initial_sales_history=rng.poisson(4.0, (7, r)),
        initial_pipeline=rng.integers(0, 5, (5, r)),
        review_period=period,
        review_offset=rng.integers(0, 3, r) % period,
        case_pack=rng.integers(1, 3, r),
        moq=2.0,
        max_order=30.0,
        warehouse=rng.integers(0, 2, r),
        capacity=[15.0, 12.0],  # binds: 10 rows order ~4-8 units a day each
        initial_on_hand=rng.integers(0, 10, r),
        lead_time_probs=np.tile([0.2, 0.5, 0.2, 0.1], (r, 1)),
        holding_cost=rng.uniform(0.5, 2.0, r),
        penalty_cost=rng.uniform(4.0, 19.0, r),
        fixed_order_cost=3.0,
        purchase_cost=0.5,
    )
    params = orpr_jax.make_params(cfg, **kw)
    levels = jnp.asarray(rng.uniform(10.0, 30.0, r), jnp.float32)
    return orpr_jax.InventoryEnv(cfg), params, orpr_jax.policies.base_stock(levels)


def assert_metrics_equal(sharded: dict, unsharded: dict) -> None:
    # Per-row sums are elementwise; the ratios may differ in the last bit (XLA fuses the
    # division differently per partition), and the aggregates are sums over rows split
    # across devices (another summation order): equal to float rounding.
    assert sharded.keys() == unsharded.keys()
    for name, value in unsharded["per_row"].items():
        np.testing.assert_allclose(np.asarray(sharded["per_row"][name]),
                                   np.asarray(value), rtol=1e-6, err_msg=name)
    for name in unsharded:
        if name != "per_row":
            np.testing.assert_allclose(float(sharded[name]), float(unsharded[name]),
                                       rtol=1e-6, err_msg=name)


# ------------------------------------------------------------------------- mesh


def test_make_mesh_and_bad_shapes():
    mesh = dist.make_mesh()
    assert mesh.axis_names == ("rows",) and mesh.size == jax.device_count()
    assert dist.make_mesh(2, axis_name="batch").shape == {"batch": 2}
    for bad in (0, NUM_DEVICES + 1, 2.0, True, "4"):
        with pytest.raises(ValueError, match=r"num_devices=.* is not allowed; expected an "
                                             r"integer in \[1, 4\]"):
            dist.make_mesh(bad)
    with pytest.raises(ValueError, match="axis_name"):
        dist.make_mesh(2, axis_name="")
    grid = Mesh(np.asarray(jax.devices()[:4]).reshape(2, 2), ("a", "b"))
    with pytest.raises(ValueError, match="one-axis mesh"):
        dist.mesh_axis(grid)


def test_pad_rows():
    # ceil(10 / 4) * 4 = 12; multiples stay; one device never pads.
    assert [dist.pad_rows(n, 4) for n in (1, 4, 10, 12, 13)] == [4, 4, 12, 12, 16]
    assert dist.pad_rows(7, 1) == 7
    for args in ((0, 4), (4, 0), (2.5, 4), (True, 4)):
        with pytest.raises(ValueError, match="is not allowed; expected an integer >= 1"):
            dist.pad_rows(*args)


def test_row_axis_table_covers_every_field():
    assert set(dist.ROW_AXIS) == {f.name for f in dataclasses.fields(SimParams)}


# ----------------------------------------------------------------- padding, sharding


def test_pad_params_rows_are_inert():
    env, params, policy = rich_problem(10, "trace")
    cfg, padded = dist.pad_params(env.config, params, 12)
    assert cfg.num_rows == 12 and cfg.num_warehouses == 3  # a zero-capacity warehouse
    np.testing.assert_array_equal(padded.capacity, [15.0, 12.0, 0.0])
    np.testing.assert_array_equal(padded.warehouse[10:], [2, 2])
    assert padded.initial_pipeline.shape == (5, 12) and padded.demand_trace.shape == (20, 12)
    full = orpr_jax.evaluate(orpr_jax.InventoryEnv(cfg), padded,
                             dist.pad_policy(policy, 10, 12), jax.random.key(1), 30, 5)
    # Padded rows: no demand, no stock, no orders, no cost (the real rows are checked
    # against the unpadded run in test_sharded_evaluate_equals_evaluate_padded).
    for name in ("demand", "sales", "total_cost", "orders_placed"):
        np.testing.assert_array_equal(full["per_row"][name][10:], 0.0, err_msg=name)
    assert float(full["per_row"]["orders_placed"][:10].sum()) > 0
    assert dist.pad_params(env.config, params, 10) == (env.config, params)
    with pytest.raises(ValueError, match=r"num_rows=9 is not allowed; expected an integer >= "
                                         r"the current 10 rows"):
        dist.pad_params(env.config, params, 9)


def test_shard_params_places_row_axes(mesh):
    env, params = orpr_jax.make("lost_sales", num_rows=8, lead_time=2)
    sharded = dist.shard_params(params, mesh)
    spec = {name: leaf.sharding.spec for name, leaf in vars(sharded).items()}
    assert spec["holding_cost"] == PartitionSpec("rows")
    assert spec["initial_pipeline"] == PartitionSpec(None, "rows")  # [M, R]
    assert spec["initial_sales_history"] == PartitionSpec(None, "rows")  # [H, R]
    assert spec["demand_cdf"] == PartitionSpec()  # one [1, K] table shared by all rows
    assert spec["lead_time"] == PartitionSpec()  # shared lead time, []
    assert spec["temperature"] == PartitionSpec()
    assert sharded.holding_cost.addressable_shards[0].data.shape == (2,)
    _, params10 = orpr_jax.make("lost_sales", num_rows=10)
    with pytest.raises(ValueError, match=r"num_rows=10 is not allowed; it must be a multiple "
                                         r"of the mesh's 4 devices \(pad to "
                                         r"pad_rows\(10, 4\) = 12"):
        dist.shard_params(params10, mesh)


# ------------------------------------------------------------------------ evaluate


def test_padding_keeps_the_real_rows_random_draws():
    # The design choice behind "sharded equals unsharded" with padding: with threefry
    # partitionable (JAX's default) element i of a draw depends on the key and i only, so
    # appending rows leaves the real rows' demand and lead-time draws unchanged, also for
    # the rejection sampler of jax.random.poisson (checked end to end in
    # test_sharded_evaluate_equals_evaluate_padded).
    from orpr_jax.sim.demand import sample_demand
    from orpr_jax.sim.dynamics import draw_lead_time

    assert jax.config.jax_threefry_partitionable
    env, params, _ = rich_problem(10, "table")
    cfg, padded = dist.pad_params(env.config, params, 12)
    key, t = jax.random.key(5), jnp.asarray(3, jnp.int32)
    demand = jax.jit(sample_demand, static_argnums=1)
    np.testing.assert_array_equal(demand(key, cfg, padded, t)[:10],
                                  demand(key, env.config, params, t))
    np.testing.assert_array_equal(demand(key, cfg, padded, t)[10:], 0.0)
    lead = jax.jit(draw_lead_time, static_argnums=1)
    np.testing.assert_array_equal(lead(key, cfg, padded)[:10], lead(key, env.config, params))



def test_sharded_evaluate_equals_evaluate_padded(mesh):
    # 10 rows on 4 devices -> 12; binding shared capacity, Poisson demand drawn by
    # jax.random.poisson's rejection sampler, stochastic lead times, per-row levels.
    env, params, policy = rich_problem(10, "poisson")
    key = jax.random.key(7)
    unsharded = orpr_jax.evaluate(env, params, policy, key, 30, 5)
    sharded = dist.sharded_evaluate(env, params, policy, key, 30, 5, mesh)
    assert_metrics_equal(sharded, unsharded)
    assert float(sharded["rows"]) == 10  # the padding is not counted
    assert float(unsharded["lost_units"]) > 0 and float(unsharded["orders_placed"]) > 0


def test_sharded_evaluate_lost_sales_plain_function_policy(mesh):
    env, params = orpr_jax.make("lost_sales", num_rows=16, lead_time=3, demand="negbin")

    def policy(obs, key):  # a plain function (static under jit), reading the history
        del key
        level = 4.0 * obs.sales_history[:, -7:].mean(axis=1) + 2.0
        return jnp.maximum(level - obs.inventory_position, 0.0)

    key = jax.random.key(0)
    unsharded = orpr_jax.evaluate(env, params, policy, key, 40, 10)
    sharded = dist.sharded_evaluate(env, params, policy, key, 40, 10, mesh)
    assert_metrics_equal(sharded, unsharded)
    # Without padding the per-row metrics stay split over the devices.
    assert sharded["per_row"]["total_cost"].sharding.spec == PartitionSpec("rows")
    # A one-device mesh is evaluate itself: bit for bit.
    one = dist.sharded_evaluate(env, params, policy, key, 40, 10, dist.make_mesh(1))
    for name, value in unsharded.items():
        if name != "per_row":
            assert float(one[name]) == float(value), name


def test_sharded_evaluate_bad_days(mesh):
    env, params = orpr_jax.make("lost_sales", num_rows=4)
    with pytest.raises(ValueError, match="warmup_days=5 is not allowed"):
        dist.sharded_evaluate(env, params, orpr_jax.policies.base_stock(1.0),
                              jax.random.key(0), 5, 5, mesh)


# ------------------------------------------------------------------------- replays


@pytest.mark.parametrize("num_candidates", [3, 4], ids=["padded", "divisible"])
def test_sharded_replay_equals_unsharded(mesh, num_candidates):
    from orpr_jax.labels.replay import replay_candidates, replay_config, row_horizons, row_starts

    env, params, _ = rich_problem(10, "trace")
    cfg = env.config
    rcfg = replay_config(cfg)
    state = initial_state(cfg, params)
    horizon = 9
    row_h = row_horizons(cfg, params, 2, horizon)
    row_s = row_starts(cfg, params)
    cands = jnp.arange(2.0, 2.0 + 3.0 * num_candidates, 3.0, dtype=jnp.float32)
    demand = params.demand_trace[:horizon][None]  # hindsight, [S=1, horizon, R]
    key = jax.random.key(3)  # stochastic lead times drawn inside the replay
    ref = replay_candidates(rcfg, params, state, cands, demand, row_h, key, horizon, 4, row_s)
    out = dist.sharded_replay_candidates(rcfg, params, state, cands, demand, row_h, key,
                                         horizon, 4, row_s, mesh=mesh)
    for name, a, b in zip(ref._fields, ref, out, strict=True):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=name)
    if num_candidates == NUM_DEVICES:  # one candidate block per device
        assert out.stock_units.sharding.spec == PartitionSpec("rows")


# ------------------------------------------------------------------------- training


class SmallClassifier(nnx.Module):
    """A small bin classifier over ModelInputs, ``(logits, value)`` like FoundationModel.

    The Transformer itself takes ~4 s of CPU to compile per step program (two here), so
    the test uses this model in the same pretraining step; batch sharding and the gradient
    all-reduce do not depend on the layers.
    """

    def __init__(self, inputs: ModelInputs, num_bins: int, *, rngs: nnx.Rngs):
        width = sum(int(np.prod(x.shape[1:])) for x in (inputs.history, inputs.attrs,
                                                        inputs.targets))
        self.category = nnx.Embed(4, 8, rngs=rngs)
        self.l1 = nnx.Linear(width + 8, 32, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)  # row-first random masks, also sharded
        self.l2 = nnx.Linear(32, num_bins, rngs=rngs)

    def __call__(self, inputs: ModelInputs, *, deterministic: bool = True):
        n = inputs.history.shape[0]
        x = jnp.concatenate([inputs.history.reshape(n, -1), inputs.attrs, inputs.targets,
                             self.category(inputs.category)], axis=-1)
        x = self.drop(nnx.gelu(self.l1(x)), deterministic=deterministic)
        logits = self.l2(x)
        return logits, logits[:, 0]


def test_sharded_pretrain_step_equals_unsharded(mesh):
    from orpr_jax.train.pretrain import _Steps

    rng = np.random.default_rng(0)
    n, num_bins = 32, 6
    batch = ModelInputs(
        history=jnp.asarray(rng.normal(size=(n, 14, num_history_features)), jnp.float32),
        attrs=jnp.asarray(rng.normal(size=(n, num_attr_features)), jnp.float32),
        category=jnp.asarray(rng.integers(0, 4, n), jnp.int32),
        targets=jnp.asarray(rng.normal(size=(n, num_target_features)), jnp.float32),
    )
    y = jnp.asarray(rng.integers(0, num_bins, n), jnp.int32)
    model = SmallClassifier(batch, num_bins, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    # SGD, so the update is linear in the gradient: Adam's first step is lr * g / |g|,
    # which turns float noise on near-zero gradient entries into full-size differences.
    tx = optax.sgd(0.1)
    opt_state = tx.init(params)
    steps = _Steps(graphdef, tx, num_bins, 1.0)  # the pretraining step (dropout on)
    p_ref, _, _, loss_ref = steps.train_step(params, opt_state, rest, batch, y)
    sharded_y = dist.shard_batch(y, mesh)
    assert sharded_y.sharding.spec == PartitionSpec("rows")
    p_sh, _, _, loss_sh = steps.train_step(
        dist.replicate(params, mesh), dist.replicate(opt_state, mesh),
        dist.replicate(rest, mesh), dist.shard_batch(batch, mesh), sharded_y,
    )
    np.testing.assert_allclose(float(loss_sh), float(loss_ref), rtol=1e-6)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                zip(jax.tree.leaves(p_ref), jax.tree.leaves(params), strict=True))
    assert moved > 1e-4  # the step did change the parameters
    for a, b in zip(jax.tree.leaves(p_sh), jax.tree.leaves(p_ref), strict=True):
        assert a.sharding.is_fully_replicated  # gradients were all-reduced
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_pad_and_shard_batch(mesh):
    batch = {"x": jnp.arange(10.0, dtype=jnp.float32).reshape(5, 2),
             "y": jnp.arange(5, dtype=jnp.int32)}
    with pytest.raises(ValueError, match=r"batch size=5 is not allowed; it must be a multiple"):
        dist.shard_batch(batch, mesh)
    padded, weights = dist.pad_batch(batch, NUM_DEVICES)
    np.testing.assert_array_equal(weights, [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(padded["y"], [0, 1, 2, 3, 4, 4, 4, 4])
    assert dist.shard_batch(padded, mesh)["x"].sharding.spec == PartitionSpec("rows", None)
    with pytest.raises(ValueError, match="same leading"):
        dist.shard_batch({"x": jnp.zeros(4), "y": jnp.zeros(8)}, mesh)


# ---------------------------------------------------------------------- multi-host


def test_initialize_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"num_processes=0 is not allowed"):
        dist.initialize("localhost:1234", 0, 0)
    with pytest.raises(ValueError, match=r"process_id=2 is not allowed; expected an integer "
                                         r"in \[0, 2\)"):
        dist.initialize("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match=r"coordinator_address='localhost' is not allowed"):
        dist.initialize("localhost", 2, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_loopback():
    """Two processes x 2 CPU devices, one 4-device mesh, gloo collectives over loopback."""
    if getattr(jax.config, "jax_cpu_collectives_implementation", None) in (None, "none"):
        pytest.skip("this JAX has no CPU collectives (gloo) for multi-process runs")
    worker = Path(__file__).with_name("distributed_worker.py")
    address = f"localhost:{_free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [
        subprocess.Popen([sys.executable, str(worker), address, "2", str(i)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=90)
            assert p.returncode == 0, f"worker failed:\n{stderr[-3000:]}"
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(o["process_index"] for o in outs) == [0, 1]
    for o in outs:
        assert (o["process_count"], o["global_devices"], o["local_devices"]) == (2, 4, 2)
        assert o["mesh_size"] == 4
        for name, value in o["local"].items():
            assert o["sharded"][name] == pytest.approx(value, rel=1e-6), name
