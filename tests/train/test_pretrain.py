"""Pre-training: loss values, split, overfitting, resume, failure paths (the checkpoint
round trip itself is in ``test_checkpoint.py``)."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from orpr_jax.train import (
    NonFiniteLossError,
    PretrainConfig,
    cross_entropy_loss,
    latest_step,
    pretrain,
    restore_checkpoint,
    split_by_row,
)
from orpr_jax.train.checkpoint import model_signature
from tests.train.tiny_models import F_H, H, NaNAfter, make_data, param_leaves, tiny_factory

FAST = dict(warmup_steps=2, clip_norm=1.0, weight_decay=0.0, learning_rate=1e-2)


# ---------------------------------------------------------------- loss and split


def test_cross_entropy_plain_hand_computed():
    # softmax(log [1, 2, 1]) = [1/4, 1/2, 1/4]; label 1 -> -log(1/2) = log 2;
    # label 0 -> -log(1/4) = 2 log 2. Mean = 1.5 log 2.
    logits = jnp.log(jnp.asarray([[1.0, 2.0, 1.0], [1.0, 2.0, 1.0]], jnp.float32))
    y = jnp.asarray([1, 0], jnp.int32)
    loss = cross_entropy_loss(logits, y, 3, 0.0)
    assert float(loss) == pytest.approx(1.5 * math.log(2), rel=1e-6)
    # weights [1, 0] keep only the first example: log 2.
    w = jnp.asarray([1.0, 0.0], jnp.float32)
    assert float(cross_entropy_loss(logits, y, 3, 0.0, w)) == pytest.approx(math.log(2), rel=1e-6)


def test_cross_entropy_ordinal_hand_computed():
    # sigma = 1, label 1, V = 3: weights [a, 1, a] with a = exp(-1/2), q = w / (1 + 2a).
    # p = [1/4, 1/2, 1/4]: loss = -(2a log(1/4) + log(1/2)) / (1 + 2a) = log2 (4a + 1)/(1 + 2a).
    a = math.exp(-0.5)
    logits = jnp.log(jnp.asarray([[1.0, 2.0, 1.0]], jnp.float32))
    loss = cross_entropy_loss(logits, jnp.asarray([1], jnp.int32), 3, 1.0)
    assert float(loss) == pytest.approx(math.log(2) * (4 * a + 1) / (1 + 2 * a), rel=1e-6)
    # Label 0 (edge), sigma = 1: weights [1, a, a^4], normalised; uniform logits give
    # loss = log 3 whatever the targets are.
    uniform = jnp.zeros((1, 3), jnp.float32)
    loss0 = cross_entropy_loss(uniform, jnp.asarray([0], jnp.int32), 3, 1.0)
    assert float(loss0) == pytest.approx(math.log(3), rel=1e-6)


def test_ordinal_loss_penalises_near_misses_less():
    # Predicting bin 2 for label 1 costs less than predicting bin 4 under ordinal targets.
    near = jnp.asarray([[0.0, 0.0, 5.0, 0.0, 0.0]], jnp.float32)
    far = jnp.asarray([[0.0, 0.0, 0.0, 0.0, 5.0]], jnp.float32)
    y = jnp.asarray([1], jnp.int32)
    assert float(cross_entropy_loss(near, y, 5, 1.0)) < float(cross_entropy_loss(far, y, 5, 1.0))
    # Plain cross-entropy cannot tell them apart.
    assert float(cross_entropy_loss(near, y, 5, 0.0)) == pytest.approx(
        float(cross_entropy_loss(far, y, 5, 0.0))
    )


def test_split_by_row_has_no_overlap_and_covers_all():
    row_ids = np.repeat(np.arange(20), 7)
    train, val = split_by_row(row_ids, 0.25, jax.random.key(3))
    assert set(row_ids[train]).isdisjoint(set(row_ids[val]))
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(row_ids.size))
    assert len(set(row_ids[val])) == 5
    again = split_by_row(row_ids, 0.25, jax.random.key(3))
    assert np.array_equal(again[1], val)
    train0, val0 = split_by_row(row_ids, 0.0, jax.random.key(3))
    assert val0.size == 0 and train0.size == row_ids.size
    with pytest.raises(ValueError, match="at least 2 distinct rows"):
        split_by_row(np.zeros(5, np.int64), 0.5, jax.random.key(0))
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_row(row_ids, 1.0, jax.random.key(0))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("learning_rate", -1.0),
        ("learning_rate", float("nan")),
        ("weight_decay", -0.1),
        ("warmup_steps", -1),
        ("total_steps", 0),
        ("clip_norm", 0.0),
        ("ordinal_sigma", -1.0),
        ("val_fraction", 1.0),
        ("eval_every", 0),
        ("patience", -1),
        ("checkpoint_every", 0),
        ("batch_size", 2.5),
        ("seed", True),
    ],
)
def test_config_validation_names_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"PretrainConfig\.{field} = .*expected"):
        PretrainConfig(**{field: value})


# ---------------------------------------------------------------- training


def test_overfits_tiny_data_set(tmp_path):
    inputs, y, row_ids = make_data()
    config = PretrainConfig(
        batch_size=64,
        total_steps=300,
        val_fraction=0.0,
        eval_every=50,
        patience=0,
        checkpoint_every=1000,
        **FAST,
    )
    result = pretrain(tiny_factory(64), inputs, y, row_ids, config, tmp_path, progress=False)
    logits, _ = result.model(inputs, deterministic=True)
    accuracy = float(jnp.mean((jnp.argmax(logits, -1) == jnp.asarray(y)).astype(jnp.float32)))
    assert accuracy == 1.0
    assert result.steps_done == 300 and not result.stopped_early
    assert result.history[-1]["val_accuracy"] == 1.0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [50, 100, 150, 200, 250, 300]
    assert set(json.loads(lines[0])) >= {
        "step",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_within_one",
        "val_mae_bins",
    }
    assert latest_step(tmp_path) == 300


def test_early_stopping_on_validation_loss(tmp_path):
    # Random labels: validation loss cannot improve for long once the model memorises.
    inputs, y, row_ids = make_data(n=96, rows=12)
    config = PretrainConfig(
        batch_size=32,
        total_steps=2000,
        val_fraction=0.34,
        eval_every=10,
        patience=3,
        checkpoint_every=1000,
        learning_rate=3e-2,
        warmup_steps=0,
    )
    result = pretrain(tiny_factory(64), inputs, y, row_ids, config, tmp_path, progress=False)
    assert result.stopped_early
    assert result.steps_done < 2000
    assert result.steps_done == result.best_step + 3 * 10
    best = min(entry["val_loss"] for entry in result.history)
    assert result.best_val_loss == pytest.approx(best)
    assert latest_step(tmp_path) == result.steps_done


def _final_params(run_dir, factory, config):
    model = factory(nnx.Rngs(config.seed))
    params = nnx.state(model, nnx.Param)
    arrays, meta = restore_checkpoint(
        run_dir, {"params": params}, {"data_hash": "h", **model_signature(params, model.config)}
    )
    return jax.tree.leaves(arrays["params"]), meta


def test_resume_replays_same_batches(tmp_path):
    inputs, y, row_ids = make_data()
    factory = tiny_factory(16, dropout=0.2)  # dropout exercises the restored RNG state
    config = PretrainConfig(
        batch_size=8,
        total_steps=40,
        val_fraction=0.25,
        eval_every=10,
        patience=0,
        checkpoint_every=10,
        **FAST,
    )
    a = pretrain(factory, inputs, y, row_ids, config, tmp_path / "a", data_hash="h", progress=False)
    b1 = pretrain(factory, inputs, y, row_ids, config, tmp_path / "b", data_hash="h",
                  progress=False, stop_at_step=20)
    assert b1.steps_done == 20 and latest_step(tmp_path / "b") == 20
    # Without resume=True an existing run is not overwritten.
    with pytest.raises(ValueError, match="resume=True"):
        pretrain(factory, inputs, y, row_ids, config, tmp_path / "b", data_hash="h", progress=False)
    b = pretrain(factory, inputs, y, row_ids, config, tmp_path / "b", data_hash="h",
                 progress=False, resume=True)
    assert b.steps_done == 40
    final_a, meta_a = _final_params(tmp_path / "a", factory, config)
    final_b, meta_b = _final_params(tmp_path / "b", factory, config)
    assert meta_a["step"] == meta_b["step"] == 40
    for x, z in zip(final_a, final_b, strict=True):
        assert jnp.array_equal(x, z)
    for x, z in zip(param_leaves(a.model), param_leaves(b.model), strict=True):
        assert jnp.array_equal(x, z)
    assert a.history == b.history
    assert a.best_step == b.best_step


def test_resume_with_other_data_hash_or_model_is_refused(tmp_path):
    inputs, y, row_ids = make_data()
    config = PretrainConfig(
        batch_size=8, total_steps=4, val_fraction=0.25, eval_every=2, checkpoint_every=2, **FAST
    )
    # progress=True exercises the rich progress bar once.
    pretrain(tiny_factory(8), inputs, y, row_ids, config, tmp_path, data_hash="a", progress=True)
    with pytest.raises(ValueError, match="data hash"):
        pretrain(tiny_factory(8), inputs, y, row_ids, config, tmp_path, data_hash="b",
                 resume=True, progress=False)
    with pytest.raises(ValueError, match="shape"):
        pretrain(tiny_factory(16), inputs, y, row_ids, config, tmp_path, data_hash="a",
                 resume=True, progress=False)
    with pytest.raises(ValueError, match=r"PretrainConfig\.batch_size was 8"):
        pretrain(tiny_factory(8), inputs, y, row_ids,
                 PretrainConfig(**{**config.__dict__, "batch_size": 16}), tmp_path,
                 data_hash="a", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    inputs, y, row_ids = make_data()
    factory = lambda rngs: NaNAfter(6, rngs=rngs)  # noqa: E731 - NaN from step 7 on
    config = PretrainConfig(
        batch_size=8, total_steps=20, val_fraction=0.25, eval_every=5, checkpoint_every=5, **FAST
    )
    with pytest.raises(FloatingPointError, match="step 7.*checkpoint \\(step 5\\)") as info:
        pretrain(factory, inputs, y, row_ids, config, tmp_path, data_hash="h", progress=False)
    assert isinstance(info.value, NonFiniteLossError)
    assert latest_step(tmp_path) == 5
    model = factory(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    rest = nnx.state(model, nnx.Not(nnx.Param))
    arrays, meta = restore_checkpoint(
        tmp_path,
        {"params": params, "rest": rest},
        {"data_hash": "h", **model_signature(params, model.config)},
    )
    assert meta["step"] == 5
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(arrays["params"]))
    assert int(arrays["rest"]["calls"][...]) == 5


# ---------------------------------------------------------------- bad input


def _quick_config(**overrides) -> PretrainConfig:
    return PretrainConfig(**{**dict(batch_size=8, total_steps=2, val_fraction=0.25), **overrides})


def test_labels_outside_bins_rejected(tmp_path):
    inputs, y, row_ids = make_data()
    bad = y.copy()
    bad[3] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\).*\[0, 4\]"):
        pretrain(tiny_factory(), inputs, bad, row_ids, _quick_config(), tmp_path, progress=False)
    bad[3] = -1
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        pretrain(tiny_factory(), inputs, bad, row_ids, _quick_config(), tmp_path, progress=False)


def test_empty_and_single_class_rejected(tmp_path):
    inputs, y, row_ids = make_data()
    with pytest.raises(ValueError, match="single-class"):
        pretrain(tiny_factory(), inputs, np.zeros_like(y), row_ids, _quick_config(), tmp_path,
                 progress=False)
    empty = jax.tree.map(lambda a: a[:0], inputs)
    with pytest.raises(ValueError, match="empty"):
        pretrain(
            tiny_factory(), empty, y[:0], row_ids[:0], _quick_config(), tmp_path, progress=False
        )


def test_wrong_shapes_rejected(tmp_path):
    inputs, y, row_ids = make_data()
    wrong = inputs.replace(history=jnp.zeros((64, H + 1, F_H), jnp.float32))
    with pytest.raises(ValueError, match="inputs do not fit the model"):
        pretrain(tiny_factory(), wrong, y, row_ids, _quick_config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"y must have shape \(64,\)"):
        pretrain(tiny_factory(), inputs, y[:10], row_ids, _quick_config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="leading"):
        mixed = inputs.replace(attrs=inputs.attrs[:10])
        pretrain(tiny_factory(), mixed, y, row_ids, _quick_config(), tmp_path, progress=False)


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_pretrains_real_foundation_model_on_labels(tmp_path):
    from orpr_jax import env_from_data
    from orpr_jax.data.synthetic import SyntheticSpec, generate
    from orpr_jax.labels import LabelConfig, label_decisions
    from orpr_jax.policies.features import inputs_from_labels
    from orpr_jax.policies.foundation import FoundationConfig, FoundationModel

    spec = SyntheticSpec(num_skus=30, num_warehouses=2, num_categories=3, num_days=110)
    env, params = env_from_data(generate(jax.random.key(5), spec), start=28, num_days=80)
    label_config = LabelConfig(v_max=12, max_horizon=20, stride=14)
    labels = label_decisions(env, params, jax.random.key(0), label_config)
    inputs, y, row_ids = inputs_from_labels(labels)
    model_config = FoundationConfig.small(
        num_bins=label_config.candidates.size,
        history_length=inputs.history.shape[1],
        num_categories=3,
    )
    config = PretrainConfig(
        batch_size=32,
        learning_rate=3e-3,
        warmup_steps=5,
        total_steps=40,
        val_fraction=0.2,
        eval_every=20,
        checkpoint_every=20,
        ordinal_sigma=1.0,
    )
    result = pretrain(lambda rngs: FoundationModel(model_config, rngs=rngs), inputs, y,
                      row_ids, config, tmp_path, data_hash="labels", progress=False)
    assert result.steps_done == 40 and [h["step"] for h in result.history] == [20, 40]
    assert all(math.isfinite(v) for h in result.history for v in h.values())
    # Better than a uniform guess over the V bins.
    assert result.best_val_loss < math.log(model_config.num_bins)
    logits, value = result.model(inputs, deterministic=True)
    assert logits.shape == (y.shape[0], model_config.num_bins) and value.shape == y.shape
    assert latest_step(tmp_path) == 40
    # A checkpoint of this model is refused by a differently sized one.
    other = FoundationConfig.small(
        num_bins=model_config.num_bins + 1, history_length=model_config.history_length,
        num_categories=3,
    )
    with pytest.raises(ValueError, match="shape"):
        pretrain(lambda rngs: FoundationModel(other, rngs=rngs), inputs, np.asarray(y), row_ids,
                 config, tmp_path, data_hash="labels", resume=True, progress=False)
