"""Alignment in the simulator: PPO, RLOO and pathwise gradients as one jitted program.

``train = make_train(config, env, sim_params, agent, task)`` returns a pure
``train(key, hparams) -> (runner, metrics)``: the whole run is nested ``lax.scan`` loops
(updates > rollout days > epochs > minibatches, the purejaxrl pattern), so
``jax.jit(train)`` compiles it once and ``jax.vmap(train)`` runs many seeds or traced
hyperparameters (:class:`HParams`: learning rate, clip, entropy, KL coefficient, reward
weights, ...) side by side. ``make_update`` exposes one update step for host loops with
progress, evaluation and checkpoints (:func:`orpr_jax.train.loop.fit`).

The three algorithms share the rollout, the reward and the policy code:

* **PPO**: clipped surrogate + value loss - entropy + ``kl_coef * KL(pi || pi_ref)`` +
  ``expert_weight * CE(pi, expert)`` in promotion windows; advantages by GAE over each
  row's decision intervals (a row decides only on its review days; the costs of the days
  until its next review are that decision's reward, discounted per day).
* **RLOO**: ``rloo_k`` copies of every row play the same days with the same demand and
  lead-time draws (common random numbers) but their own sampled decisions; a copy's
  advantage is its segment return minus the mean of the other copies' (leave-one-out), so
  no critic is needed; the same clipped surrogate, KL and expert terms.
* **Pathwise**: every row plays the expected action ``softmax(logits) @ values``; the
  loss is the scaled cost of the segment (+ the same service, turnover, KL and expert
  terms), differentiated through the simulator's days by backpropagation.

Rewards per row and day: ``-(cost_weight * cost / reward_scale)``
``- turnover_weight * relu(on_hand_end / level - target_turnover) / target_turnover``
``+ lagrange[group] * (served - service_target)`` where ``served`` is the day's in-stock
flag or filled share. The Lagrange multipliers (one per constraint group) are updated by
dual ascent after each rollout, ``lambda <- max(0, lambda + lagrange_lr * (target -
rate))``, and logged.

References:
    Schulman et al., "Proximal Policy Optimization Algorithms", 2017.
    Lu et al., "Discovered Policy Optimisation" (purejaxrl), NeurIPS 2022.
    Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style Optimization for Learning
    from Human Feedback in LLMs" (RLOO), ACL 2024.
    Alvo, Russo, Kanoria, "Neural Inventory Control in Networks via Hindsight
    Differentiable Policy Optimization", 2023 (pathwise gradients through the simulator).
    ORPR: "Pretrain-then-Reinforce" for inventory replenishment, arXiv:2512.19001.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from orpr_jax._validation import check_int
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import Observation, SimParams, SimState
from orpr_jax.train.agents import Agent

Algorithm = Literal["ppo", "rloo", "pathwise"]
ServiceMetric = Literal["in_stock", "fill_rate"]

_LEVEL_EPS = 0.1


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """Static settings of a training run (each fixes a shape or a loop count).

    Attributes:
        algorithm: ``"ppo"``, ``"rloo"`` or ``"pathwise"``.
        num_updates: updates in :func:`make_train`'s run.
        num_steps: days simulated per update (the rollout length).
        num_epochs: passes over each rollout (PPO/RLOO).
        num_minibatches: minibatches per epoch (PPO/RLOO); when they do not divide days x
            rows, each epoch skips the remainder of a fresh random permutation.
        rloo_k: sampled copies per row (RLOO, >= 2).
        max_grad_norm: global gradient-norm clip.
        num_groups: service-constraint groups (``task.group`` indexes them).
        service_metric: ``"in_stock"`` or ``"fill_rate"``.
        normalize_advantages: standardise advantages per minibatch (PPO/RLOO).
        clip_value: clip the value update to ``clip_eps`` around the old value (PPO's
            value clipping). It slows a critic whose returns are large, but without it the
            critic's large early gradients dominate the global-norm clip and starve the
            actor (on the classic lost-sales model PPO diverged without it in our runs).
        anneal_lr: decay the learning rate linearly to 0 over ``num_updates``.
        critic_warmup_updates: first updates that train only the value head (PPO), so a
            fresh critic on a pretrained actor does not drive the first policy steps with
            noise.
        normalize_values: the critic predicts returns standardised by running statistics
            (PPO; the value normalisation of MAPPO, Yu et al. 2022): targets are
            ``(return - mean) / std`` with a debiased moving average over updates
            (``value_norm_decay``), and GAE reads the de-standardised values. The value loss
            stays O(1) whatever the returns' scale, so it neither dominates the global-norm
            clip nor needs a scale-specific ``vf_coef``.
        value_norm_decay: decay per update of the running return statistics.
    """

    algorithm: Algorithm = "ppo"
    num_updates: int = 100
    num_steps: int = 32
    num_epochs: int = 4
    num_minibatches: int = 4
    rloo_k: int = 4
    max_grad_norm: float = 0.5
    num_groups: int = 1
    service_metric: ServiceMetric = "in_stock"
    normalize_advantages: bool = True
    clip_value: bool = True
    anneal_lr: bool = False
    critic_warmup_updates: int = 0
    normalize_values: bool = True
    value_norm_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.algorithm not in ("ppo", "rloo", "pathwise"):
            raise ValueError(f"algorithm={self.algorithm!r} is not allowed; use 'ppo', "
                             "'rloo' or 'pathwise'")
        if self.service_metric not in ("in_stock", "fill_rate"):
            raise ValueError(f"service_metric={self.service_metric!r} is not allowed; use "
                             "'in_stock' or 'fill_rate'")
        check_int("num_updates", self.num_updates, 1)
        check_int("num_steps", self.num_steps, 1)
        check_int("num_epochs", self.num_epochs, 1)
        check_int("num_minibatches", self.num_minibatches, 1)
        check_int("rloo_k", self.rloo_k, 2)
        check_int("num_groups", self.num_groups, 1)
        check_int("critic_warmup_updates", self.critic_warmup_updates, 0)
        if not (math.isfinite(self.value_norm_decay) and 0.0 <= self.value_norm_decay < 1.0):
            raise ValueError(f"value_norm_decay={self.value_norm_decay!r} is not allowed; "
                             "expected a number in [0, 1)")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm={self.max_grad_norm!r} is not allowed; "
                             "expected a finite number > 0")


#: Allowed range of each HParams field: (low, low included, high); high is included.
_HPARAM_RANGES: dict[str, tuple[float, bool, float]] = {
    "learning_rate": (0.0, False, 1.0),
    "clip_eps": (0.0, False, 10.0),
    "ent_coef": (0.0, True, 100.0),
    "vf_coef": (0.0, True, 100.0),
    "kl_coef": (0.0, True, 1e6),
    "gamma": (0.0, False, 1.0),
    "gae_lambda": (0.0, True, 1.0),
    "cost_weight": (0.0, True, 1e6),
    "turnover_weight": (0.0, True, 1e6),
    "expert_weight": (0.0, True, 1e6),
    "lagrange_lr": (0.0, True, 1e6),
    "service_target": (0.0, True, 1.0),
    "target_turnover": (0.0, False, 1e4),
}


@struct.dataclass
class HParams:
    """Traced hyperparameters (a pytree of scalars: ``vmap`` sweeps them).

    Build with :meth:`create`, which validates every value.
    """

    learning_rate: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    kl_coef: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    cost_weight: jax.Array
    turnover_weight: jax.Array
    expert_weight: jax.Array
    lagrange_lr: jax.Array
    service_target: jax.Array
    target_turnover: jax.Array

    @classmethod
    def create(
        cls,
        learning_rate: float = 3e-4,
        clip_eps: float = 0.2,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        kl_coef: float = 0.0,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        cost_weight: float = 1.0,
        turnover_weight: float = 0.0,
        expert_weight: float = 0.0,
        lagrange_lr: float = 0.0,
        service_target: float = 0.0,
        target_turnover: float = 14.0,
    ) -> HParams:
        """Validated hyperparameters.

        Raises:
            ValueError: naming the field, for a NaN/inf or out-of-range value.
        """
        values = dict(locals())
        values.pop("cls")
        for name, value in values.items():
            lo, closed, hi = _HPARAM_RANGES[name]
            x = float(value)
            above = x >= lo if closed else x > lo
            if not (math.isfinite(x) and above and x <= hi):
                raise ValueError(f"{name}={value!r} is not allowed; expected a finite "
                                 f"number in {'[' if closed else '('}{lo:g}, {hi:g}]")
        return cls(**{k: jnp.asarray(v, jnp.float32) for k, v in values.items()})


@struct.dataclass
class Task:
    """Per-row data of the objective (traced).

    Attributes:
        reward_scale: ``[R]`` costs are divided by this (e.g. penalty x mean demand).
        group: ``[R]`` int32 service-constraint group in ``[0, num_groups)``.
        expert_bins: ``[T, R]`` int32 expert bin on day ``t mod T``, ``-1`` where there is
            no expert decision (outside promotion windows).
    """

    reward_scale: jax.Array
    group: jax.Array
    expert_bins: jax.Array


def make_task(
    sim_params: SimParams,
    num_rows: int,
    *,
    reward_scale=None,
    group=None,
    expert_bins=None,
) -> Task:
    """A :class:`Task` with defaults: scale = penalty x mean demand, one group, no expert.

    Raises:
        ValueError: for a non-positive or non-finite scale, or badly shaped arrays.
    """
    if reward_scale is None:
        demand = np.asarray(sim_params.initial_sales_history, np.float64).mean(axis=0)
        base = np.broadcast_to(np.asarray(sim_params.base_demand, np.float64), (num_rows,))
        demand = np.where(demand > 0, demand, base)
        pen = np.broadcast_to(np.asarray(sim_params.penalty_cost, np.float64), (num_rows,))
        reward_scale = np.maximum(pen * np.maximum(demand, _LEVEL_EPS), 1e-3)
    scale = np.broadcast_to(np.asarray(reward_scale, np.float64), (num_rows,))
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"reward_scale has non-positive or non-finite entries "
                         f"(min {scale.min()!r}); expected finite values > 0")
    g = np.zeros(num_rows, np.int32) if group is None else np.asarray(group)
    if g.shape != (num_rows,) or np.any(g < 0):
        raise ValueError(f"group has shape {g.shape} / min {g.min()}; expected [R={num_rows}] "
                         "indices >= 0")
    e = np.full((1, num_rows), -1, np.int32) if expert_bins is None else np.asarray(expert_bins)
    if e.ndim != 2 or e.shape[1] != num_rows:
        raise ValueError(f"expert_bins has shape {e.shape}; expected [T, R={num_rows}]")
    return Task(reward_scale=jnp.asarray(scale, jnp.float32),
                group=jnp.asarray(g, jnp.int32), expert_bins=jnp.asarray(e, jnp.int32))


def promotion_expert_bins(
    sim_params: SimParams,
    values,
    base_days,
    *,
    uplift=None,
    lookahead: int = 7,
) -> np.ndarray:
    """Expert reference decisions for promotion windows (the rule-based expert).

    On day t a row is in a promotion window when a promotion day falls in ``t..t+lookahead``;
    the expert then plays uplift-adjusted inventory days,
    ``base_days x (1 + (uplift - 1) x share of promotion days in the window)``, snapped to
    the nearest bin of ``values``. Outside windows the entry is ``-1``.

    Args:
        sim_params: parameters with ``promo_calendar`` ``[T, R]``.
        values: ``[V]`` inventory days of the bins.
        base_days: ``[]`` or ``[R]`` the expert's days of cover outside promotions (e.g. lead
            time + review period + safety days).
        uplift: ``[]`` or ``[R]`` demand multiplier on promotion days (default
            ``sim_params.promo_uplift``; for replayed data, where the trace already holds the
            uplift, pass an estimate such as :func:`estimate_uplift`).
        lookahead: window length in days.

    Returns:
        ``[T, R]`` int32 expert bins.
    """
    cal = np.asarray(sim_params.promo_calendar, np.float64)
    t_len, r = cal.shape
    ext = np.concatenate([cal, cal[: lookahead + 1]], axis=0)
    csum = np.concatenate([np.zeros((1, r)), np.cumsum(ext, axis=0)], axis=0)
    share = (csum[lookahead + 1: lookahead + 1 + t_len] - csum[:t_len]) / (lookahead + 1)
    uplift = sim_params.promo_uplift if uplift is None else uplift
    uplift = np.broadcast_to(np.asarray(uplift, np.float64), (r,))
    days = np.broadcast_to(np.asarray(base_days, np.float64), (r,)) * (
        1.0 + (uplift - 1.0) * share)
    v = np.asarray(values, np.float64)
    bins = np.abs(days[..., None] - v).argmin(axis=-1).astype(np.int32)
    return np.where(share > 0, bins, -1).astype(np.int32)


def estimate_uplift(demand, promo, *, group=None) -> np.ndarray:
    """``[R]`` promotion uplift: mean demand on promotion days over mean demand on other
    days, pooled within ``group`` (e.g. category; default per row), 1 where unknown."""
    d, p = np.asarray(demand, np.float64), np.asarray(promo, np.float64) > 0
    r = d.shape[1]
    g = np.arange(r) if group is None else np.asarray(group)
    on = np.bincount(g, (d * p).sum(0)) / np.maximum(np.bincount(g, p.sum(0)), 1)
    off = np.bincount(g, (d * ~p).sum(0)) / np.maximum(np.bincount(g, (~p).sum(0)), 1)
    ratio = np.where((on > 0) & (off > 0), on / np.where(off > 0, off, 1.0), 1.0)
    return np.maximum(ratio, 1.0)[g]


@struct.dataclass
class ValueStats:
    """Running statistics of the returns (debiased moving averages; a pytree).

    ``mean = m1 / weight`` and ``var = m2 / weight - mean^2`` once ``weight > 0``; before
    the first update they are 0 and 1 (the critic's raw output is the value).
    """

    m1: jax.Array
    m2: jax.Array
    weight: jax.Array

    @classmethod
    def create(cls) -> ValueStats:
        z = jnp.zeros((), jnp.float32)
        return cls(m1=z, m2=z, weight=z)

    def mean_std(self) -> tuple[jax.Array, jax.Array]:
        w = jnp.maximum(self.weight, 1e-12)
        mean = jnp.where(self.weight > 0, self.m1 / w, 0.0)
        var = jnp.where(self.weight > 0, self.m2 / w - mean ** 2, 1.0)
        return mean, jnp.sqrt(jnp.maximum(var, 1e-4))

    def updated(self, x: jax.Array, mask: jax.Array, decay: float) -> ValueStats:
        """The statistics after one batch ``x`` (entries where ``mask > 0``)."""
        n = jnp.maximum(mask.sum(), 1.0)
        mean = (x * mask).sum() / n
        sq = (x ** 2 * mask).sum() / n
        return ValueStats(m1=decay * self.m1 + (1 - decay) * mean,
                          m2=decay * self.m2 + (1 - decay) * sq,
                          weight=decay * self.weight + (1 - decay))


@struct.dataclass
class Runner:
    """Everything one training run carries from update to update (a pytree)."""

    params: nnx.State
    opt_state: Any
    env_state: SimState
    obs: Observation
    key: jax.Array
    lagrange: jax.Array
    update: jax.Array
    value_stats: ValueStats


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


def _entropy(logits: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -(jnp.exp(logp) * logp).sum(axis=-1)


def categorical_kl(logits: jax.Array, ref_logits: jax.Array) -> jax.Array:
    """``KL(softmax(logits) || softmax(ref_logits))`` over the last axis."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    logq = jax.nn.log_softmax(ref_logits, axis=-1)
    return (jnp.exp(logp) * (logp - logq)).sum(axis=-1)


def expert_cross_entropy(logits: jax.Array, expert: jax.Array) -> jax.Array:
    """``-log pi(expert)`` where ``expert >= 0``, else 0."""
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
    """Leave-one-out advantages over the leading ``k`` axis: ``R_i - mean_{j != i} R_j``."""
    k = returns.shape[0]
    total = returns.sum(axis=0, keepdims=True)
    return returns - (total - returns) / (k - 1)


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

    ``batch`` holds ``action``, ``log_prob`` (old), ``value`` (old), ``advantage``,
    ``return``, ``decide`` and ``expert``, all ``[N]``. ``actor_weight`` scales every
    actor term (0 trains the critic only). Returns ``(loss, terms)``.
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
    ent = _entropy(logits)
    kl = categorical_kl(logits, jax.lax.stop_gradient(ref_logits))
    ce = expert_cross_entropy(logits, batch["expert"])
    expert = (ce * w).sum() / jnp.maximum(guided.sum(), 1.0)
    terms = {
        "policy_loss": mean(pg),
        "value_loss": 0.5 * mean(v_err),
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


def _day_reward(out, obs: Observation, task: Task, lagrange, hp: HParams, cfg: RLConfig):
    """Per-row reward of one day and the day's service indicator."""
    level = jnp.maximum(obs.sales_history.mean(axis=1), _LEVEL_EPS)
    excess_days = jax.nn.relu(out.on_hand_end / level - hp.target_turnover)
    if cfg.service_metric == "in_stock":
        served = out.in_stock
    else:
        served = jnp.where(out.demand > 0, out.filled / jnp.maximum(out.demand, 1e-6), 1.0)
    lam = lagrange[task.group]
    reward = (-hp.cost_weight * out.cost / task.reward_scale
              - hp.turnover_weight * excess_days / hp.target_turnover
              + lam * (served - hp.service_target))
    return reward, served


def _expert_today(task: Task, t: jax.Array) -> jax.Array:
    table = task.expert_bins
    return jnp.take(table, t % table.shape[0], axis=0)


def make_optimizer(cfg: RLConfig) -> optax.GradientTransformation:
    """Adam with gradient clipping and an injectable (traced) learning rate."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, eps=1e-5),
    )


def _tx_update(tx, grads, opt_state, params):
    # Injected hyperparameters are float32 arrays, so Adam's bias correction raises them to
    # an int32 count: allowed under standard promotion, refused under "strict".
    with jax.numpy_dtype_promotion("standard"):
        return tx.update(grads, opt_state, params)


def _set_lr(opt_state, lr):
    clip_state, adam_state = opt_state
    hyper = dict(adam_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, jnp.float32)
    return (clip_state, adam_state._replace(hyperparams=hyper))


def _group_rates(served, group, num_groups):
    """Mean of ``served`` (``[..., R]``) per group (``[G]``; 1 for an empty group)."""
    per_row = jnp.reshape(served, (-1, served.shape[-1]))
    num = jax.ops.segment_sum(per_row.sum(axis=0), group, num_groups)
    den = jax.ops.segment_sum(jnp.full(per_row.shape[1:], float(per_row.shape[0])), group,
                              num_groups)
    return jnp.where(den > 0, num / jnp.maximum(den, 1e-9), 1.0)


def make_update(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> tuple[Callable[[jax.Array, HParams], Runner], Callable[[Runner, HParams], tuple]]:
    """``(init, update)``: ``init(key, hparams) -> Runner`` and one training update
    ``update(runner, hparams) -> (runner, metrics)``; both pure and jittable.

    Args:
        config: static settings.
        env: the environment (its rows are the training batch).
        sim_params: traced simulator parameters.
        agent: the initial agent (the actor starts from ``agent.params``).
        task: reward scale, constraint groups and expert bins (default :func:`make_task`).
        ref_params: the frozen reference policy's parameters for the KL anchor (default:
            the initial ``agent.params``, i.e. the pretrained model).

    Raises:
        ValueError: if the task does not match the env or the minibatches do not divide.
    """
    parts = _build(config, env, sim_params, agent, task, ref_params)
    return parts.init, parts.update


def make_ppo_parts(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> types.SimpleNamespace:
    """The pieces of a PPO update, for host-driven loops (and the throughput benchmark):

    * ``init(key, hp) -> Runner``;
    * ``keys(runner) -> (next_key, policy_keys [T], step_keys [T], epoch_key)``;
    * ``day_step(params, state, obs, policy_key, step_key, lagrange, hp) ->
      ((state, obs), Transition)``: one day of every row;
    * ``learn(runner, state, obs, traj, next_key, epoch_key, hp) -> (runner, metrics)``:
      GAE and the PPO epochs on ``traj`` (``[T, R]`` stacked transitions).

    Calling ``day_step`` for each day and then ``learn`` is exactly ``update``.
    """
    parts = _build(config, env, sim_params, agent, task, ref_params)
    return types.SimpleNamespace(init=parts.init, keys=parts.ppo_keys,
                                 day_step=parts.day_step, learn=parts.ppo_learn)


def make_pathwise_objective(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> Callable[[nnx.State, jax.Array, HParams], jax.Array]:
    """The pathwise loss ``objective(params, key, hparams) -> []`` of ``config.num_steps``
    days from a reset (what :func:`make_update` differentiates with ``config.algorithm ==
    "pathwise"``); for gradient checks and custom optimisers."""
    parts = _build(config, env, sim_params, agent, task, ref_params)

    def objective(params: nnx.State, key: jax.Array, hp: HParams) -> jax.Array:
        runner = parts.init(key, hp)
        keys = jax.random.split(runner.key, config.num_steps)
        return parts.pathwise_loss(params, runner.env_state, runner.obs, keys,
                                   runner.lagrange, hp)[0]

    return objective


def _build(config, env, sim_params, agent, task, ref_params) -> types.SimpleNamespace:
    r = env.num_rows
    task = make_task(sim_params, r) if task is None else task
    if task.reward_scale.shape != (r,) or task.group.shape != (r,):
        raise ValueError(f"task has reward_scale {task.reward_scale.shape} / group "
                         f"{task.group.shape}; expected [R={r}] for this env")
    if task.expert_bins.ndim != 2 or task.expert_bins.shape[1] != r:
        raise ValueError(f"task.expert_bins has shape {task.expert_bins.shape}; "
                         f"expected [T, R={r}]")
    if int(np.max(np.asarray(task.group))) >= config.num_groups:
        raise ValueError(f"task.group has index {int(np.max(np.asarray(task.group)))}; "
                         f"expected < num_groups={config.num_groups}")
    if int(np.max(np.asarray(task.expert_bins), initial=-1)) >= agent.num_bins:
        raise ValueError(f"task.expert_bins has a bin >= the agent's {agent.num_bins} bins")
    copies = config.rloo_k if config.algorithm == "rloo" else 1
    samples = config.num_steps * r * copies
    if config.algorithm != "pathwise" and samples < config.num_minibatches:
        raise ValueError(
            f"num_minibatches={config.num_minibatches} is not allowed; it must be at most "
            f"num_steps x rows{' x rloo_k' if copies > 1 else ''} = {samples}")
    ref = agent.params if ref_params is None else ref_params
    tx = make_optimizer(config)

    def init(key: jax.Array, hp: HParams) -> Runner:
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, sim_params)
        opt_state = _set_lr(tx.init(agent.params), hp.learning_rate)
        return Runner(params=agent.params, opt_state=opt_state, env_state=state, obs=obs,
                      key=key, lagrange=jnp.zeros((config.num_groups,), jnp.float32),
                      update=jnp.zeros((), jnp.int32), value_stats=ValueStats.create())

    def lr_at(runner: Runner, hp: HParams) -> jax.Array:
        if not config.anneal_lr:
            return hp.learning_rate
        done = runner.update.astype(jnp.float32) / config.num_updates
        return hp.learning_rate * jnp.maximum(1.0 - done, 0.0)

    def act(params, obs, key, sample: bool):
        def run(_):
            logits, value = agent.apply(params, obs)
            if sample:
                a = jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
            else:
                a = jnp.argmax(logits, axis=-1).astype(jnp.int32)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), a[:, None], axis=-1)[:, 0]
            # The frozen reference's logits, once per decision (not once per epoch).
            ref_logits, _ = agent.apply(ref, obs)
            return a, logp, value, ref_logits.astype(jnp.float32)

        def skip(_):
            z = jnp.zeros((r,), jnp.float32)
            return jnp.zeros((r,), jnp.int32), z, z, jnp.zeros((r, agent.num_bins), jnp.float32)

        # The network runs only on days where some row reviews.
        return jax.lax.cond(jnp.any(obs.is_review_day > 0), run, skip, None)

    def day_step(params, state, obs, pkey, skey, lagrange, hp):
        """One simulated day of every row: ``((state, obs), transition)``."""
        a, logp, value, ref_logits = act(params, obs, pkey, True)
        q = agent.orders_of_bins(obs, a)
        obs2, state2, _, _, _, info = env.step(skey, state, q, sim_params)
        out = info["outcome"]
        reward, served = _day_reward(out, obs, task, lagrange, hp, config)
        tr = Transition(obs=obs, action=a, log_prob=logp, value=value, ref_logits=ref_logits,
                        decide=obs.is_review_day.astype(jnp.float32), reward=reward,
                        cost=out.cost, served=served, demand=out.demand, sales=out.sales,
                        expert=_expert_today(task, state.t))
        return (state2, obs2), tr

    def rollout(params, state, obs, policy_keys, step_keys, lagrange, hp):
        def day(carry, keys):
            return day_step(params, *carry, *keys, lagrange, hp)

        (state, obs), traj = jax.lax.scan(day, (state, obs), (policy_keys, step_keys))
        return state, obs, traj

    def value_of(params, obs):
        return jax.lax.stop_gradient(agent.apply(params, obs)[1])

    def sgd(runner, batch, hp, key):
        """``num_epochs`` passes of minibatch PPO updates over the flattened ``batch``."""
        n = batch["decide"].shape[0]
        mb = n // config.num_minibatches
        warm = config.algorithm == "ppo" and config.critic_warmup_updates > 0
        actor_weight = ((runner.update >= config.critic_warmup_updates).astype(jnp.float32)
                        if warm else 1.0)

        def loss_fn(params, mbatch):
            logits, values = agent.apply(params, mbatch["obs"])
            return ppo_loss_terms(logits, values, mbatch["ref_logits"], mbatch, hp,
                                  clip_value=config.clip_value and config.algorithm == "ppo",
                                  normalize=config.normalize_advantages,
                                  actor_weight=actor_weight)

        def minibatch(carry, mbatch):
            params, opt_state = carry
            (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mbatch)
            updates, opt_state = _tx_update(tx, grads, opt_state, params)
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

    def flatten(tree):
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)

    def dual_ascent(lagrange, served, hp):
        rates = _group_rates(served, task.group, config.num_groups)
        new = jnp.maximum(lagrange + hp.lagrange_lr * (hp.service_target - rates), 0.0)
        return new, rates

    def rollout_metrics(reward, cost, served, demand, sales, lagrange, rates):
        total = demand.sum()
        return {
            "reward": reward.mean(),
            "cost_per_row_day": cost.mean(),
            "service": served.mean(),
            "fill_rate": jnp.where(total > 0, sales.sum() / jnp.maximum(total, 1e-9), 1.0),
            "lagrange_mean": lagrange.mean(),
            "service_rate_min": rates.min(),
        }

    def traj_metrics(traj, lagrange, rates):
        return rollout_metrics(traj.reward, traj.cost, traj.served, traj.demand, traj.sales,
                               lagrange, rates)

    def ppo_keys(runner: Runner):
        """``(next key, [T] policy keys, [T] step keys, epoch key)`` of a PPO update."""
        key, pkey, skey, ekey = jax.random.split(runner.key, 4)
        return (key, jax.random.split(pkey, config.num_steps),
                jax.random.split(skey, config.num_steps), ekey)

    def update_ppo(runner: Runner, hp: HParams):
        key, pkeys, skeys, ekey = ppo_keys(runner)
        state, obs, traj = rollout(runner.params, runner.env_state, runner.obs, pkeys, skeys,
                                   runner.lagrange, hp)
        return ppo_learn(runner, state, obs, traj, key, ekey, hp)

    def ppo_learn(runner: Runner, state, obs, traj: Transition, key, ekey, hp: HParams):
        """The learning half of a PPO update, given the rollout's ``[T, R]`` transitions."""
        runner = runner.replace(opt_state=_set_lr(runner.opt_state, lr_at(runner, hp)))
        stats = runner.value_stats
        mean, std = stats.mean_std()
        # The critic's outputs are standardised returns when normalize_values is on.
        denorm = (lambda v: v * std + mean) if config.normalize_values else (lambda v: v)  # noqa: E731
        values = denorm(traj.value)
        last_value = denorm(value_of(runner.params, obs))
        adv, ret = smdp_gae(traj.reward, values, traj.decide, last_value, hp.gamma,
                            hp.gae_lambda)
        target = ret
        if config.normalize_values:
            stats = stats.updated(ret, traj.decide, config.value_norm_decay)
            mean, std = stats.mean_std()
            target = (ret - mean) / std
        # Value clipping bounds the change of the critic's output, so it clips around what
        # the critic output in the rollout (traj.value), in the scale it was output in.
        batch = {"obs": traj.obs, "action": traj.action, "log_prob": traj.log_prob,
                 "value": traj.value, "advantage": adv, "return": target,
                 "ref_logits": traj.ref_logits, "decide": traj.decide, "expert": traj.expert}
        params, opt_state, terms = sgd(runner, flatten(batch), hp, ekey)
        lagrange, rates = dual_ascent(runner.lagrange, traj.served, hp)
        metrics = {**traj_metrics(traj, runner.lagrange, rates), **terms,
                   "value_mean": mean, "value_std": std}
        return Runner(params=params, opt_state=opt_state, env_state=state, obs=obs, key=key,
                      lagrange=lagrange, update=runner.update + 1, value_stats=stats), metrics

    def update_rloo(runner: Runner, hp: HParams):
        key, pkey, skey, ekey = jax.random.split(runner.key, 4)
        runner = runner.replace(opt_state=_set_lr(runner.opt_state, lr_at(runner, hp)))
        k = config.rloo_k
        step_keys = jax.random.split(skey, config.num_steps)  # shared: common random numbers
        policy_keys = jax.random.split(pkey, (k, config.num_steps))
        tile = lambda x: jnp.broadcast_to(x, (k,) + x.shape)  # noqa: E731
        states, obss, traj = jax.vmap(
            rollout, in_axes=(None, 0, 0, 0, None, None, None)
        )(runner.params, jax.tree.map(tile, runner.env_state), jax.tree.map(tile, runner.obs),
          policy_keys, step_keys, runner.lagrange, hp)
        seg_return = traj.reward.sum(axis=1)  # [k, R]
        adv = jnp.broadcast_to(rloo_advantages(seg_return)[:, None, :], traj.reward.shape)
        batch = {"obs": traj.obs, "action": traj.action, "log_prob": traj.log_prob,
                 "value": traj.value, "advantage": adv, "return": jnp.zeros_like(adv),
                 "ref_logits": traj.ref_logits, "decide": traj.decide, "expert": traj.expert}
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[3:]), batch)
        params, opt_state, terms = sgd(runner, flat, hp, ekey)
        lagrange, rates = dual_ascent(runner.lagrange, traj.served, hp)
        metrics = {**traj_metrics(traj, runner.lagrange, rates), **terms}
        first = lambda x: x[0]  # noqa: E731  the run continues along copy 0
        return Runner(params=params, opt_state=opt_state,
                      env_state=jax.tree.map(first, states), obs=jax.tree.map(first, obss),
                      key=key, lagrange=lagrange, update=runner.update + 1,
                      value_stats=runner.value_stats), metrics

    def pathwise_loss(params, state, obs, step_keys, lagrange, hp):
        def day(carry, skey):
            state, obs = carry
            logits, _ = agent.apply(params, obs)
            q = agent.expected_orders(obs, logits)
            obs2, state2, _, _, _, info = env.step(skey, state, q, sim_params)
            out = info["outcome"]
            reward, served = _day_reward(out, obs, task, lagrange, hp, config)
            decide = obs.is_review_day.astype(jnp.float32)
            ref_logits, _ = agent.apply(ref, obs)
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

    def update_pathwise(runner: Runner, hp: HParams):
        key, skey = jax.random.split(runner.key)
        opt_state = _set_lr(runner.opt_state, lr_at(runner, hp))
        state0 = jax.lax.stop_gradient(runner.env_state)
        (loss, aux), grads = jax.value_and_grad(pathwise_loss, has_aux=True)(
            runner.params, state0, runner.obs, jax.random.split(skey, config.num_steps),
            runner.lagrange, hp)
        state, obs, reward, served, kl_m, ce_m, cost, demand, sales = aux
        updates, opt_state = _tx_update(tx, grads, opt_state, runner.params)
        params = optax.apply_updates(runner.params, updates)
        lagrange, rates = dual_ascent(runner.lagrange, served, hp)
        metrics = {
            **rollout_metrics(reward, cost, served, demand, sales, runner.lagrange, rates),
            "loss": loss, "kl_ref": kl_m, "expert_ce": ce_m,
            "grad_norm": optax.tree.norm(grads),
        }
        return Runner(params=params, opt_state=opt_state, env_state=jax.lax.stop_gradient(state),
                      obs=jax.lax.stop_gradient(obs), key=key, lagrange=lagrange,
                      update=runner.update + 1, value_stats=runner.value_stats), metrics

    update = {"ppo": update_ppo, "rloo": update_rloo, "pathwise": update_pathwise}[
        config.algorithm]
    return types.SimpleNamespace(init=init, update=update, pathwise_loss=pathwise_loss,
                                 day_step=day_step, ppo_keys=ppo_keys, ppo_learn=ppo_learn)


def make_train(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> Callable[[jax.Array, HParams], tuple[Runner, dict]]:
    """The whole run as one pure function ``train(key, hparams) -> (runner, metrics)``.

    ``metrics`` leaves are ``[num_updates]``. Jit it; vmap it over keys and/or
    :class:`HParams` to run seeds or a hyperparameter sweep in one program. Every run
    starts from ``agent.params`` (in ORPR, the pretrained model); seeds differ in their
    simulator, sampling and minibatch draws.
    Arguments as in :func:`make_update`.
    """
    init, update = make_update(config, env, sim_params, agent, task, ref_params)

    def train(key: jax.Array, hp: HParams) -> tuple[Runner, dict]:
        runner = init(key, hp)
        return jax.lax.scan(lambda r, _: update(r, hp), runner, None,
                            length=config.num_updates)

    return train


def trained_agent(agent: Agent, runner: Runner, config: RLConfig) -> Agent:
    """``agent`` with the runner's trained parameters, playing what it was trained to play:
    the expected action after pathwise training, the argmax bin otherwise."""
    mode = "expected" if config.algorithm == "pathwise" else "greedy"
    return agent.replace(params=runner.params, mode=mode)
