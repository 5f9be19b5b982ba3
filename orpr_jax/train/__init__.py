"""Training: stage one of ORPR (supervised pre-training on OR labels) and stage two
(alignment in the simulator), with orbax checkpoints.

* :mod:`~orpr_jax.train.pretrain`: pre-training of the order-bin classifier (config, data
  split and batches, loss and jitted steps, the checkpointed run);
* :mod:`~orpr_jax.train.rl`: PPO, RLOO and pathwise training as one jitted program;
* :mod:`~orpr_jax.train.agents`: the actor-critic agents the algorithms train;
* :mod:`~orpr_jax.train.loop`: host-driven RL training in jitted chunks, with progress,
  evaluation and checkpoints;
* :mod:`~orpr_jax.train.checkpoint`: orbax checkpoints with model signatures;
* :mod:`~orpr_jax.train.sweep`: hyperparameter sweeps as one vmapped program.

This package re-exports the pre-training API and the checkpoint helpers. It may import
``orpr_jax.sim``, ``orpr_jax.data``, ``orpr_jax.policies`` (and ``orpr_jax._validation``);
never ``labels``, ``evaluation``, ``pipeline``, ``studies`` or ``cli``.
"""

from orpr_jax.train.checkpoint import (
    latest_step,
    model_signature,
    read_metadata,
    restore_checkpoint,
    save_checkpoint,
)
from orpr_jax.train.pretrain import *  # noqa: F403  (its __all__: the pre-training API)
from orpr_jax.train.pretrain import __all__ as _PRETRAIN_API

__all__ = sorted([
    *_PRETRAIN_API,
    "latest_step",
    "model_signature",
    "read_metadata",
    "restore_checkpoint",
    "save_checkpoint",
])
