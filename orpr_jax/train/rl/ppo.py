"""PPO's update: GAE on the rollout, then minibatch epochs of the clipped objective.

:func:`sgd` (the epochs over a flattened batch) and :func:`sgd_batch` serve RLOO too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from orpr_jax.train.rl.config import HParams
from orpr_jax.train.rl.losses import ppo_loss_terms, smdp_gae
from orpr_jax.train.rl.rollout import Transition, dual_ascent, rollout, traj_metrics, value_of
from orpr_jax.train.rl.setup import Runner, Setup, _set_lr, _tx_update, lr_at


def sgd(s: Setup, runner: Runner, batch, hp: HParams, key):
    """``num_epochs`` passes of minibatch PPO updates over the flattened ``batch``."""
    config, agent = s.config, s.agent
    n = batch["decide"].shape[0]
    mb = n // config.num_minibatches
    warm = config.algorithm == "ppo" and config.critic_warmup_updates > 0
    actor_weight = ((runner.update >= config.critic_warmup_updates).astype(jnp.float32)
                    if warm else 1.0)
    # During the warm-up only the critic learns, and only the critic's Adam state moves.
    freeze_actor = runner.update < config.critic_warmup_updates if warm else None

    def loss_fn(params, mbatch):
        logits, values = agent.apply(params, mbatch["obs"])
        return ppo_loss_terms(logits, values, mbatch["ref_logits"], mbatch, hp,
                              clip_value=config.clip_value and config.algorithm == "ppo",
                              normalize=config.normalize_advantages,
                              actor_weight=actor_weight)

    def minibatch(carry, mbatch):
        params, opt_state = carry
        (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mbatch)
        updates, opt_state = _tx_update(s.tx, grads, opt_state, params, freeze_actor)
        params = optax.apply_updates(params, updates)
        terms["grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state), terms

    def epoch(carry, ekey):
        # A fresh permutation per epoch; the n mod num_minibatches left over are skipped.
        perm = jax.random.permutation(ekey, n)[: mb * config.num_minibatches]
        shuffled = jax.tree.map(
            lambda x: jnp.take(x, perm, axis=0).reshape((config.num_minibatches, mb)
                                                         + x.shape[1:]), batch)
        return jax.lax.scan(minibatch, carry, shuffled)

    (params, opt_state), terms = jax.lax.scan(
        epoch, (runner.params, runner.opt_state),
        jax.random.split(key, config.num_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, terms)


def sgd_batch(traj: Transition, advantage, ret) -> dict:
    """The batch :func:`sgd` reads: ``traj``'s fields with the advantages and targets."""
    return {"obs": traj.obs, "action": traj.action, "log_prob": traj.log_prob,
            "value": traj.value, "advantage": advantage, "return": ret,
            "ref_logits": traj.ref_logits, "decide": traj.decide, "expert": traj.expert}


def critic_days(decide: jax.Array) -> jax.Array:
    """``[T, R]`` 1.0 on the days the network ran for every row (some row reviewed; see
    :func:`~orpr_jax.train.rl.rollout.act`): the days the critic is trained on."""
    ran = jnp.any(decide > 0, axis=1, keepdims=True)
    return jnp.broadcast_to(ran, decide.shape).astype(jnp.float32)


def flatten(tree):
    """Merge the leading ``[T, R]`` axes of every leaf into one ``[T * R]`` axis."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


def ppo_keys(s: Setup, runner: Runner):
    """``(next key, [T] policy keys, [T] step keys, epoch key)`` of a PPO update."""
    key, pkey, skey, ekey = jax.random.split(runner.key, 4)
    return (key, jax.random.split(pkey, s.config.num_steps),
            jax.random.split(skey, s.config.num_steps), ekey)


def update_ppo(s: Setup, runner: Runner, hp: HParams):
    """One PPO update: a rollout of ``num_steps`` days, then :func:`ppo_learn`."""
    key, pkeys, skeys, ekey = ppo_keys(s, runner)
    state, obs, traj = rollout(s, runner.params, runner.env_state, runner.obs, pkeys, skeys,
                               runner.lagrange, hp)
    return ppo_learn(s, runner, state, obs, traj, key, ekey, hp)


def ppo_learn(s: Setup, runner: Runner, state, obs, traj: Transition, key, ekey,
              hp: HParams):
    """The learning half of a PPO update, given the rollout's ``[T, R]`` transitions."""
    config = s.config
    runner = runner.replace(opt_state=_set_lr(runner.opt_state, lr_at(s, runner, hp)))
    stats = runner.value_stats
    mean, std = stats.mean_std()
    # The critic's outputs are standardised returns when normalize_values is on.
    denorm = (lambda v: v * std + mean) if config.normalize_values else (lambda v: v)  # noqa: E731
    values = denorm(traj.value)
    last_value = denorm(value_of(s, runner.params, obs))
    adv, _ = smdp_gae(traj.reward, values, traj.decide, last_value, hp.gamma, hp.gae_lambda)
    # The critic learns on every day the network ran (not only on each row's review days):
    # the rollout's last interval bootstraps from V(obs_T), and day T is a review day of
    # few rows, so V must be right on the other days too.
    valued = critic_days(traj.decide)
    _, ret = smdp_gae(traj.reward, values, valued, last_value, hp.gamma, hp.gae_lambda)
    target = ret
    if config.normalize_values:
        stats = stats.updated(ret, valued, config.value_norm_decay)
        mean, std = stats.mean_std()
        target = (ret - mean) / std
    # Value clipping bounds the change of the critic's output, so it clips around what
    # the critic output in the rollout (traj.value), in the scale it was output in.
    batch = {**sgd_batch(traj, adv, target), "value_mask": valued}
    params, opt_state, terms = sgd(s, runner, flatten(batch), hp, ekey)
    lagrange, rates = dual_ascent(s, runner.lagrange, traj.served, hp)
    metrics = {**traj_metrics(traj, runner.lagrange, rates), **terms,
               "value_mean": mean, "value_std": std}
    return Runner(params=params, opt_state=opt_state, env_state=state, obs=obs, key=key,
                  lagrange=lagrange, update=runner.update + 1, value_stats=stats), metrics
