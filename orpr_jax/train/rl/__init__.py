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
  advantage on a decision day is its reward-to-go from that day minus the mean of the
  other copies' (leave-one-out), so no critic is needed; the same clipped surrogate, KL and expert terms.
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

Modules: :mod:`~.config` (:class:`RLConfig`, :class:`HParams`), :mod:`~.task`
(:class:`Task`, :func:`make_task`, the promotion expert), :mod:`~.setup` (the checked setup
of a run, :class:`Runner`, :class:`ValueStats`, the optimiser), :mod:`~.losses` (GAE, RLOO
advantages, the PPO terms, KL; pure), :mod:`~.rollout` (the fused rollout and the reward),
:mod:`~.ppo`, :mod:`~.rloo`, :mod:`~.pathwise` (each algorithm's update) and
:mod:`~.train` (:func:`make_train`, :func:`make_update`, :func:`make_ppo_parts`,
:func:`make_pathwise_objective`, :func:`trained_agent`).

The package imports ``orpr_jax.sim``, ``orpr_jax._validation`` and
``orpr_jax.train.agents``; never ``labels``, ``evaluation``, ``pipeline``, ``studies`` or
``cli``.
"""

from orpr_jax.train.rl.config import Algorithm, HParams, RLConfig, ServiceMetric
from orpr_jax.train.rl.losses import (
    categorical_kl,
    expert_cross_entropy,
    ppo_loss_terms,
    rloo_advantages,
    rloo_to_go_advantages,
    smdp_gae,
)
from orpr_jax.train.rl.rollout import Transition
from orpr_jax.train.rl.setup import Runner, ValueStats, make_optimizer
from orpr_jax.train.rl.task import Task, estimate_uplift, make_task, promotion_expert_bins
from orpr_jax.train.rl.train import (
    make_pathwise_objective,
    make_ppo_parts,
    make_train,
    make_update,
    trained_agent,
)

__all__ = [
    "Algorithm",
    "HParams",
    "RLConfig",
    "Runner",
    "ServiceMetric",
    "Task",
    "Transition",
    "ValueStats",
    "categorical_kl",
    "estimate_uplift",
    "expert_cross_entropy",
    "make_optimizer",
    "make_pathwise_objective",
    "make_ppo_parts",
    "make_task",
    "make_train",
    "make_update",
    "ppo_loss_terms",
    "promotion_expert_bins",
    "rloo_advantages",
    "rloo_to_go_advantages",
    "smdp_gae",
    "trained_agent",
]
