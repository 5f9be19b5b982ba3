"""Stage one of ORPR: supervised pre-training on OR labels, with orbax checkpoints."""

from orpr_jax.train.checkpoint import (
    latest_step,
    model_signature,
    read_metadata,
    restore_checkpoint,
    save_checkpoint,
)
from orpr_jax.train.pretrain import (
    NonFiniteLossError,
    PretrainConfig,
    PretrainResult,
    cross_entropy_loss,
    eval_metrics,
    make_optimizer,
    pretrain,
    split_by_row,
)

__all__ = [
    "NonFiniteLossError",
    "PretrainConfig",
    "PretrainResult",
    "cross_entropy_loss",
    "eval_metrics",
    "latest_step",
    "make_optimizer",
    "model_signature",
    "pretrain",
    "read_metadata",
    "restore_checkpoint",
    "save_checkpoint",
    "split_by_row",
]
