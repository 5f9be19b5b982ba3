"""Checkpoints: round trip of parameters and PRNG state, refusal of other models or data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from orpr_jax.train import latest_step, restore_checkpoint
from orpr_jax.train.checkpoint import model_signature, save_checkpoint
from tests.train.tiny_models import TinyMLP, param_leaves


def test_checkpoint_round_trip(tmp_path):
    model = TinyMLP(4, 8, rngs=nnx.Rngs(1), dropout=0.1)
    params = nnx.state(model, nnx.Param)
    rest = nnx.state(model, nnx.Not(nnx.Param))  # holds a PRNG key array
    sig = model_signature(params, model.config)
    save_checkpoint(tmp_path, 7, {"params": params, "rest": rest}, {"data_hash": "d", **sig})
    assert latest_step(tmp_path) == 7
    fresh = TinyMLP(4, 8, rngs=nnx.Rngs(2), dropout=0.1)
    templates = {
        "params": nnx.state(fresh, nnx.Param),
        "rest": nnx.state(fresh, nnx.Not(nnx.Param)),
    }
    arrays, meta = restore_checkpoint(tmp_path, templates, {"data_hash": "d", **sig})
    assert meta["step"] == 7
    for x, z in zip(jax.tree.leaves(params), jax.tree.leaves(arrays["params"]), strict=True):
        assert jnp.array_equal(x, z)
    for x, z in zip(jax.tree.leaves(rest), jax.tree.leaves(arrays["rest"]), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert jnp.array_equal(jax.random.key_data(x), jax.random.key_data(z))
        else:
            assert jnp.array_equal(x, z)
    nnx.update(fresh, arrays["params"])
    for x, z in zip(param_leaves(model), param_leaves(fresh), strict=True):
        assert jnp.array_equal(x, z)


def test_restore_rejects_other_model_config_or_data_hash(tmp_path):
    model = TinyMLP(4, 8, rngs=nnx.Rngs(1))
    params = nnx.state(model, nnx.Param)
    sig = model_signature(params, model.config)
    save_checkpoint(tmp_path, 1, {"params": params}, {"data_hash": "d1", **sig})
    with pytest.raises(ValueError, match="data hash 'd1'.*'d2'"):
        restore_checkpoint(tmp_path, {"params": params}, {"data_hash": "d2", **sig})
    wider = TinyMLP(4, 16, rngs=nnx.Rngs(1))
    wider_params = nnx.state(wider, nnx.Param)
    with pytest.raises(ValueError, match=r"parameter 'l1/bias' has shape \(8,\).*\(16,\)"):
        restore_checkpoint(
            tmp_path,
            {"params": wider_params},
            {"data_hash": "d1", **model_signature(wider_params, wider.config)},
        )
    # Same shapes, different config (dropout): also refused.
    other = dict(model.config, dropout=0.5)
    with pytest.raises(ValueError, match="model config"):
        restore_checkpoint(
            tmp_path, {"params": params}, {"data_hash": "d1", **model_signature(params, other)}
        )
