"""The end-to-end ORPR pipeline behind ``orpr run``: data -> OR labels -> pretraining ->
alignment -> evaluation -> simulated field test -> report, in one run folder.

A run folder holds ``config.json`` (the resolved :class:`RunConfig`), ``data.json`` (the
data set's size and hash), one ``seed<k>/`` folder per training seed (label cache,
pretraining and alignment checkpoints with their ``metrics.jsonl``), ``results.json`` and
the report (``report.md`` + PNG plots). Every stage resumes from what is already in the
folder, so an interrupted run finishes with ``orpr run --resume DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax

from orpr_jax.labels.labeller import LabelConfig
from orpr_jax.pipeline.align import align_and_compare
from orpr_jax.pipeline.config import PRESETS, STAGES, AlignSettings, RunConfig
from orpr_jax.pipeline.lock import LOCK_NAME, RunDirInUse, lock_run_dir
from orpr_jax.pipeline.stages import (
    data_stage,
    label_stage,
    load_data_dir,
    load_run_data,
    pretrain_stage,
)
from orpr_jax.train.pretrain import PretrainConfig

__all__ = ["PRESETS", "STAGES", "RunConfig", "RunDirInUse", "load_data_dir", "load_run_data",
           "lock_run_dir", "prepare_run_dir", "run_pipeline"]


def _check_run_dir(out: Path, *, resume: bool) -> None:
    """Raises ``ValueError`` unless ``out`` holds a run (``resume``) or no files (a new
    run; a lock file left by a crash does not count)."""
    cfg_path = out / "config.json"
    if resume:
        if not cfg_path.exists():
            raise ValueError(f"{out} holds no run to resume (no config.json)")
        return
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        if cfg_path.exists():
            raise ValueError(f"{out} already holds a run; use `orpr run --resume {out}` to "
                             "continue it or choose another --out")
        raise ValueError(f"{out} is not empty; choose an empty or new --out folder")


def prepare_run_dir(out: str | Path, config: RunConfig, *, resume: bool) -> Path:
    """Creates ``out`` for ``config`` (or checks it when resuming).

    :func:`run_pipeline` calls it with the folder locked (:func:`lock_run_dir`).

    Raises:
        ValueError: if ``out`` holds another run (a different config, or any files) and
            ``resume`` is False, or holds no run when resuming.
        OSError: if ``config.json`` cannot be written.
    """
    out = Path(out)
    _check_run_dir(out, resume=resume)
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return out


def run_pipeline(config: RunConfig, out: str | Path, *, resume: bool = False,
                 upto: str = "evaluate", progress: bool = True, log=print) -> dict:
    """Runs the pipeline into ``out`` up to stage ``upto`` and returns the results.

    The run folder is locked for the call (:func:`~orpr_jax.pipeline.lock.lock_run_dir`):
    a second process on the same folder is refused at once, and the lock goes with the
    process on any exit, a crash included.

    Args:
        config: the run's config.
        out: run folder (created; must be empty unless ``resume``).
        resume: continue the run in ``out`` (its saved config is used).
        upto: last stage to run, one of :data:`STAGES`.
        progress: progress bars.
        log: called with one-line progress messages.

    Returns:
        ``results.json``'s contents (for ``upto="evaluate"``), else a stage summary.

    Raises:
        ValueError: for a bad ``upto`` or run folder (see :func:`prepare_run_dir`).
        RunDirInUse: if another process holds the run folder.
        OSError: if a file of the run cannot be written (no space, no permission); what
            is on disk is kept, so ``resume`` continues once the cause is fixed.
    """
    if upto not in STAGES:
        raise ValueError(f"upto={upto!r} is not allowed; use one of {list(STAGES)}")
    out = Path(out)
    # Checked before the lock so that no lock file lands in a folder that is not a run's.
    _check_run_dir(out, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    with lock_run_dir(out):
        # ... and again under it: another process may have started a run here meanwhile.
        prepare_run_dir(out, config, resume=resume)
        if resume:
            config = RunConfig.from_json(json.loads((out / "config.json").read_text()))
        return _run_stages(config, out, upto, progress, log)


def _run_stages(config: RunConfig, out: Path, upto: str, progress: bool, log) -> dict:
    t0 = time.perf_counter()
    data, train, test, summary = data_stage(config, out, log)
    if upto == "data":
        return summary
    lc = LabelConfig(alpha=config.alpha, grouping="row", objective="units")
    pc = PretrainConfig(total_steps=config.pretrain_steps, batch_size=config.pretrain_batch,
                        eval_every=max(1, min(100, config.pretrain_steps)), patience=8,
                        ordinal_sigma=1.0, seed=config.seed)
    # Every alignment setting the run config names (same field names) is passed on.
    settings = AlignSettings(**{f.name: getattr(config, f.name)
                                for f in dataclasses.fields(AlignSettings)
                                if hasattr(config, f.name)})
    per_seed = []
    for k in range(config.seeds):
        seed = config.seed + k
        key = jax.random.key(seed)
        seed_dir = out / f"seed{k}"
        common = dict(label_config=lc, held_out_fraction=config.held_out_fraction)
        if upto == "label":
            labels = label_stage(data, train, key, seed_dir, **common)
            log(f"seed {seed}: {labels.meta['dates']} dates x {labels.meta['rows']} rows "
                "labelled")
            continue
        if upto == "pretrain":
            stage = pretrain_stage(data, train, key, seed_dir, preset=config.model,
                                   pretrain_config=pc, resume=True, progress=progress,
                                   **common)
            log(f"seed {seed}: pretrained, best step {stage.result.best_step}")
            continue
        rep = align_and_compare(data, train, test, key, seed_dir, settings=settings,
                                algorithms=config.algorithms, preset=config.model,
                                pretrain_config=pc, resume=True, progress=progress,
                                **common)
        log(f"seed {seed}: aligned and evaluated [{time.perf_counter() - t0:.0f} s]")
        per_seed.append(rep)
    if upto in ("label", "pretrain"):
        return {"stage": upto, "seconds": time.perf_counter() - t0}
    results = _collect(per_seed, config, data, train, test, out, t0, upto, log)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


def _collect(per_seed, config, data, train, test, out, t0, upto, log) -> dict:
    results = {
        "config": config.to_json(),
        "by_seed": [{r.name: {**r.metrics, "train_seconds": r.tune_seconds}
                     for r in rep.results} for rep in per_seed],
        "histories": {name: h for name, h in per_seed[0].histories.items()},
        "play_modes": [rep.play_modes for rep in per_seed],
        "held_out_rows": per_seed[0].held_out_rows,
        "train_rows": per_seed[0].train_rows,
        "service_target": per_seed[0].service_target,
        "service_targets": [rep.service_targets for rep in per_seed],
        "train_period": list(train), "test_period": list(test),
    }
    if upto == "align":
        results["seconds"] = time.perf_counter() - t0
        return results
    # The metrics are on disk before the (slower, plotting) report is written.
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    from orpr_jax.evaluation.breakdowns import write_run_report  # plotting: imported late

    results.update(write_run_report(per_seed[0], results, config, data, test, out, log=log))
    results["seconds"] = time.perf_counter() - t0
    return results
