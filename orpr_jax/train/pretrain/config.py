"""The settings, outcome and error of a pre-training run, and its optimiser."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import optax
from flax import nnx

# Config fields that may change between a run and its resumption without changing the
# batches or updates already taken.
_RESUMABLE_FIELDS = frozenset({"total_steps", "patience", "eval_every", "checkpoint_every"})


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Hyper-parameters of a pre-training run (all static; none is traced).

    Attributes:
        batch_size: examples per optimiser step (capped at the training-set size).
        learning_rate: peak AdamW learning rate after warm-up.
        weight_decay: AdamW decoupled weight decay.
        warmup_steps: linear warm-up steps from 0 to ``learning_rate``.
        total_steps: optimiser steps of the whole run; cosine decay ends here.
        clip_norm: global gradient-norm clip.
        ordinal_sigma: 0 for plain cross-entropy; > 0 for Gaussian soft targets over bins
            with this standard deviation (in bins), centred on the label.
        val_fraction: share of rows (not examples) held out for validation, in [0, 1).
            0 evaluates and early-stops on the training set itself.
        eval_every: steps between evaluations.
        patience: evaluations without a new best validation loss before stopping early;
            0 disables early stopping.
        checkpoint_every: steps between checkpoints (one is also written at the end).
        seed: seed of model init, split and batch order.
    """

    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    total_steps: int = 5_000
    clip_norm: float = 1.0
    ordinal_sigma: float = 0.0
    val_fraction: float = 0.1
    eval_every: int = 100
    patience: int = 10
    checkpoint_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise ValueError(
                    f"PretrainConfig.{name} = {getattr(self, name)!r} is out of range; "
                    f"expected {allowed}"
                )

        def is_int(value: Any) -> bool:
            return isinstance(value, int | np.integer) and not isinstance(value, bool)

        def is_real(value: Any) -> bool:
            return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
                value, bool
            )

        need("batch_size", is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1")
        need(
            "learning_rate",
            is_real(self.learning_rate) and 0 < self.learning_rate < math.inf,
            "a finite float > 0",
        )
        need(
            "weight_decay",
            is_real(self.weight_decay) and 0 <= self.weight_decay < math.inf,
            "a finite float >= 0",
        )
        need("warmup_steps", is_int(self.warmup_steps) and self.warmup_steps >= 0, "an int >= 0")
        need("total_steps", is_int(self.total_steps) and self.total_steps >= 1, "an int >= 1")
        need(
            "clip_norm",
            is_real(self.clip_norm) and 0 < self.clip_norm < math.inf,
            "a finite float > 0",
        )
        need(
            "ordinal_sigma",
            is_real(self.ordinal_sigma) and 0 <= self.ordinal_sigma < math.inf,
            "a finite float >= 0",
        )
        need(
            "val_fraction",
            is_real(self.val_fraction) and 0 <= self.val_fraction < 1,
            "a float in [0, 1)",
        )
        need("eval_every", is_int(self.eval_every) and self.eval_every >= 1, "an int >= 1")
        need("patience", is_int(self.patience) and self.patience >= 0, "an int >= 0")
        need(
            "checkpoint_every",
            is_int(self.checkpoint_every) and self.checkpoint_every >= 1,
            "an int >= 1",
        )
        need("seed", is_int(self.seed) and self.seed >= 0, "an int >= 0")


@dataclasses.dataclass
class PretrainResult:
    """Outcome of ``pretrain``.

    Attributes:
        model: the model holding the parameters with the best validation loss.
        history: one dict per evaluation (the lines of ``metrics.jsonl``).
        best_step: the step whose parameters ``model`` holds.
        best_val_loss: the validation loss at ``best_step``.
        stopped_early: whether early stopping ended the run.
        steps_done: optimiser steps taken in total (including those before a resume).
    """

    model: nnx.Module
    history: list[dict[str, float]]
    best_step: int
    best_val_loss: float
    stopped_early: bool
    steps_done: int


def make_optimizer(config: PretrainConfig) -> optax.GradientTransformation:
    """Gradient clipping then AdamW on a linear-warm-up cosine-decay schedule."""
    decay_steps = max(config.total_steps, config.warmup_steps + 1)
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=decay_steps,
        end_value=config.learning_rate * 0.01,
    )
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )
