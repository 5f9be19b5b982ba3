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

References:
    ORPR: "Pretrain-then-Reinforce" for inventory replenishment, arXiv:2512.19001.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, Float, Int
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from orpr_jax.train import checkpoint as ckpt

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


def split_by_row(
    row_ids: Int[Array, " N"] | np.ndarray, val_fraction: float, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into train and validation sets by whole rows.

    Every example of a row (one SKU-warehouse series) goes to the same side, so the
    validation loss measures generalisation to unseen series rather than to unseen days
    of series already trained on.

    Args:
        row_ids: ``[N]`` integer row id of each example.
        val_fraction: share of distinct rows held out, in [0, 1). With at least two rows
            and ``val_fraction > 0``, at least one row goes to each side.
        key: PRNG key choosing the held-out rows.

    Returns:
        ``(train_idx, val_idx)``: sorted ``int64`` example indices; disjoint, covering
        ``range(N)``. ``val_idx`` is empty when ``val_fraction == 0``.

    Raises:
        ValueError: if ``val_fraction`` is outside [0, 1), or if it is > 0 and there are
            fewer than two distinct rows.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction = {val_fraction!r} is out of range; expected [0, 1)")
    row_ids = np.asarray(row_ids)
    rows = np.unique(row_ids)
    if val_fraction == 0:
        return np.arange(row_ids.shape[0], dtype=np.int64), np.zeros((0,), np.int64)
    if rows.size < 2:
        raise ValueError(
            f"val_fraction = {val_fraction} needs at least 2 distinct rows; got {rows.size}"
        )
    n_val = min(max(1, round(val_fraction * rows.size)), rows.size - 1)
    order = np.asarray(jax.random.permutation(key, rows.size))
    val_rows = rows[order[:n_val]]
    is_val = np.isin(row_ids, val_rows)
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def _soft_targets(
    y: Int[Array, " B"], num_bins: int, ordinal_sigma: float
) -> Float[Array, "B V"]:
    if ordinal_sigma == 0:
        return jax.nn.one_hot(y, num_bins, dtype=jnp.float32)
    bins = jnp.arange(num_bins, dtype=jnp.float32)
    dist = bins[None, :] - y[:, None].astype(jnp.float32)
    weights = jnp.exp(-0.5 * jnp.square(dist / jnp.float32(ordinal_sigma)))
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def cross_entropy_loss(
    logits: Float[Array, "B V"],
    y: Int[Array, " B"],
    num_bins: int,
    ordinal_sigma: float = 0.0,
    weights: Float[Array, " B"] | None = None,
) -> Float[Array, ""]:
    r"""Mean cross-entropy of bin logits against hard or ordinal soft targets.

    With ``ordinal_sigma = 0`` the target is one-hot on the label:
    :math:`\ell = -\log \mathrm{softmax}(z)_y`. With :math:`\sigma > 0` it is a discretised
    Gaussian centred on the label, :math:`q_k \propto \exp(-(k - y)^2 / 2\sigma^2)` for
    :math:`k \in [0, V)`, and :math:`\ell = -\sum_k q_k \log \mathrm{softmax}(z)_k`.

    Args:
        logits: ``[B, V]`` unnormalised log-probabilities over the ``V`` order bins.
        y: ``[B]`` int label bins in ``[0, V)``.
        num_bins: ``V`` (static).
        ordinal_sigma: soft-target standard deviation in bins (static), >= 0.
        weights: optional ``[B]`` example weights (e.g. 0 for padding); the mean is
            weighted, so it is over the examples with weight > 0.

    Returns:
        Scalar float32 mean loss.
    """
    targets = _soft_targets(y, num_bins, ordinal_sigma)
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    per_example = -jnp.sum(targets * log_p, axis=-1)
    if weights is None:
        return jnp.mean(per_example)
    weights = weights.astype(jnp.float32)
    return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def eval_metrics(
    logits: Float[Array, "B V"], y: Int[Array, " B"], weights: Float[Array, " B"]
) -> dict[str, Float[Array, ""]]:
    """Weighted sums of accuracy, within-one-bin accuracy and absolute bin error.

    Returns sums (not means) so that chunks can be added up before dividing by the
    total weight.
    """
    pred = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    err = jnp.abs(pred - y.astype(jnp.int32)).astype(jnp.float32)
    w = weights.astype(jnp.float32)
    return {
        "accuracy": jnp.sum(w * (err == 0).astype(jnp.float32)),
        "within_one": jnp.sum(w * (err <= 1).astype(jnp.float32)),
        "mae_bins": jnp.sum(w * err),
    }


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


def _logits_of(output: Any) -> jax.Array:
    # The foundation model returns (logits, value); a bare classifier returns logits.
    return output[0] if isinstance(output, tuple) else output


def _num_examples(inputs: Any) -> int:
    leaves = jax.tree.leaves(inputs)
    if not leaves:
        raise ValueError("inputs has no arrays")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"every input array needs the same leading (example) axis; got {sizes}")
    return sizes.pop()


