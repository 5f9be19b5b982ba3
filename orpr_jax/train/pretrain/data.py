"""The examples of a pre-training run: checks against the model, the row-wise
train/validation split and the batch order (used by :mod:`orpr_jax.train.pretrain.run`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Int

from orpr_jax.train.pretrain.steps import _logits_of


def split_by_row(
    row_ids: Int[Array, " N"] | np.ndarray, val_fraction: float, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into train and validation sets by whole rows.

    Every example of a row (one SKU-warehouse series) goes to the same side, so the
    validation loss measures generalisation to unseen series rather than to unseen days
    of series already trained on.

    Args:
        row_ids: ``[N]`` integer row id of each example.
        val_fraction: share of distinct rows held out, in [0, 1). With at least two rows
            and ``val_fraction > 0``, at least one row goes to each side.
        key: PRNG key choosing the held-out rows.

    Returns:
        ``(train_idx, val_idx)``: sorted ``int64`` example indices; disjoint, covering
        ``range(N)``. ``val_idx`` is empty when ``val_fraction == 0``.

    Raises:
        ValueError: if ``val_fraction`` is outside [0, 1), or if it is > 0 and there are
            fewer than two distinct rows.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction = {val_fraction!r} is out of range; expected [0, 1)")
    row_ids = np.asarray(row_ids)
    rows = np.unique(row_ids)
    if val_fraction == 0:
        return np.arange(row_ids.shape[0], dtype=np.int64), np.zeros((0,), np.int64)
    if rows.size < 2:
        raise ValueError(
            f"val_fraction = {val_fraction} needs at least 2 distinct rows; got {rows.size}"
        )
    n_val = min(max(1, round(val_fraction * rows.size)), rows.size - 1)
    order = np.asarray(jax.random.permutation(key, rows.size))
    val_rows = rows[order[:n_val]]
    is_val = np.isin(row_ids, val_rows)
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def _num_examples(inputs: Any) -> int:
    leaves = jax.tree.leaves(inputs)
    if not leaves:
        raise ValueError("inputs has no arrays")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"every input array needs the same leading (example) axis; got {sizes}")
    return sizes.pop()


def _validate(model: nnx.Module, inputs: Any, y: np.ndarray, row_ids: np.ndarray) -> int:
    """Check data against the model; return the number of bins ``V``."""
    n = _num_examples(inputs)
    if n == 0:
        raise ValueError("the data set is empty (0 examples)")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match inputs; got {y.shape}")
    if row_ids.shape != (n,):
        raise ValueError(f"row_ids must have shape ({n},) to match inputs; got {row_ids.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be integer bin labels; got dtype {y.dtype}")
    sample = jax.tree.map(lambda a: jnp.asarray(a[:1]), inputs)
    try:
        logits = _logits_of(model(sample, deterministic=True))
    except (TypeError, ValueError) as err:
        raise ValueError(f"inputs do not fit the model: {err}") from err
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ValueError(f"model logits must have shape [N, V]; got {logits.shape} for N = 1")
    num_bins = int(logits.shape[1])
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_bins:
        raise ValueError(f"labels must lie in [0, {num_bins}) (model bins); got [{lo}, {hi}]")
    if np.unique(y).size < 2:
        raise ValueError(f"single-class data set: every label is {lo}; nothing to learn")
    return num_bins


def _take(inputs: Any, idx: jax.Array) -> Any:
    return jax.tree.map(lambda a: a[idx], inputs)


def _batch_indices(batch_key: jax.Array, step: int, n_train: int, batch_size: int) -> np.ndarray:
    """Positions (into the train set) of the batch for 0-based step ``step``."""
    per_epoch = n_train // batch_size
    epoch, pos = divmod(step, per_epoch)
    perm = jax.random.permutation(jax.random.fold_in(batch_key, epoch), n_train)
    return np.asarray(perm[pos * batch_size : (pos + 1) * batch_size])
