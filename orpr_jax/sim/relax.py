"""Exact operators of the dynamics and their smooth surrogates.

Each function takes ``relaxed`` (a Python bool, static) and a temperature ``tau``. With
``relaxed=False`` it is the exact operator and ``tau`` is unused, so the exact simulator
compiles to plain ``min``/``max``/``round``. With ``relaxed=True`` it is a smooth surrogate
that tends to the exact operator as ``tau -> 0``:

* ``relu(x)`` -> ``tau * softplus(x / tau)``;
* ``minimum(a, b)`` = ``a - relu(a - b)`` with the relu above;
* ``step(x)`` (the indicator ``x > 0``) -> ``sigmoid(x / tau)``;
* ``round(x)`` -> the soft rounding of Agustsson & Theis (2020), smooth and exact at the
  half-integers' neighbours as ``tau -> 0``;
* ``ceil(x)`` -> ``soft_round(x + 0.5)``.

The exact ``round``/``ceil``/``floor`` keep their exact values but pass gradients straight
through (derivative 1, the straight-through estimator of Bengio et al. 2013), so pathwise
gradients through the exact simulator are not zeroed by the whole-unit rounding of orders.

References:
    E. Agustsson and L. Theis. Universally Quantized Neural Compression. NeurIPS 2020
    (soft rounding).
    Y. Bengio, N. Léonard, A. Courville. Estimating or Propagating Gradients Through
    Stochastic Neurons for Conditional Computation. 2013 (straight-through estimator).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _straight_through(fn):
    @jax.custom_jvp
    def op(x):
        return fn(x)

    @op.defjvp
    def _(primals, tangents):
        (x,), (dx,) = primals, tangents
        return fn(x), dx

    return op


_ste_round = _straight_through(jnp.round)
_ste_ceil = _straight_through(jnp.ceil)
_ste_floor = _straight_through(jnp.floor)


def relu(x: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """``max(x, 0)`` or ``tau * softplus(x / tau)``."""
    if not relaxed:
        return jnp.maximum(x, 0.0)
    return tau * jax.nn.softplus(x / tau)


def minimum(a: jax.Array, b: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """``min(a, b)`` or its softplus surrogate ``a - tau * softplus((a - b) / tau)``."""
    if not relaxed:
        return jnp.minimum(a, b)
    return a - relu(a - b, tau, True)


def step(x: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """Indicator ``1[x > 0]`` as a float, or ``sigmoid(x / tau)``."""
    if not relaxed:
        return (x > 0).astype(x.dtype)
    return jax.nn.sigmoid(x / tau)


def soft_round(x: jax.Array, tau: jax.Array) -> jax.Array:
    """Smooth rounding: ``floor(x) + 1/2 + tanh(r / tau) / (2 tanh(1 / (2 tau)))``.

    ``r = x - floor(x) - 1/2``. Continuous and differentiable everywhere (the pieces meet
    at the integers with equal value and slope), equal to ``x`` as ``tau -> inf`` and to
    ``round(x)`` as ``tau -> 0``.
    """
    base = jnp.floor(x) + 0.5
    r = x - base
    return base + jnp.tanh(r / tau) / (2.0 * jnp.tanh(0.5 / tau))


def round_(x: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """``round(x)`` (half to even; straight-through gradient) or :func:`soft_round`."""
    if not relaxed:
        return _ste_round(x)
    return soft_round(x, tau)


def ceil(x: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """``ceil(x)`` or ``soft_round(x + 0.5)``."""
    if not relaxed:
        return _ste_ceil(x)
    return soft_round(x + 0.5, tau)


def floor(x: jax.Array, tau: jax.Array, relaxed: bool) -> jax.Array:
    """``floor(x)`` or ``soft_round(x - 0.5)``."""
    if not relaxed:
        return _ste_floor(x)
    return soft_round(x - 0.5, tau)
