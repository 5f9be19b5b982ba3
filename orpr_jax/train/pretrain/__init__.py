"""Supervised pre-training of an order-quantity classifier on simulation-augmented labels.

Stage one of ORPR ("Pretrain-then-Reinforce"): the model learns to imitate the
OR-labelled order quantity ``v`` (a bin index in ``[0, V)``) from the feature history of
each (SKU, warehouse, day) decision. Because bins are ordered, the loss can use soft
targets spread over neighbouring bins (``ordinal_sigma > 0``) so that predicting ``v +- 1``
costs less than predicting a far-away bin.

The run is deterministic given ``PretrainConfig.seed``: the model is initialised from
``nnx.Rngs(seed)``, the row-wise train/validation split from ``key(seed)``, and the batch of
step ``t`` is a slice of a permutation drawn from ``fold_in(batch_key, epoch(t))``. A run
resumed from a checkpoint therefore replays exactly the batches it would have seen.

Modules: :mod:`~.config` (:class:`PretrainConfig`, :class:`PretrainResult`,
:class:`NonFiniteLossError`, :func:`make_optimizer`), :mod:`~.data` (the checks against the
model, :func:`split_by_row`, the batch order), :mod:`~.steps` (:func:`cross_entropy_loss`,
:func:`eval_metrics`, the jitted train and eval steps) and :mod:`~.run` (:func:`pretrain`).
The package imports ``orpr_jax.train.checkpoint`` only of the project (and never
``labels``, ``evaluation``, ``pipeline``, ``studies`` or ``cli``).

References:
    ORPR: "Pretrain-then-Reinforce" for inventory replenishment, arXiv:2512.19001.
"""

from orpr_jax.train.pretrain.config import (
    NonFiniteLossError,
    PretrainConfig,
    PretrainResult,
    make_optimizer,
)
from orpr_jax.train.pretrain.data import split_by_row
from orpr_jax.train.pretrain.run import pretrain
from orpr_jax.train.pretrain.steps import _Steps, cross_entropy_loss, eval_metrics  # noqa: F401

__all__ = [
    "NonFiniteLossError",
    "PretrainConfig",
    "PretrainResult",
    "cross_entropy_loss",
    "eval_metrics",
    "make_optimizer",
    "pretrain",
    "split_by_row",
]
