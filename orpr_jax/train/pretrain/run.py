"""The pre-training run: evaluation, checkpoints, resumption and early stopping.

:func:`pretrain` drives the jitted steps of :mod:`~orpr_jax.train.pretrain.steps` over
the batches of :mod:`~orpr_jax.train.pretrain.data`; the whole run is deterministic given
``PretrainConfig.seed`` (see :mod:`orpr_jax.train.pretrain`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Int
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from orpr_jax.train import checkpoint as ckpt
from orpr_jax.train.pretrain.config import (
    _RESUMABLE_FIELDS,
    NonFiniteLossError,
    PretrainConfig,
    PretrainResult,
    make_optimizer,
)
from orpr_jax.train.pretrain.data import _batch_indices, _take, _validate, split_by_row
from orpr_jax.train.pretrain.steps import _Steps


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


class _Run(NamedTuple):
    """The fixed parts of a pre-training run.

    Attributes:
        config: the run's hyper-parameters (``config_json``: as a dict, for checkpoints).
        run_dir: the folder of ``checkpoints/`` and ``metrics.jsonl``.
        graphdef: the model's graph.
        steps: its jitted train and eval steps.
        inputs: the examples (leading axis ``N``).
        y: ``[N]`` int32 label bins in ``[0, num_bins)``.
        train_idx, val_idx: example indices of the two sides of the split.
        batch_key: PRNG key of the batch order.
        batch_size: examples per step.
        num_bins: the model's ``V``.
        expected: what a checkpoint must match (data hash and model signature).
    """

    config: PretrainConfig
    config_json: dict[str, Any]
    run_dir: Path
    graphdef: nnx.GraphDef
    steps: _Steps
    inputs: Any
    y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    batch_key: jax.Array
    batch_size: int
    num_bins: int
    expected: dict[str, Any]

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"


@dataclasses.dataclass
class _RunState:
    """What a pre-training run carries from step to step (all of it is checkpointed; the
    history is re-read from ``metrics.jsonl``)."""

    params: Any
    opt_state: Any
    rest: Any
    best_params: Any
    step: int = 0
    best_val: float = math.inf
    best_step: int = 0
    bad_evals: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def arrays(self) -> dict[str, Any]:
        """The checkpointed arrays."""
        return {"params": self.params, "opt_state": self.opt_state, "rest": self.rest,
                "best_params": self.best_params}


def _prepare(model_factory, inputs, y, row_ids, config: PretrainConfig, run_dir,
             data_hash: str) -> tuple[_Run, _RunState]:
    """The checked data, split, model, optimiser and steps of a run, and its fresh state."""
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
    run = _Run(config=config, config_json=dataclasses.asdict(config), run_dir=run_dir,
               graphdef=graphdef, steps=steps, inputs=inputs, y=y_np, train_idx=train_idx,
               val_idx=val_idx, batch_key=batch_key, batch_size=batch_size,
               num_bins=num_bins, expected={"data_hash": data_hash, **signature})
    return run, _RunState(params=params, opt_state=opt_state, rest=rest, best_params=params)


def _check_resumable(saved: dict[str, Any], config_json: dict[str, Any]) -> None:
    """Refuse to resume when a field that changes the batches or updates differs."""
    changed = sorted(
        name
        for name, value in saved.items()
        if name not in _RESUMABLE_FIELDS and config_json.get(name) != value
    )
    if changed:
        name = changed[0]
        raise ValueError(
            f"cannot resume: PretrainConfig.{name} was {saved[name]!r} in the "
            f"checkpoint but is {config_json[name]!r} now"
        )


def _start(run: _Run, state: _RunState, resume: bool) -> _RunState:
    """The state to start from: ``state`` (fresh) or the latest checkpoint's; the metrics
    file is rewritten with the evaluations up to that step."""
    existing = ckpt.latest_step(run.run_dir)
    if existing is not None and not resume:
        raise ValueError(
            f"{run.run_dir} already holds checkpoints (latest step {existing}); pass "
            "resume=True or use a fresh run_dir"
        )
    if existing is not None:
        arrays, meta = ckpt.restore_checkpoint(run.run_dir, state.arrays(), run.expected)
        _check_resumable(meta["config"], run.config_json)
        state = _RunState(
            params=arrays["params"],
            opt_state=arrays["opt_state"],
            rest=arrays["rest"],
            best_params=arrays["best_params"],
            step=int(meta["step"]),
            best_val=float(meta["best_val_loss"]),
            best_step=int(meta["best_step"]),
            bad_evals=int(meta["bad_evals"]),
            loss_sum=float(meta["loss_sum"]),
            loss_count=int(meta["loss_count"]),
            stopped_early=bool(meta["stopped_early"]),
            history=_read_history(run.metrics_path, int(meta["step"])),
        )
    run.run_dir.mkdir(parents=True, exist_ok=True)
    # Drop evaluations logged after the checkpoint we resume from (or any stale file).
    run.metrics_path.write_text("".join(json.dumps(entry) + "\n" for entry in state.history))
    return state


def _save(run: _Run, state: _RunState) -> None:
    ckpt.save_checkpoint(
        run.run_dir,
        state.step,
        state.arrays(),
        {
            **run.expected,
            "config": run.config_json,
            "best_val_loss": state.best_val,
            "best_step": state.best_step,
            "bad_evals": state.bad_evals,
            "loss_sum": state.loss_sum,
            "loss_count": state.loss_count,
            "stopped_early": state.stopped_early,
            "num_bins": run.num_bins,
        },
    )


def _train_step(run: _Run, state: _RunState) -> float:
    """One optimiser step on the step's batch; returns its loss.

    Raises:
        NonFiniteLossError: if the loss is NaN or infinite (``state`` is left as it was).
    """
    idx = run.train_idx[_batch_indices(run.batch_key, state.step, run.train_idx.size,
                                       run.batch_size)]
    new = run.steps.train_step(
        state.params, state.opt_state, state.rest, _take(run.inputs, idx),
        jnp.asarray(run.y[idx])
    )
    loss = float(new[3])
    if not math.isfinite(loss):
        raise NonFiniteLossError(
            f"training loss is {loss} at step {state.step + 1}; stopped. The last good "
            f"checkpoint (step {ckpt.latest_step(run.run_dir)}) in {run.run_dir} is untouched."
        )
    state.params, state.opt_state, state.rest = new[0], new[1], new[2]
    state.step += 1
    state.loss_sum, state.loss_count = state.loss_sum + loss, state.loss_count + 1
    return loss


def _evaluate_and_log(run: _Run, state: _RunState) -> None:
    """Evaluate on the validation rows, log the entry, track the best and early stopping."""
    val = _evaluate(run.steps, state.params, state.rest, run.inputs, run.y, run.val_idx,
                    run.batch_size)
    entry = {
        "step": state.step,
        "train_loss": state.loss_sum / state.loss_count,
        **{f"val_{name}": value for name, value in val.items()},
    }
    state.loss_sum, state.loss_count = 0.0, 0
    state.history.append(entry)
    with run.metrics_path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    if val["loss"] < state.best_val:
        state.best_val, state.best_step, state.bad_evals = val["loss"], state.step, 0
        state.best_params = state.params
    else:
        state.bad_evals += 1
        state.stopped_early = run.config.patience > 0 and state.bad_evals >= run.config.patience


def _train_loop(run: _Run, state: _RunState, end_step: int, progress: bool) -> None:
    """Steps until ``end_step`` (or early stopping), evaluating and checkpointing."""
    config = run.config
    columns = (
        TextColumn("pretrain"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("pretrain", total=config.total_steps, completed=state.step, loss=0.0)
        while state.step < end_step and not state.stopped_early:
            loss = _train_step(run, state)
            bar.update(task, completed=state.step, loss=loss)
            if state.step % config.eval_every == 0 or state.step == config.total_steps:
                _evaluate_and_log(run, state)
            if (state.step % config.checkpoint_every == 0 or state.step == end_step
                    or state.stopped_early):
                _save(run, state)


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
    run, state = _prepare(model_factory, inputs, y, row_ids, config, run_dir, data_hash)
    state = _start(run, state, resume)
    start_step = state.step
    end_step = config.total_steps if stop_at_step is None else min(stop_at_step, config.total_steps)
    _train_loop(run, state, end_step, progress)
    if start_step == state.step and ckpt.latest_step(run.run_dir) != state.step:
        _save(run, state)
    best_model = nnx.merge(run.graphdef, state.best_params, state.rest)
    return PretrainResult(
        model=best_model,
        history=state.history,
        best_step=state.best_step,
        best_val_loss=state.best_val,
        stopped_early=state.stopped_early,
        steps_done=state.step,
    )
