"""The pure loss terms: GAE over decision intervals, RLOO advantages, the PPO objective, KL.

Every function is pure and jittable; shapes are in the docstrings (``T`` days, ``R`` rows,
``N`` flattened samples, ``V`` bins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from orpr_jax.train.rl.config import HParams


def _entropy(logits: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -(jnp.exp(logp) * logp).sum(axis=-1)


def categorical_kl(logits: jax.Array, ref_logits: jax.Array) -> jax.Array:
    """``KL(softmax(logits) || softmax(ref_logits))`` over the last axis (``[..., V]`` ->
    ``[...]``)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    logq = jax.nn.log_softmax(ref_logits, axis=-1)
    return (jnp.exp(logp) * (logp - logq)).sum(axis=-1)


def expert_cross_entropy(logits: jax.Array, expert: jax.Array) -> jax.Array:
    """``-log pi(expert)`` where ``expert >= 0``, else 0 (``[..., V]`` logits, ``[...]``
    expert bins -> ``[...]``)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.maximum(expert, 0)[..., None], axis=-1)[..., 0]
    return jnp.where(expert >= 0, -picked, 0.0)


def smdp_gae(
    rewards: jax.Array,
    values: jax.Array,
    decide: jax.Array,
    last_value: jax.Array,
    gamma: jax.Array,
    lam: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """GAE over decision intervals (``[T, R]`` inputs; ``last_value`` ``[R]``).

    A row decides on the days where ``decide`` is 1; the reward of a decision on day t whose
    next decision is on day t + k is ``sum_j gamma^j r_{t+j}`` (j < k), its TD error is
    ``that + gamma^k V_{t+k} - V_t`` and ``A_t = delta_t + (gamma^k lambda) A_{t+k}``.
    The last interval bootstraps from ``last_value``. With a decision every day this is the
    usual GAE. Entries on non-decision days are 0.

    Returns:
        ``(advantages, returns)``, both ``[T, R]``.
    """

    def body(carry, x):
        acc_r, acc_disc, next_v, next_a = carry
        r, v, d = x
        acc_r = r + gamma * acc_r
        acc_disc = gamma * acc_disc
        delta = acc_r + acc_disc * next_v - v
        adv = delta + acc_disc * lam * next_a
        d = d > 0
        new = (jnp.where(d, 0.0, acc_r), jnp.where(d, 1.0, acc_disc),
               jnp.where(d, v, next_v), jnp.where(d, adv, next_a))
        return new, jnp.where(d, adv, 0.0)

    zeros = jnp.zeros_like(last_value)
    init = (zeros, jnp.ones_like(last_value), last_value, zeros)
    _, adv = jax.lax.scan(body, init, (rewards, values, decide), reverse=True)
    return adv, jnp.where(decide > 0, adv + values, 0.0)


def rloo_advantages(returns: jax.Array) -> jax.Array:
    """Leave-one-out advantages over the leading ``k`` axis: ``R_i - mean_{j != i} R_j``
    (``[k, R]`` segment returns -> ``[k, R]``)."""
    k = returns.shape[0]
    total = returns.sum(axis=0, keepdims=True)
    return returns - (total - returns) / (k - 1)


def rloo_to_go_advantages(rewards: jax.Array) -> jax.Array:
    """Leave-one-out advantages of the reward-to-go (``[k, T, R]`` rewards of ``k``
    copies on common random numbers -> ``[k, T, R]``).

    A decision on day t is credited with ``G_i(t) = sum_{t' >= t} r_i(t')`` minus the mean
    of the other copies' ``G_j(t)``: rewards earned before it are not its doing (the
    segment's end still truncates the consequences of its last decisions).
    """
    to_go = jnp.flip(jnp.cumsum(jnp.flip(rewards, axis=1), axis=1), axis=1)
    return rloo_advantages(to_go)


def ppo_loss_terms(
    logits: jax.Array,
    values: jax.Array,
    ref_logits: jax.Array,
    batch: dict[str, jax.Array],
    hp: HParams,
    *,
    clip_value: bool = True,
    normalize: bool = True,
    actor_weight: jax.Array | float = 1.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The clipped PPO objective with KL anchor and expert term, masked by ``decide``.

    ``logits`` and ``ref_logits`` are ``[N, V]``, ``values`` ``[N]``; ``batch`` holds
    ``action``, ``log_prob`` (old), ``value`` (old), ``advantage``, ``return``, ``decide``
    and ``expert``, all ``[N]``, and optionally ``value_mask`` ``[N]``: the samples the
    critic learns on (default ``decide``; PPO trains it on every day). ``actor_weight``
    scales every actor term (0 trains the critic only). Returns ``(loss, terms)``.
    """
    w = batch["decide"].astype(jnp.float32)
    n = jnp.maximum(w.sum(), 1.0)
    guided = (batch["expert"] >= 0).astype(jnp.float32) * w

    def mean(x):
        return (x * w).sum() / n

    adv = batch["advantage"]
    if normalize:
        mu = mean(adv)
        sd = jnp.sqrt(mean((adv - mu) ** 2))
        adv = (adv - mu) / (sd + 1e-8)
    logp_all = jax.nn.log_softmax(logits, axis=-1)
    logp = jnp.take_along_axis(logp_all, batch["action"][:, None], axis=-1)[:, 0]
    ratio = jnp.exp(logp - batch["log_prob"])
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - hp.clip_eps, 1.0 + hp.clip_eps) * adv)
    v_err = (values - batch["return"]) ** 2
    if clip_value:
        v_clip = batch["value"] + jnp.clip(values - batch["value"], -hp.clip_eps, hp.clip_eps)
        v_err = jnp.maximum(v_err, (v_clip - batch["return"]) ** 2)
    wv = batch.get("value_mask", batch["decide"]).astype(jnp.float32)
    value_loss = 0.5 * (v_err * wv).sum() / jnp.maximum(wv.sum(), 1.0)
    ent = _entropy(logits)
    kl = categorical_kl(logits, jax.lax.stop_gradient(ref_logits))
    ce = expert_cross_entropy(logits, batch["expert"])
    expert = (ce * w).sum() / jnp.maximum(guided.sum(), 1.0)
    terms = {
        "policy_loss": mean(pg),
        "value_loss": value_loss,
        "entropy": mean(ent),
        "kl_ref": mean(kl),
        "expert_ce": expert,
        "approx_kl": mean((ratio - 1.0) - (logp - batch["log_prob"])),
        "clip_frac": mean((jnp.abs(ratio - 1.0) > hp.clip_eps).astype(jnp.float32)),
    }
    actor = (terms["policy_loss"] - hp.ent_coef * terms["entropy"]
             + hp.kl_coef * terms["kl_ref"] + hp.expert_weight * expert)
    loss = actor_weight * actor + hp.vf_coef * terms["value_loss"]
    return loss, terms