def _validate(model: nnx.Module, inputs: Any, y: np.ndarray, row_ids: np.ndarray) -> int:
    """Check data against the model; return the number of bins ``V``."""
    n = _num_examples(inputs)
    if n == 0:
        raise ValueError("the data set is empty (0 examples)")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match inputs; got {y.shape}")
    if row_ids.shape != (n,):
        raise ValueError(f"row_ids must have shape ({n},) to match inputs; got {row_ids.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be integer bin labels; got dtype {y.dtype}")
    sample = jax.tree.map(lambda a: jnp.asarray(a[:1]), inputs)
    try:
        logits = _logits_of(model(sample, deterministic=True))
    except (TypeError, ValueError) as err:
        raise ValueError(f"inputs do not fit the model: {err}") from err
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ValueError(f"model logits must have shape [N, V]; got {logits.shape} for N = 1")
    num_bins = int(logits.shape[1])
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_bins:
        raise ValueError(f"labels must lie in [0, {num_bins}) (model bins); got [{lo}, {hi}]")
    if np.unique(y).size < 2:
        raise ValueError(f"single-class data set: every label is {lo}; nothing to learn")
    return num_bins


def _take(inputs: Any, idx: jax.Array) -> Any:
    return jax.tree.map(lambda a: a[idx], inputs)


class _Steps:
    """The jitted train and eval steps for one model graph and config."""

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        tx: optax.GradientTransformation,
        num_bins: int,
        ordinal_sigma: float,
    ) -> None:
        def loss_fn(params, rest, inputs, y):
            # copy=True: fresh Variables at this (grad) trace level, so the model may
            # update its non-parameter state (dropout RNG counters) while differentiated.
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = _logits_of(model(inputs, deterministic=False))
            loss = cross_entropy_loss(logits, y, num_bins, ordinal_sigma)
            _, new_rest = nnx.split(model, nnx.Param, ...)[1:]
            return loss, new_rest

        @jax.jit
        def train_step(params, opt_state, rest, inputs, y):
            (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, rest, inputs, y
            )
            # optax's Adam bias correction computes ``b1 ** count`` (Python float ** int32),
            # which strict dtype promotion rejects; the standard rule gives float32 there.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, opt_state, new_rest, loss

        @jax.jit
        def eval_step(params, rest, inputs, y, weights):
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = _logits_of(model(inputs, deterministic=True))
            loss = cross_entropy_loss(logits, y, num_bins, ordinal_sigma, weights)
            sums = eval_metrics(logits, y, weights)
            sums["loss"] = loss * jnp.sum(weights.astype(jnp.float32))
            return sums

        self.train_step = train_step
        self.eval_step = eval_step


def _batch_indices(batch_key: jax.Array, step: int, n_train: int, batch_size: int) -> np.ndarray:
    """Positions (into the train set) of the batch for 0-based step ``step``."""
    per_epoch = n_train // batch_size
    epoch, pos = divmod(step, per_epoch)
    perm = jax.random.permutation(jax.random.fold_in(batch_key, epoch), n_train)
    return np.asarray(perm[pos * batch_size : (pos + 1) * batch_size])


