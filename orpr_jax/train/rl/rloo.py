"""RLOO's update: ``rloo_k`` copies of every row on common random numbers, leave-one-out
advantages of their rewards-to-go (each decision credited with the rewards from its day
on), then PPO's clipped epochs (:func:`~.ppo.sgd`)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from orpr_jax.train.rl.config import HParams
from orpr_jax.train.rl.losses import rloo_to_go_advantages
from orpr_jax.train.rl.ppo import sgd, sgd_batch
from orpr_jax.train.rl.rollout import dual_ascent, rollout, traj_metrics
from orpr_jax.train.rl.setup import Runner, Setup, _set_lr, lr_at


def update_rloo(s: Setup, runner: Runner, hp: HParams):
    """One RLOO update; the run continues along copy 0."""
    config = s.config
    key, pkey, skey, ekey = jax.random.split(runner.key, 4)
    runner = runner.replace(opt_state=_set_lr(runner.opt_state, lr_at(s, runner, hp)))
    k = config.rloo_k
    step_keys = jax.random.split(skey, config.num_steps)  # shared: common random numbers
    policy_keys = jax.random.split(pkey, (k, config.num_steps))
    tile = lambda x: jnp.broadcast_to(x, (k,) + x.shape)  # noqa: E731
    states, obss, traj = jax.vmap(
        functools.partial(rollout, s), in_axes=(None, 0, 0, 0, None, None, None)
    )(runner.params, jax.tree.map(tile, runner.env_state), jax.tree.map(tile, runner.obs),
      policy_keys, step_keys, runner.lagrange, hp)
    # Each decision is credited with the rewards from its day on, not the whole segment's.
    adv = rloo_to_go_advantages(traj.reward)  # [k, T, R]
    batch = sgd_batch(traj, adv, jnp.zeros_like(adv))
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[3:]), batch)
    params, opt_state, terms = sgd(s, runner, flat, hp, ekey)
    lagrange, rates = dual_ascent(s, runner.lagrange, traj.served, hp)
    metrics = {**traj_metrics(traj, runner.lagrange, rates), **terms}
    first = lambda x: x[0]  # noqa: E731  the run continues along copy 0
    return Runner(params=params, opt_state=opt_state,
                  env_state=jax.tree.map(first, states), obs=jax.tree.map(first, obss),
                  key=key, lagrange=lagrange, update=runner.update + 1,
                  value_stats=runner.value_stats), metrics
