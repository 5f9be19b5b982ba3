"""What an ``orpr run`` depends on: :class:`RunConfig` and its presets, the stage names,
and the alignment settings (:class:`AlignSettings`) with the algorithms it may train.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: Stages in order; ``run_pipeline(..., upto=stage)`` stops after ``stage``.
STAGES = ("data", "label", "pretrain", "align", "evaluate")

#: The compared learned policies: name -> (algorithm, starts from the pretrained model).
ALGORITHMS = {
    "orpr": ("ppo", True),
    "ppo-scratch": ("ppo", False),
    "rloo": ("rloo", True),
    "pathwise": ("pathwise", True),
}


#: The decodings ``"auto"`` chooses from, for every learned policy alike: the argmax bin,
#: the expected inventory days, and three quantiles of the policy's distribution.
DECODINGS = ("greedy", "expected", "q0.7", "q0.8", "q0.9")
#: Allowed ``AlignSettings.play_mode`` values.
PLAY_MODES = ("auto", *DECODINGS)


@dataclasses.dataclass(frozen=True)
class AlignSettings:
    """Alignment settings of :func:`~orpr_jax.pipeline.align.align_stage` (the traced
    ones go to :class:`~orpr_jax.train.rl.HParams`).

    Attributes:
        num_updates: updates per algorithm.
        num_steps: days per rollout.
        num_epochs: PPO/RLOO epochs per rollout.
        num_minibatches: minibatches per epoch.
        rloo_k: RLOO copies per row.
        learning_rate: Adam step size (fine-tuning).
        scratch_learning_rate: Adam step size of PPO from scratch.
        kl_coef: weight of KL(pi || pretrained).
        gae_lambda: PPO's GAE lambda per decision interval (0.99: an order's effect shows
            after the lead time, beyond the interval that earns its reward, so the
            advantage leans on longer returns than the usual 0.95).
        ent_coef: entropy bonus.
        expert_weight: weight of the promotion-window expert term.
        turnover_weight: weight of the excess-turnover-days penalty.
        target_turnover: turnover days above which the penalty applies.
        lagrange_lr: dual-ascent step of the per-category in-stock multipliers.
        service_margin: the in-stock target is the incumbent rule's in-stock rate on the
            training rows and period plus this margin.
        safety_days_expert: extra days of the promotion expert over lead time + review.
        max_train_rows: at most this many training rows are simulated during alignment
            (a fixed random subset; all rows when None).
        critic_warmup_fraction: share of the PPO updates that first train only the fresh
            value head of the pretrained model.
        clip_value: PPO's value clipping (off here: with value normalisation the critic's
            loss is O(1) already).
        normalize_values: PPO's value normalisation (see ``RLConfig.normalize_values``).
        play_mode: how every learned policy (the pretrained model and each aligned one)
            decides: one of :data:`DECODINGS` (``"greedy"`` the argmax bin,
            ``"expected"`` the expected inventory days, ``"q0.8"`` a quantile of the
            policy's distribution), or ``"auto"``: for each policy the decoding of
            :data:`DECODINGS` that costs least on the training rows over the training
            period (never the held-out rows or days).
    """

    num_updates: int = 40
    num_steps: int = 28
    num_epochs: int = 2
    num_minibatches: int = 4
    rloo_k: int = 2
    learning_rate: float = 3e-4
    scratch_learning_rate: float = 3e-4
    kl_coef: float = 0.01
    gae_lambda: float = 0.99
    ent_coef: float = 0.0
    expert_weight: float = 0.1
    turnover_weight: float = 0.0
    target_turnover: float = 14.0
    lagrange_lr: float = 0.5
    service_margin: float = 0.0
    safety_days_expert: float = 2.0
    max_train_rows: int | None = 512
    critic_warmup_fraction: float = 0.1
    clip_value: bool = False
    normalize_values: bool = True
    play_mode: str = "auto"

    def __post_init__(self) -> None:
        if self.play_mode not in PLAY_MODES:
            raise ValueError(f"play_mode={self.play_mode!r} is not allowed; use one of "
                             f"{list(PLAY_MODES)}")



@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything an ``orpr run`` depends on (saved as ``config.json``).

    Attributes:
        preset: the named sizes this config started from (see :data:`PRESETS`).
        seed: data and first training seed.
        seeds: training seeds (confidence intervals over seeds when > 1).
        data: path of a user data set in the documented format; None for jd_synthetic.
        num_skus: SKUs of the built-in data set.
        num_warehouses: warehouses of the built-in data set.
        num_days: days of the built-in data set (first half trains, second half tests).
        model: foundation model preset, ``"small"`` or ``"default"``.
        pretrain_steps: pretraining optimiser steps.
        pretrain_batch: pretraining batch size.
        alpha: service target of the OR labels.
        algorithms: alignment algorithms (see :data:`ALGORITHMS`).
        num_updates: alignment updates per algorithm.
        num_steps: days per alignment rollout.
        num_epochs: PPO/RLOO epochs per rollout.
        num_minibatches: minibatches per epoch.
        learning_rate: alignment step size (fine-tuning).
        kl_coef: KL anchor weight.
        gae_lambda: PPO's GAE lambda (per decision interval).
        expert_weight: promotion expert weight.
        lagrange_lr: dual-ascent step of the in-stock constraints.
        max_train_rows: rows simulated during alignment (None: all training rows).
        held_out_fraction: share of rows kept out of training.
        field_test: run the simulated field test.
        treatment: field-test treatment assignment, ``"random"`` or ``"rule"``.
        play_mode: how every learned policy decides: one of :data:`DECODINGS`, or
            ``"auto"`` (per policy the cheapest of them on the training rows and period).
    """

    preset: str = "cpu"
    seed: int = 0
    seeds: int = 1
    data: str | None = None
    num_skus: int = 150
    num_warehouses: int = 5
    num_days: int = 730
    model: str = "small"
    pretrain_steps: int = 800
    pretrain_batch: int = 256
    alpha: float = 0.98
    algorithms: tuple[str, ...] = ("orpr", "ppo-scratch", "rloo", "pathwise")
    num_updates: int = 24
    num_steps: int = 28
    num_epochs: int = 2
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    kl_coef: float = 0.01
    gae_lambda: float = 0.99
    expert_weight: float = 0.1
    lagrange_lr: float = 0.5
    max_train_rows: int | None = 256
    held_out_fraction: float = 0.2
    field_test: bool = True
    treatment: str = "random"
    play_mode: str = "auto"

    def __post_init__(self) -> None:
        def need(name, ok, allowed):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; "
                                 f"expected {allowed}")

        def is_int(x, low):
            return isinstance(x, int) and not isinstance(x, bool) and x >= low

        def is_num(x, lo, hi, closed=False):
            return (isinstance(x, (int, float)) and not isinstance(x, bool)
                    and math.isfinite(x) and (x >= lo if closed else x > lo) and x <= hi)

        need("preset", self.preset in PRESETS, f"one of {sorted(PRESETS)}")
        for name, low in (("seed", 0), ("seeds", 1), ("num_skus", 1), ("num_warehouses", 1),
                          ("num_days", 140),
                          ("pretrain_steps", 1), ("pretrain_batch", 1), ("num_updates", 1),
                          ("num_steps", 1), ("num_epochs", 1), ("num_minibatches", 1)):
            need(name, is_int(getattr(self, name), low), f"an integer >= {low}")
        need("model", self.model in ("small", "default"), "'small' or 'default'")
        need("alpha", is_num(self.alpha, 0.0, 1.0), "a number in (0, 1]")
        need("learning_rate", is_num(self.learning_rate, 0.0, 1.0), "a number in (0, 1]")
        need("kl_coef", is_num(self.kl_coef, 0.0, 1e6, closed=True), "a number in [0, 1e6]")
        need("gae_lambda", is_num(self.gae_lambda, 0.0, 1.0, closed=True), "a number in [0, 1]")
        need("expert_weight", is_num(self.expert_weight, 0.0, 1e6, closed=True), "a number in [0, 1e6]")
        need("lagrange_lr", is_num(self.lagrange_lr, 0.0, 1e6, closed=True), "a number in [0, 1e6]")
        need("held_out_fraction", is_num(self.held_out_fraction, 0.0, 0.9),
             "a number in (0, 0.9]")
        need("max_train_rows", self.max_train_rows is None or is_int(self.max_train_rows, 1),
             "None or an integer >= 1")
        need("algorithms", isinstance(self.algorithms, tuple) and len(self.algorithms) > 0
             and all(a in ALGORITHMS for a in self.algorithms),
             f"a non-empty list from {list(ALGORITHMS)}")
        need("treatment", self.treatment in ("random", "rule"), "'random' or 'rule'")
        need("play_mode", self.play_mode in PLAY_MODES, f"one of {list(PLAY_MODES)}")
        need("field_test", isinstance(self.field_test, bool), "true or false")
        need("data", self.data is None or isinstance(self.data, str), "None or a path")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["algorithms"] = list(self.algorithms)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunConfig:
        """A config from ``config.json`` contents (unknown keys raise ValueError)."""
        return cls.create(**obj)

    @classmethod
    def create(cls, preset: str = "cpu", **overrides) -> RunConfig:
        """A preset's config with ``overrides`` (validated; unknown keys raise ValueError)."""
        if preset not in PRESETS:
            raise ValueError(f"preset={preset!r} is not allowed; expected one of "
                             f"{sorted(PRESETS)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown config key {unknown[0]!r}; known keys: "
                             f"{', '.join(sorted(names))}")
        values = {**PRESETS[preset], **overrides, "preset": preset}
        if isinstance(values.get("algorithms"), (list, str)):
            algs = values["algorithms"]
            values["algorithms"] = tuple(algs.split(",") if isinstance(algs, str) else algs)
        return cls(**values)


#: Named sizes: ``tiny`` (tests, seconds), ``cpu`` (the default, <= 10 minutes on a 2-core
#: CPU), ``paper`` (the paper's scale: 5,319 SKUs over 31 warehouses, the paper-sized
#: model; for a GPU).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(num_skus=10, num_warehouses=2, num_days=140, pretrain_steps=10,
                 pretrain_batch=64, num_updates=2, num_steps=7, num_minibatches=2,
                 max_train_rows=16, algorithms=("orpr", "pathwise"),
                 held_out_fraction=0.4),
    "cpu": dict(),
    "paper": dict(num_skus=5319, num_warehouses=31, model="default", pretrain_steps=20000,
                  pretrain_batch=1024, num_updates=300, max_train_rows=8192, seeds=3),
}

