"""The arithmetic of pre-training: the (ordinal) cross-entropy, the evaluation sums and
the jitted train and eval steps of one model graph (used by :mod:`orpr_jax.train.pretrain.run`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Float, Int


def _soft_targets(
    y: Int[Array, " B"], num_bins: int, ordinal_sigma: float
) -> Float[Array, "B V"]:
    if ordinal_sigma == 0:
        return jax.nn.one_hot(y, num_bins, dtype=jnp.float32)
    bins = jnp.arange(num_bins, dtype=jnp.float32)
    dist = bins[None, :] - y[:, None].astype(jnp.float32)
    weights = jnp.exp(-0.5 * jnp.square(dist / jnp.float32(ordinal_sigma)))
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def cross_entropy_loss(
    logits: Float[Array, "B V"],
    y: Int[Array, " B"],
    num_bins: int,
    ordinal_sigma: float = 0.0,
    weights: Float[Array, " B"] | None = None,
) -> Float[Array, ""]:
    r"""Mean cross-entropy of bin logits against hard or ordinal soft targets.

    With ``ordinal_sigma = 0`` the target is one-hot on the label:
    :math:`\ell = -\log \mathrm{softmax}(z)_y`. With :math:`\sigma > 0` it is a discretised
    Gaussian centred on the label, :math:`q_k \propto \exp(-(k - y)^2 / 2\sigma^2)` for
    :math:`k \in [0, V)`, and :math:`\ell = -\sum_k q_k \log \mathrm{softmax}(z)_k`.

    Args:
        logits: ``[B, V]`` unnormalised log-probabilities over the ``V`` order bins.
        y: ``[B]`` int label bins in ``[0, V)``.
        num_bins: ``V`` (static).
        ordinal_sigma: soft-target standard deviation in bins (static), >= 0.
        weights: optional ``[B]`` example weights (e.g. 0 for padding); the mean is
            weighted, so it is over the examples with weight > 0.

    Returns:
        Scalar float32 mean loss.
    """
    targets = _soft_targets(y, num_bins, ordinal_sigma)
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    per_example = -jnp.sum(targets * log_p, axis=-1)
    if weights is None:
        return jnp.mean(per_example)
    weights = weights.astype(jnp.float32)
    return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def eval_metrics(
    logits: Float[Array, "B V"], y: Int[Array, " B"], weights: Float[Array, " B"]
) -> dict[str, Float[Array, ""]]:
    """Weighted sums of accuracy, within-one-bin accuracy and absolute bin error.

    Returns sums (not means) so that chunks can be added up before dividing by the
    total weight.
    """
    pred = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    err = jnp.abs(pred - y.astype(jnp.int32)).astype(jnp.float32)
    w = weights.astype(jnp.float32)
    return {
        "accuracy": jnp.sum(w * (err == 0).astype(jnp.float32)),
        "within_one": jnp.sum(w * (err <= 1).astype(jnp.float32)),
        "mae_bins": jnp.sum(w * err),
    }


def _logits_of(output: Any) -> jax.Array:
    # The foundation model returns (logits, value); a bare classifier returns logits.
    return output[0] if isinstance(output, tuple) else output


class _Steps:
    """The jitted train and eval steps for one model graph and config."""

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        tx: optax.GradientTransformation,
        num_bins: int,
        ordinal_sigma: float,
    ) -> None:
        def loss_fn(params, rest, inputs, y):
            # copy=True: fresh Variables at this (grad) trace level, so the model may
            # update its non-parameter state (dropout RNG counters) while differentiated.
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = _logits_of(model(inputs, deterministic=False))
            loss = cross_entropy_loss(logits, y, num_bins, ordinal_sigma)
            _, new_rest = nnx.split(model, nnx.Param, ...)[1:]
            return loss, new_rest

        @jax.jit
        def train_step(params, opt_state, rest, inputs, y):
            (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, rest, inputs, y
            )
            # optax's Adam bias correction computes ``b1 ** count`` (Python float ** int32),
            # which strict dtype promotion rejects; the standard rule gives float32 there.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, opt_state, new_rest, loss

        @jax.jit
        def eval_step(params, rest, inputs, y, weights):
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = _logits_of(model(inputs, deterministic=True))
            loss = cross_entropy_loss(logits, y, num_bins, ordinal_sigma, weights)
            sums = eval_metrics(logits, y, weights)
            sums["loss"] = loss * jnp.sum(weights.astype(jnp.float32))
            return sums

        self.train_step = train_step
        self.eval_step = eval_step
