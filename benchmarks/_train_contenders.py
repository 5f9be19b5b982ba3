"""The host-loop contender of the training benchmark (``bench_train.py``; not a test module).

:func:`make_host` builds the baseline from the public
:func:`orpr_jax.train.rl.make_ppo_parts` only: per update, one jitted ``parts.keys`` call,
a Python loop of ``num_steps`` calls of ``jax.jit(parts.day_step)``, one jitted call
stacking the days, then one call of ``jax.jit(parts.learn)``; and, for the breakdown, the
same rollout fused into one jitted ``lax.scan``.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp

from orpr_jax.train.rl import RLConfig, make_ppo_parts


def make_host(config: RLConfig, env, sim_params, agent) -> types.SimpleNamespace:
    """The host-driven baseline and the pieces the breakdown times.

    Returns a namespace of:

    * ``train(key, hp) -> (runner, [metrics per update])``: ``config.num_updates`` host
      updates from ``init(key, hp)``;
    * ``rollout(runner, hp) -> (state, obs, traj, next_key, epoch_key)``: one jitted
      ``keys`` call, ``num_steps`` calls of the jitted ``day_step``, one jitted stack;
    * ``learn``: ``jax.jit(parts.learn)``, called on ``rollout``'s output;
    * ``fused_rollout(runner, hp)``: the same rollout as one jitted ``lax.scan`` of
      ``day_step`` (the breakdown's reference for what fusing the days gives).
    """
    parts = make_ppo_parts(config, env, sim_params, agent)
    n_steps = config.num_steps
    init = jax.jit(parts.init)
    day = jax.jit(parts.day_step)
    learn = jax.jit(parts.learn)

    @jax.jit
    def keys(runner):
        # Tuples of T keys, so the day loop indexes a Python tuple (no slicing dispatch).
        key, pkeys, skeys, ekey = parts.keys(runner)
        return (key, tuple(pkeys[t] for t in range(n_steps)),
                tuple(skeys[t] for t in range(n_steps)), ekey)

    @jax.jit
    def stack(days):
        return jax.tree.map(lambda *xs: jnp.stack(xs), *days)

    def rollout(runner, hp):
        key, pkeys, skeys, ekey = keys(runner)
        state, obs, days = runner.env_state, runner.obs, []
        for t in range(n_steps):
            (state, obs), tr = day(runner.params, state, obs, pkeys[t], skeys[t],
                                   runner.lagrange, hp)
            days.append(tr)
        return state, obs, stack(tuple(days)), key, ekey

    def update(runner, hp):
        state, obs, traj, key, ekey = rollout(runner, hp)
        return learn(runner, state, obs, traj, key, ekey, hp)

    def train(key, hp):
        runner, metrics = init(key, hp), []
        for _ in range(config.num_updates):
            runner, m = update(runner, hp)
            metrics.append(m)
        return runner, metrics

    @jax.jit
    def fused_rollout(runner, hp):
        key, pkeys, skeys, ekey = parts.keys(runner)

        def body(carry, ks):
            return parts.day_step(runner.params, *carry, *ks, runner.lagrange, hp)

        (state, obs), traj = jax.lax.scan(body, (runner.env_state, runner.obs),
                                          (pkeys, skeys))
        return state, obs, traj, key, ekey

    return types.SimpleNamespace(init=init, train=train, rollout=rollout, learn=learn,
                                 fused_rollout=fused_rollout)
