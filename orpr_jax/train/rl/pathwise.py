"""The pathwise update: every row plays the expected action and the segment's loss is
differentiated through the simulator's days (backpropagation through time)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from orpr_jax.train.rl.config import HParams
from orpr_jax.train.rl.losses import categorical_kl, expert_cross_entropy
from orpr_jax.train.rl.rollout import _day_reward, _expert_today, dual_ascent, rollout_metrics
from orpr_jax.train.rl.setup import Runner, Setup, _set_lr, _tx_update, lr_at


def pathwise_loss(s: Setup, params, state, obs, step_keys, lagrange, hp: HParams):
    """``(loss, aux)`` of ``[T]`` days from ``(state, obs)``: minus the mean reward plus the
    KL and expert terms; ``aux`` holds the final state and the days' ``[T, R]`` outcomes."""
    agent, task = s.agent, s.task

    def day(carry, skey):
        state, obs = carry
        logits, _ = agent.apply(params, obs)
        q = agent.expected_orders(obs, logits)
        obs2, state2, _, _, _, info = s.env.step(skey, state, q, s.sim_params)
        out = info["outcome"]
        reward, served = _day_reward(out, obs, task, lagrange, hp, s.config)
        decide = obs.is_review_day.astype(jnp.float32)
        ref_logits, _ = agent.apply(s.ref, obs)
        kl = categorical_kl(logits, jax.lax.stop_gradient(ref_logits)) * decide
        expert = _expert_today(task, state.t)
        ce = expert_cross_entropy(logits, expert) * decide
        guided = (expert >= 0).astype(jnp.float32) * decide
        return (state2, obs2), (reward, served, kl, ce, guided, decide, out.cost,
                                out.demand, out.sales)

    (state, obs), (reward, served, kl, ce, n_exp, decide, cost, demand, sales) = \
        jax.lax.scan(day, (state, obs), step_keys)
    n_dec = jnp.maximum(decide.sum(), 1.0)
    kl_m, ce_m = kl.sum() / n_dec, ce.sum() / jnp.maximum(n_exp.sum(), 1.0)
    loss = -reward.mean() + hp.kl_coef * kl_m + hp.expert_weight * ce_m
    aux = (state, obs, reward, served, kl_m, ce_m, cost, demand, sales)
    return loss, aux


def update_pathwise(s: Setup, runner: Runner, hp: HParams):
    """One pathwise update: the gradient of :func:`pathwise_loss` over ``num_steps`` days."""
    key, skey = jax.random.split(runner.key)
    opt_state = _set_lr(runner.opt_state, lr_at(s, runner, hp))
    state0 = jax.lax.stop_gradient(runner.env_state)
    (loss, aux), grads = jax.value_and_grad(functools.partial(pathwise_loss, s), has_aux=True)(
        runner.params, state0, runner.obs, jax.random.split(skey, s.config.num_steps),
        runner.lagrange, hp)
    state, obs, reward, served, kl_m, ce_m, cost, demand, sales = aux
    updates, opt_state = _tx_update(s.tx, grads, opt_state, runner.params)
    params = optax.apply_updates(runner.params, updates)
    lagrange, rates = dual_ascent(s, runner.lagrange, served, hp)
    metrics = {
        **rollout_metrics(reward, cost, served, demand, sales, runner.lagrange, rates),
        "loss": loss, "kl_ref": kl_m, "expert_ce": ce_m,
        "grad_norm": optax.tree.norm(grads),
    }
    return Runner(params=params, opt_state=opt_state, env_state=jax.lax.stop_gradient(state),
                  obs=jax.lax.stop_gradient(obs), key=key, lagrange=lagrange,
                  update=runner.update + 1, value_stats=runner.value_stats), metrics