def _evaluate(steps: _Steps, params, rest, inputs, y, idx: np.ndarray, chunk: int):
    """Weighted-mean metrics over ``idx`` in fixed-size padded chunks (one compile)."""
    totals: dict[str, float] = {}
    for start in range(0, idx.size, chunk):
        part = idx[start : start + chunk]
        pad = chunk - part.size
        take = np.concatenate([part, np.full(pad, part[0], dtype=part.dtype)])
        weights = jnp.asarray(np.concatenate([np.ones(part.size), np.zeros(pad)]), jnp.float32)
        sums = steps.eval_step(params, rest, _take(inputs, take), jnp.asarray(y[take]), weights)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: value / idx.size for name, value in totals.items()}


def _read_history(path: Path, up_to_step: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in lines if entry["step"] <= up_to_step]


def pretrain(
    model_factory: Callable[[nnx.Rngs], nnx.Module],
    inputs: Any,
    y: Int[Array, " N"] | np.ndarray,
    row_ids: Int[Array, " N"] | np.ndarray,
    config: PretrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    data_hash: str = "",
    progress: bool = True,
    stop_at_step: int | None = None,
) -> PretrainResult:
    """Pre-train a bin classifier with AdamW, evaluating, checkpointing and early-stopping.

    Args:
        model_factory: builds the model from ``nnx.Rngs``; the model is called as
            ``model(inputs, deterministic=bool)`` and returns ``[N, V]`` logits or a tuple
            whose first element is the logits (``FoundationModel`` returns
            ``(logits, value)``).
        inputs: pytree of arrays with leading example axis ``N`` (e.g. ``ModelInputs``).
        y: ``[N]`` int label bins in ``[0, V)``.
        row_ids: ``[N]`` row (series) id of each example, for the train/validation split.
        config: the run's hyper-parameters.
        run_dir: directory for ``checkpoints/`` and ``metrics.jsonl``.
        resume: continue from the latest checkpoint in ``run_dir`` (start fresh if none).
        data_hash: identifies the label set; a checkpoint of other data is not resumed.
        progress: show a rich progress bar.
        stop_at_step: stop (as if interrupted) once this many steps are done, after
            writing a checkpoint; a later ``resume=True`` call continues the same run.

    Returns:
        A ``PretrainResult`` whose model holds the best-validation parameters.

    Raises:
        ValueError: on an empty or single-class data set, labels outside ``[0, V)``,
            inputs that do not fit the model, an existing run in ``run_dir`` without
            ``resume``, or a checkpoint of another model config / data hash / training
            config.
        NonFiniteLossError: (a ``FloatingPointError``) as soon as a training loss is NaN or
            infinite; nothing is written for that step, so the last checkpoint stays valid.
    """
    run_dir = Path(run_dir)
    y_np = np.asarray(y)
    row_np = np.asarray(row_ids)
    model = model_factory(nnx.Rngs(config.seed))
    num_bins = _validate(model, inputs, y_np, row_np)
    y_np = y_np.astype(np.int32)

    split_key, batch_key = jax.random.split(jax.random.key(config.seed))
    train_idx, val_idx = split_by_row(row_np, config.val_fraction, split_key)
    if val_idx.size == 0:
        val_idx = train_idx
    batch_size = min(config.batch_size, train_idx.size)

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config)
    opt_state = tx.init(params)
    steps = _Steps(graphdef, tx, num_bins, config.ordinal_sigma)
    model_config = getattr(model, "config", None)
    signature = ckpt.model_signature(params, model_config)
    expected = {"data_hash": data_hash, **signature}
    config_json = dataclasses.asdict(config)

    metrics_path = run_dir / "metrics.jsonl"
    start_step = 0
    best_params = params
    best_val = math.inf
    best_step = 0
    bad_evals = 0
    loss_sum, loss_count = 0.0, 0
    stopped_early = False
    history: list[dict[str, float]] = []
    existing = ckpt.latest_step(run_dir)
    if existing is not None and not resume:
        raise ValueError(
            f"{run_dir} already holds checkpoints (latest step {existing}); pass resume=True "
            "or use a fresh run_dir"
        )
    if existing is not None:
        arrays, meta = ckpt.restore_checkpoint(
            run_dir,
            {"params": params, "opt_state": opt_state, "rest": rest, "best_params": params},
            expected,
        )
        changed = sorted(
            name
            for name, value in meta["config"].items()
            if name not in _RESUMABLE_FIELDS and config_json.get(name) != value
        )
        if changed:
            name = changed[0]
            raise ValueError(
                f"cannot resume: PretrainConfig.{name} was {meta['config'][name]!r} in the "
                f"checkpoint but is {config_json[name]!r} now"
            )
        params, opt_state = arrays["params"], arrays["opt_state"]
        rest, best_params = arrays["rest"], arrays["best_params"]
        start_step = int(meta["step"])
        best_val = float(meta["best_val_loss"])
        best_step = int(meta["best_step"])
        bad_evals = int(meta["bad_evals"])
        loss_sum, loss_count = float(meta["loss_sum"]), int(meta["loss_count"])
        stopped_early = bool(meta["stopped_early"])
        history = _read_history(metrics_path, start_step)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Drop evaluations logged after the checkpoint we resume from (or any stale file).
    metrics_path.write_text("".join(json.dumps(entry) + "\n" for entry in history))

    def save(step: int) -> None:
        ckpt.save_checkpoint(
            run_dir,
            step,
            {"params": params, "opt_state": opt_state, "rest": rest, "best_params": best_params},
            {
                **expected,
                "config": config_json,
                "best_val_loss": best_val,
                "best_step": best_step,
                "bad_evals": bad_evals,
                "loss_sum": loss_sum,
                "loss_count": loss_count,
                "stopped_early": stopped_early,
                "num_bins": num_bins,
            },
        )

    end_step = config.total_steps if stop_at_step is None else min(stop_at_step, config.total_steps)
    columns = (
        TextColumn("pretrain"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    step = start_step
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("pretrain", total=config.total_steps, completed=start_step, loss=0.0)
        while step < end_step and not stopped_early:
            idx = train_idx[_batch_indices(batch_key, step, train_idx.size, batch_size)]
            new = steps.train_step(
                params, opt_state, rest, _take(inputs, idx), jnp.asarray(y_np[idx])
            )
            loss = float(new[3])
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"training loss is {loss} at step {step + 1}; stopped. The last good "
                    f"checkpoint (step {ckpt.latest_step(run_dir)}) in {run_dir} is untouched."
                )
            params, opt_state, rest = new[0], new[1], new[2]
            step += 1
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            bar.update(task, completed=step, loss=loss)

            if step % config.eval_every == 0 or step == config.total_steps:
                val = _evaluate(steps, params, rest, inputs, y_np, val_idx, batch_size)
                entry = {
                    "step": step,
                    "train_loss": loss_sum / loss_count,
                    **{f"val_{name}": value for name, value in val.items()},
                }
                loss_sum, loss_count = 0.0, 0
                history.append(entry)
                with metrics_path.open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                if val["loss"] < best_val:
                    best_val, best_step, bad_evals, best_params = val["loss"], step, 0, params
                else:
                    bad_evals += 1
                    stopped_early = config.patience > 0 and bad_evals >= config.patience
            if step % config.checkpoint_every == 0 or step == end_step or stopped_early:
                save(step)

    if start_step == step and ckpt.latest_step(run_dir) != step:
        save(step)
    best_model = nnx.merge(graphdef, best_params, rest)
    return PretrainResult(
        model=best_model,
        history=history,
        best_step=best_step,
        best_val_loss=best_val,
        stopped_early=stopped_early,
        steps_done=step,
    )
