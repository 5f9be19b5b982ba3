"""Tiny classifiers and data sets for the pre-training and checkpoint tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from orpr_jax.policies.features import ModelInputs

H, F_H, F_A, F_T = 4, 2, 3, 2


class TinyMLP(nnx.Module):
    """Small classifier over flattened ModelInputs; returns (logits, value) like the real one."""

    def __init__(self, num_bins: int, hidden: int, *, rngs: nnx.Rngs, dropout: float = 0.0):
        self.config = {"num_bins": num_bins, "hidden": hidden, "dropout": dropout}
        self.l1 = nnx.Linear(H * F_H + F_A + F_T, hidden, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        self.l2 = nnx.Linear(hidden, num_bins, rngs=rngs)

    def features(self, inputs: ModelInputs) -> jax.Array:
        n = inputs.history.shape[0]
        return jnp.concatenate(
            [inputs.history.reshape(n, -1), inputs.attrs, inputs.targets], axis=-1
        )

    def __call__(self, inputs: ModelInputs, *, deterministic: bool = True):
        x = self.drop(nnx.relu(self.l1(self.features(inputs))), deterministic=deterministic)
        logits = self.l2(x)
        return logits, jnp.zeros(logits.shape[:1], jnp.float32)


class Counter(nnx.Variable):
    """Non-parameter state counting training calls."""


class NaNAfter(TinyMLP):
    """Produces NaN logits from the ``after + 1``-th training call on."""

    def __init__(self, after: int, *, rngs: nnx.Rngs):
        super().__init__(4, 8, rngs=rngs)
        self.after = after
        self.calls = Counter(jnp.zeros((), jnp.int32))

    def __call__(self, inputs: ModelInputs, *, deterministic: bool = True):
        logits, value = super().__call__(inputs, deterministic=deterministic)
        if not deterministic:
            self.calls[...] = self.calls[...] + 1
        poison = jnp.where(self.calls[...] > self.after, jnp.nan, 0.0).astype(jnp.float32)
        return logits + poison, value


def make_data(n: int = 64, num_bins: int = 4, seed: int = 0, rows: int = 8):
    rng = np.random.default_rng(seed)
    inputs = ModelInputs(
        history=jnp.asarray(rng.normal(size=(n, H, F_H)), jnp.float32),
        attrs=jnp.asarray(rng.normal(size=(n, F_A)), jnp.float32),
        category=jnp.zeros((n,), jnp.int32),
        targets=jnp.asarray(rng.normal(size=(n, F_T)), jnp.float32),
    )
    y = np.arange(n, dtype=np.int32) % num_bins
    rng.shuffle(y)
    row_ids = np.arange(n) % rows
    return inputs, y, row_ids


def tiny_factory(hidden: int = 32, dropout: float = 0.0):
    return lambda rngs: TinyMLP(4, hidden, rngs=rngs, dropout=dropout)


def param_leaves(model: nnx.Module) -> list[jax.Array]:
    return jax.tree.leaves(nnx.state(model, nnx.Param))
