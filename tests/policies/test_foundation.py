"""Foundation model: input features, shapes, presets, policy adapter, error paths."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import orpr_jax
import orpr_jax.labels
from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.policies.features import (
    LEVEL_ATTR_INDEX,
    ModelInputs,
    inputs_from_labels,
    make_inputs,
    num_attr_features,
    num_history_features,
    num_target_features,
)
from orpr_jax.policies.foundation import (
    FoundationConfig,
    FoundationModel,
    FoundationPolicy,
    count_params,
    make_foundation_policy,
)

V_MAX = 12
NUM_CATEGORIES = 3


@pytest.fixture(scope="module")
def tiny():
    spec = SyntheticSpec(num_skus=30, num_warehouses=2, num_categories=NUM_CATEGORIES,
                         num_days=110)
    env, params = orpr_jax.env_from_data(generate(jax.random.key(5), spec), start=28,
                                         num_days=80)
    labels = orpr_jax.labels.label_decisions(
        env, params, jax.random.key(0),
        orpr_jax.labels.LabelConfig(v_max=V_MAX, max_horizon=20, stride=14),
    )
    obs, _ = env.reset(jax.random.key(1), params)
    return env, params, labels, obs


def _tiny_config(num_bins, history_length, **kw):
    # Tiny on purpose: these tests check plumbing, not capacity.
    fields = dict(patch_len=7, d_model=16, num_heads=2, num_layers=1, mlp_dim=32,
                  num_categories=NUM_CATEGORIES, dropout_rate=0.1)
    fields.update(kw)
    return FoundationConfig(num_bins=num_bins, history_length=history_length, **fields)


def _inputs(n=5, h=28):
    rng = np.random.default_rng(3)
    return ModelInputs(
        history=jnp.asarray(rng.normal(size=(n, h, num_history_features)), jnp.float32),
        attrs=jnp.asarray(rng.normal(size=(n, num_attr_features)), jnp.float32),
        category=jnp.arange(n, dtype=jnp.int32) % NUM_CATEGORIES,
        targets=jnp.asarray(rng.normal(size=(n, num_target_features)), jnp.float32),
    )


# ----------------------------------------------------------------------------- features


def test_make_inputs_shapes_and_dtypes(tiny):
    _, _, _, obs = tiny
    r, h = obs.sales_history.shape
    inputs = make_inputs(obs, 0.95, 14.0)
    assert inputs.history.shape == (r, h, num_history_features)
    assert inputs.attrs.shape == (r, num_attr_features)
    assert inputs.category.shape == (r,)
    assert inputs.targets.shape == (r, num_target_features)
    assert inputs.history.dtype == jnp.float32 and inputs.category.dtype == jnp.int32
    # targets: 14 / 30, alpha
    np.testing.assert_allclose(inputs.targets[:, 0], 14.0 / 30.0, rtol=1e-6)
    np.testing.assert_allclose(inputs.targets[:, 1], 0.95, rtol=1e-6)
    # per-row alpha / target turnover broadcast the same way
    per_row = make_inputs(obs, jnp.full((r,), 0.9, jnp.float32), jnp.full((r,), 7.0, jnp.float32))
    np.testing.assert_allclose(per_row.targets[:, :2], np.tile([7.0 / 30.0, 0.9], (r, 1)),
                               rtol=1e-6)


def test_history_features_hand_computed(tiny):
    _, _, _, obs = tiny
    h = obs.sales_history.shape[1]
    sales = jnp.zeros_like(obs.sales_history).at[:, -1].set(float(h))  # mean 1 -> level 1
    # No stock-out day and a long-run level of 1: the forecast is (h + 3 * 1) / (h + 3) = 1.
    obs = obs.replace(sales_history=sales, day_of_week=jnp.full_like(obs.day_of_week, 3),
                      stockout_history=jnp.zeros_like(sales),
                      long_run_level=jnp.ones_like(obs.long_run_level))
    inputs = make_inputs(obs, 0.95, 14.0)
    np.testing.assert_allclose(inputs.history[0, -1, 0], h)  # sales / level = h / 1
    np.testing.assert_allclose(inputs.history[0, -1, 1], np.log1p(h), rtol=1e-6)
    # yesterday was day-of-week 2: sin(2 * 2pi / 7)
    np.testing.assert_allclose(inputs.history[0, -1, 2], np.sin(2 * 2 * np.pi / 7), atol=1e-6)
    np.testing.assert_allclose(inputs.history[0, -1, 3], np.cos(2 * 2 * np.pi / 7), atol=1e-6)
    np.testing.assert_allclose(inputs.history[0, :, 4], 0.0)  # no stock-out day
    # The last 4 days stocked out: share 4 / h, and 4 days since the last in-stock day.
    out = jnp.zeros_like(sales).at[:, -4:].set(1.0)
    censored = make_inputs(obs.replace(stockout_history=out), 0.95, 14.0)
    np.testing.assert_allclose(censored.history[0, -4:, 4], 1.0)
    np.testing.assert_allclose(censored.attrs[0, 12], 4.0 / h, rtol=1e-6)
    np.testing.assert_allclose(censored.attrs[0, 13], 4.0 / h, rtol=1e-6)
    # on hand in days of cover / 30
    np.testing.assert_allclose(inputs.attrs[:, 4], np.clip(obs.on_hand, -1500, 1500) / 30.0,
                               rtol=1e-5)


def test_inputs_finite_on_edge_cases(tiny):
    _, _, _, obs = tiny
    zero = obs.replace(
        sales_history=jnp.zeros_like(obs.sales_history),
        on_hand=jnp.zeros_like(obs.on_hand),
        inventory_position=jnp.zeros_like(obs.inventory_position),
        pipeline=jnp.zeros_like(obs.pipeline),
        holding_cost=jnp.zeros_like(obs.holding_cost),
        penalty_cost=jnp.zeros_like(obs.penalty_cost),
        lead_time_std=jnp.zeros_like(obs.lead_time_std),
    )
    huge = obs.replace(
        on_hand=jnp.full_like(obs.on_hand, 1e30),
        inventory_position=jnp.full_like(obs.inventory_position, -1e30),
        penalty_cost=jnp.full_like(obs.penalty_cost, jnp.inf),
    )
    for o in (zero, huge):
        inputs = make_inputs(o, 0.95, 14.0)
        for leaf in (inputs.history, inputs.attrs, inputs.targets):
            assert bool(jnp.all(jnp.isfinite(leaf)))
            assert float(jnp.max(jnp.abs(leaf))) <= 100.0


def test_inputs_are_scale_free(tiny):
    _, _, _, obs = tiny
    scaled = obs.replace(
        sales_history=obs.sales_history * 10.0 + 0.0,
        long_run_level=obs.long_run_level * 10.0,
        on_hand=obs.on_hand * 10.0,
        backlog=obs.backlog * 10.0,
        inventory_position=obs.inventory_position * 10.0,
        pipeline=obs.pipeline * 10.0,
    )
    # Rows whose level is above the floor both times (the floor is not scale-free).
    busy = np.asarray((obs.sales_history.mean(axis=1) > 0.1) & (obs.long_run_level > 0.05))
    assert busy.sum() > 10
    a, b = make_inputs(obs, 0.95, 14.0), make_inputs(scaled, 0.95, 14.0)
    np.testing.assert_allclose(a.history[busy], b.history[busy], rtol=1e-5, atol=1e-5)
    keep = [i for i in range(num_attr_features) if i != LEVEL_ATTR_INDEX]
    np.testing.assert_allclose(a.attrs[busy][:, keep], b.attrs[busy][:, keep], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(a.targets, b.targets)
    # log1p(level) is the one scale feature, and it moves
    assert bool(jnp.all(b.attrs[busy, LEVEL_ATTR_INDEX] > a.attrs[busy, LEVEL_ATTR_INDEX]))


def test_inputs_from_labels(tiny):
    _, _, labels, _ = tiny
    d, r = labels.choice.shape
    inputs, y, row_ids = inputs_from_labels(labels)
    assert inputs.history.shape[0] == d * r and y.shape == (d * r,) and y.dtype == jnp.int32
    np.testing.assert_array_equal(y, np.asarray(labels.choice).reshape(-1))
    np.testing.assert_array_equal(row_ids, np.tile(np.arange(r), d))
    np.testing.assert_allclose(inputs.targets[:, 0], 14.0 / 30.0, rtol=1e-6)
    np.testing.assert_allclose(inputs.targets[:, 1], labels.meta["label_config"]["alpha"],
                               rtol=1e-6)
    # sample (date 1, row 2) equals make_inputs on that date's observation
    obs1 = jax.tree.map(lambda x: jnp.asarray(x)[1], labels.features)
    one = make_inputs(obs1, labels.meta["label_config"]["alpha"], 14.0)
    np.testing.assert_allclose(inputs.attrs[r + 2], one.attrs[2], rtol=1e-6)
    custom, _, _ = inputs_from_labels(labels, target_turnover=21.0)
    np.testing.assert_allclose(custom.targets[:, 0], 21.0 / 30.0, rtol=1e-6)
    with pytest.raises(ValueError, match="expected \\[D, R\\]"):
        inputs_from_labels(labels._replace(choice=np.zeros(3, np.int32)))


# -------------------------------------------------------------------------------- model


def test_model_shapes_and_jit_equals_no_jit():
    model = FoundationModel(_tiny_config(7, 28), rngs=nnx.Rngs(0))
    inputs = _inputs()
    logits, value = model(inputs)
    assert logits.shape == (5, 7) and value.shape == (5,)
    assert logits.dtype == jnp.float32

    @nnx.jit
    def f(m, x):
        return m(x)

    jl, jv = f(model, inputs)
    np.testing.assert_allclose(jl, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jv, value, rtol=1e-5, atol=1e-5)
    # dropout on: outputs change, shapes do not
    dl, _ = nnx.jit(lambda m, x: m(x, deterministic=False))(model, inputs)
    assert dl.shape == logits.shape and not np.allclose(dl, logits)


def test_presets_param_counts():
    # eval_shape: abstract models, so counting costs no initialisation
    def build(config):
        return nnx.eval_shape(lambda: FoundationModel(config, rngs=nnx.Rngs(0)))

    n_default = count_params(build(FoundationConfig.default(30, 28, 16)))
    assert 800_000 <= n_default <= 1_000_000, n_default
    n_small = count_params(build(FoundationConfig.small(30, 28, 16)))
    assert 50_000 <= n_small <= 100_000, n_small
    # H without a factor of 7 still gets a valid patch length
    assert FoundationConfig.small(V_MAX, 30, 3).patch_len == 6


def test_bad_input_shapes_raise():
    model = FoundationModel(_tiny_config(7, 28), rngs=nnx.Rngs(0))
    inputs = _inputs()
    with pytest.raises(ValueError, match=r"history has shape \(5, 21, 5\); expected \[N, H=28"):
        model(_inputs(h=21))
    with pytest.raises(ValueError, match=r"attrs has shape"):
        model(inputs.replace(attrs=inputs.attrs[:, :3]))
    with pytest.raises(ValueError, match=r"category has shape"):
        model(inputs.replace(category=inputs.category[:2]))
    with pytest.raises(ValueError, match=r"targets has shape"):
        model(inputs.replace(targets=inputs.targets[None]))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(patch_len=5), r"patch_len=5 is not allowed; it must divide history_length=28"),
        (dict(num_heads=3), r"num_heads=3 is not allowed; it must divide d_model=16"),
        (dict(num_bins=0), r"num_bins=0 is not allowed; it must be an integer >= 1"),
        (dict(num_layers=0), r"num_layers=0 is not allowed"),
        (dict(d_model=2.5), r"d_model=2.5 is not allowed"),
        (dict(dropout_rate=1.0), r"dropout_rate=1.0 is not allowed; expected a number in \[0, 1\)"),
        (dict(num_categories=True), r"num_categories=True is not allowed"),
    ],
)
def test_config_validation(changes, match):
    fields = dict(num_bins=7, history_length=28)
    fields.update(changes)
    num_bins, history_length = fields.pop("num_bins"), fields.pop("history_length")
    with pytest.raises(ValueError, match=match):
        _tiny_config(num_bins, history_length, **fields)


# ------------------------------------------------------------------------------- policy


def test_policy_in_evaluate_does_not_recompile(tiny):
    env, params, _, obs = tiny
    h = obs.sales_history.shape[1]
    config = _tiny_config(V_MAX, h)
    v_values = jnp.arange(1, V_MAX + 1, dtype=jnp.float32)
    p1 = make_foundation_policy(FoundationModel(config, rngs=nnx.Rngs(0)), v_values)
    p2 = make_foundation_policy(FoundationModel(config, rngs=nnx.Rngs(1)), v_values)
    assert isinstance(p1, FoundationPolicy)
    orders = p1(obs, jax.random.key(0))
    assert orders.shape == obs.on_hand.shape and bool(jnp.all(orders >= 0))

    rollout_mod = importlib.import_module("orpr_jax.sim.rollout")
    m1 = orpr_jax.evaluate(env, params, p1, jax.random.key(2), 30, 5)
    size = rollout_mod._evaluate_sums._cache_size()
    m2 = orpr_jax.evaluate(env, params, p2, jax.random.key(2), 30, 5)
    assert rollout_mod._evaluate_sums._cache_size() == size
    assert np.isfinite(float(m1["total_cost"])) and np.isfinite(float(m2["total_cost"]))
    # different weights pick different bins somewhere, so the runs differ
    assert not np.array_equal(p1.choose(obs, None), p2.choose(obs, None))


def test_policy_orders_follow_the_chosen_bin(tiny):
    _, _, _, obs = tiny
    config = _tiny_config(V_MAX, obs.sales_history.shape[1])
    v_values = jnp.arange(1, V_MAX + 1, dtype=jnp.float32)
    policy = make_foundation_policy(FoundationModel(config, rngs=nnx.Rngs(0)), v_values,
                                    window=14)
    logits = policy.logits(obs)
    assert logits.shape == (obs.on_hand.shape[0], V_MAX)
    v = v_values[jnp.argmax(logits, axis=-1)]
    expected = orpr_jax.policies.InventoryDays(v=v, window=14)(obs, None)
    np.testing.assert_allclose(policy(obs, jax.random.key(0)), expected, rtol=1e-6)


def test_expected_v_decoding(tiny):
    _, _, _, obs = tiny
    config = _tiny_config(V_MAX, obs.sales_history.shape[1])
    v_values = jnp.arange(1, V_MAX + 1, dtype=jnp.float32)
    model = FoundationModel(config, rngs=nnx.Rngs(0))
    policy = make_foundation_policy(model, v_values, window=14, expected_v=True)
    probs = jax.nn.softmax(policy.logits(obs), axis=-1)
    v = probs @ v_values  # the mean of v under the predicted distribution
    assert bool(jnp.all((v >= 1) & (v <= V_MAX)))
    expected = orpr_jax.policies.InventoryDays(v=v, window=14)(obs, None)
    np.testing.assert_allclose(policy(obs, jax.random.key(0)), expected, rtol=1e-5)


def test_greedy_vs_sampled(tiny):
    _, _, _, obs = tiny
    config = _tiny_config(V_MAX, obs.sales_history.shape[1])
    model = FoundationModel(config, rngs=nnx.Rngs(0))
    v_values = jnp.arange(1, V_MAX + 1, dtype=jnp.float32)
    greedy = make_foundation_policy(model, v_values, greedy=True)
    sampled = make_foundation_policy(model, v_values, greedy=False)
    # greedy ignores the key; sampling depends on it
    np.testing.assert_array_equal(greedy.choose(obs, jax.random.key(0)),
                                  greedy.choose(obs, jax.random.key(1)))
    s0, s1 = sampled.choose(obs, jax.random.key(0)), sampled.choose(obs, jax.random.key(1))
    assert not np.array_equal(s0, s1)
    assert bool(jnp.all((s0 >= 0) & (s0 < V_MAX)))
    # sampling follows the softmax: with sharpened logits it matches the argmax
    sharp_model = nnx.clone(model)
    sharp_model.policy_head.kernel[...] = sharp_model.policy_head.kernel[...] * 1e4
    sharp = make_foundation_policy(sharp_model, v_values, greedy=False)
    np.testing.assert_array_equal(sharp.choose(obs, jax.random.key(0)),
                                  jnp.argmax(sharp.logits(obs), axis=-1))
    # jit equals no-jit for the adapter
    np.testing.assert_allclose(jax.jit(greedy.__call__)(obs, jax.random.key(0)),
                               greedy(obs, jax.random.key(0)), rtol=1e-5)


def test_make_foundation_policy_errors():
    model = FoundationModel(_tiny_config(7, 28), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"v_values has shape \(6,\); expected \[V=7\]"):
        make_foundation_policy(model, jnp.arange(6, dtype=jnp.float32))
    with pytest.raises(ValueError, match=r"window=0 is not allowed"):
        make_foundation_policy(model, jnp.arange(7, dtype=jnp.float32), window=0)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"preset='huge' is not allowed"):
        FoundationConfig.preset("huge", 30, 28, 4)
    assert FoundationConfig.preset("small", 30, 28, 4) == FoundationConfig.small(30, 28, 4)
