"""The fused rollout: one simulated day of every row as a :class:`Transition`.

Also the day's reward and service indicator, the expert bin of the day, the per-group
service rates with the dual ascent on the Lagrange multipliers, and the rollout metrics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from orpr_jax.policies.forecast import censored_forecast
from orpr_jax.sim.types import Observation
from orpr_jax.train.rl.config import HParams, RLConfig
from orpr_jax.train.rl.setup import Setup
from orpr_jax.train.rl.task import _LEVEL_EPS, Task, group_targets


@struct.dataclass
class Transition:
    """One simulated day of every row (leaves ``[R, ...]``; stacked ``[T, R, ...]``)."""

    obs: Observation
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    ref_logits: jax.Array
    decide: jax.Array
    reward: jax.Array
    cost: jax.Array
    served: jax.Array
    demand: jax.Array
    sales: jax.Array
    expert: jax.Array


#: Width (units) of the sigmoid whose slope stands in for the in-stock indicator's.
SERVICE_TEMPERATURE = 1.0


def service_surrogate(in_stock: jax.Array, obs: Observation) -> jax.Array:
    """``[R]`` the in-stock indicator with a gradient: its value is ``in_stock``, its
    derivative that of ``sigmoid((net - 1/2) / SERVICE_TEMPERATURE)`` in the day's net
    stock (straight-through). On the exact simulator the indicator is flat, so without
    this the pathwise loss gets no gradient from its service terms; PPO and RLOO read
    only the value, which is unchanged."""
    net = obs.on_hand - obs.backlog
    soft = jax.nn.sigmoid((net - 0.5) / SERVICE_TEMPERATURE)
    return in_stock + soft - jax.lax.stop_gradient(soft)


def _day_reward(out, obs: Observation, task: Task, lagrange, hp: HParams, cfg: RLConfig):
    """Per-row reward of one day and the day's service indicator."""
    level = jnp.maximum(censored_forecast(obs, obs.sales_history.shape[1]), _LEVEL_EPS)
    excess_days = jax.nn.relu(out.on_hand_end / level - hp.target_turnover)
    if cfg.service_metric == "in_stock":
        served = service_surrogate(out.in_stock, obs)
    else:
        served = jnp.where(out.demand > 0, out.filled / jnp.maximum(out.demand, 1e-6), 1.0)
    lam = lagrange[task.group]
    target = group_targets(task, hp, lagrange.shape[0])[task.group]
    reward = (-hp.cost_weight * out.cost / task.reward_scale
              - hp.turnover_weight * excess_days / hp.target_turnover
              + lam * (served - target))
    return reward, served


def _expert_today(task: Task, t: jax.Array) -> jax.Array:
    table = task.expert_bins
    return jnp.take(table, t % table.shape[0], axis=0)


def _group_rates(served, group, num_groups):
    """Mean of ``served`` (``[..., R]``) per group (``[G]``; 1 for an empty group)."""
    per_row = jnp.reshape(served, (-1, served.shape[-1]))
    num = jax.ops.segment_sum(per_row.sum(axis=0), group, num_groups)
    den = jax.ops.segment_sum(jnp.full(per_row.shape[1:], float(per_row.shape[0])), group,
                              num_groups)
    return jnp.where(den > 0, num / jnp.maximum(den, 1e-9), 1.0)


def act(s: Setup, params, obs: Observation, key: jax.Array, sample: bool):
    """``(action, log_prob, value, ref_logits)`` of every row: ``[R]`` each, the frozen
    reference's logits ``[R, V]``; zeros on days where no row reviews."""
    agent, r = s.agent, s.env.num_rows

    def run(_):
        logits, value = agent.apply(params, obs)
        if sample:
            a = jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
        else:
            a = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), a[:, None], axis=-1)[:, 0]
        # The frozen reference's logits, once per decision (not once per epoch).
        ref_logits, _ = agent.apply(s.ref, obs)
        return a, logp, value, ref_logits.astype(jnp.float32)

    def skip(_):
        z = jnp.zeros((r,), jnp.float32)
        return jnp.zeros((r,), jnp.int32), z, z, jnp.zeros((r, agent.num_bins), jnp.float32)

    # The network runs only on days where some row reviews.
    return jax.lax.cond(jnp.any(obs.is_review_day > 0), run, skip, None)


def day_step(s: Setup, params, state, obs, pkey, skey, lagrange, hp: HParams):
    """One simulated day of every row: ``((state, obs), transition)``."""
    a, logp, value, ref_logits = act(s, params, obs, pkey, True)
    q = s.agent.orders_of_bins(obs, a)
    obs2, state2, _, _, _, info = s.env.step(skey, state, q, s.sim_params)
    out = info["outcome"]
    reward, served = _day_reward(out, obs, s.task, lagrange, hp, s.config)
    tr = Transition(obs=obs, action=a, log_prob=logp, value=value, ref_logits=ref_logits,
                    decide=obs.is_review_day.astype(jnp.float32), reward=reward,
                    cost=out.cost, served=served, demand=out.demand, sales=out.sales,
                    expert=_expert_today(s.task, state.t))
    return (state2, obs2), tr


def rollout(s: Setup, params, state, obs, policy_keys, step_keys, lagrange, hp: HParams):
    """``num_steps`` days (one per ``[T]`` key pair): ``(state, obs, [T, R] transitions)``."""
    def day(carry, keys):
        return day_step(s, params, *carry, *keys, lagrange, hp)

    (state, obs), traj = jax.lax.scan(day, (state, obs), (policy_keys, step_keys))
    return state, obs, traj


def value_of(s: Setup, params, obs: Observation) -> jax.Array:
    """``[R]`` the critic's output (no gradient)."""
    return jax.lax.stop_gradient(s.agent.apply(params, obs)[1])


def dual_ascent(s: Setup, lagrange, served, hp: HParams):
    """``(new multipliers [G], service rates [G])`` after a rollout's ``served``."""
    rates = _group_rates(served, s.task.group, s.config.num_groups)
    target = group_targets(s.task, hp, s.config.num_groups)
    new = jnp.maximum(lagrange + hp.lagrange_lr * (target - rates), 0.0)
    return new, rates


def rollout_metrics(reward, cost, served, demand, sales, lagrange, rates) -> dict:
    """The logged means of a rollout (the multipliers before the dual step)."""
    total = demand.sum()
    return {
        "reward": reward.mean(),
        "cost_per_row_day": cost.mean(),
        "service": served.mean(),
        "fill_rate": jnp.where(total > 0, sales.sum() / jnp.maximum(total, 1e-9), 1.0),
        "lagrange_mean": lagrange.mean(),
        "service_rate_min": rates.min(),
    }


def traj_metrics(traj: Transition, lagrange, rates) -> dict:
    """:func:`rollout_metrics` of stacked transitions."""
    return rollout_metrics(traj.reward, traj.cost, traj.served, traj.demand, traj.sales,
                           lagrange, rates)
