"""Static settings and traced hyperparameters of a training run.

:class:`RLConfig` fixes shapes and loop counts (static); :class:`HParams` is a pytree of
traced scalars, so ``jax.vmap`` sweeps learning rates, clip ranges, reward weights, ...
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import struct

from orpr_jax._validation import check_int

Algorithm = Literal["ppo", "rloo", "pathwise"]
ServiceMetric = Literal["in_stock", "fill_rate"]


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """Static settings of a training run (each fixes a shape or a loop count).

    Attributes:
        algorithm: ``"ppo"``, ``"rloo"`` or ``"pathwise"``.
        num_updates: updates in :func:`~orpr_jax.train.rl.make_train`'s run.
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
