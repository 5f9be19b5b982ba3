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
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from orpr_jax.data.dataset import InventoryData

#: Stages in order; ``run_pipeline(..., upto=stage)`` stops after ``stage``.
STAGES = ("data", "label", "pretrain", "align", "evaluate")


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
        algorithms: alignment algorithms (see ``orpr_jax.evaluation.alignment.ALGORITHMS``).
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
        play_mode: how trained PPO / RLOO policies decide: ``"greedy"``, ``"expected"``
            or ``"auto"`` (the cheaper of the two on the training rows and period).
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
        from orpr_jax.evaluation.alignment import ALGORITHMS, PLAY_MODES

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
                 max_train_rows=16, algorithms=("orpr", "pathwise")),
    "cpu": dict(),
    "paper": dict(num_skus=5319, num_warehouses=31, model="default", pretrain_steps=20000,
                  pretrain_batch=1024, num_updates=300, max_train_rows=8192, seeds=3),
}


def _data_hash(data: InventoryData) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.demand).tobytes())
    h.update(np.ascontiguousarray(data.promo).tobytes())
    h.update(data.rows.to_csv(index=False).encode())
    return h.hexdigest()[:16]


def load_run_data(config: RunConfig) -> InventoryData:
    """The run's data set: the user's files, or the built-in jd_synthetic data.

    Raises:
        FileNotFoundError / ValueError: from the loader for missing or malformed files.
    """
    if config.data is not None:
        return load_data_dir(config.data)
    from orpr_jax.scenarios import jd_synthetic_data

    return jd_synthetic_data(seed=config.seed, num_skus=config.num_skus,
                             num_warehouses=config.num_warehouses, num_days=config.num_days)


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".pq", ".csv", ".csv.gz"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def load_data_dir(path: str | Path) -> InventoryData:
    """Reads a data folder in the documented format (``docs/data_format.md``):
    ``sales.{parquet,csv}``, ``rows.{parquet,csv}`` and optionally ``capacity.*``.

    Raises:
        FileNotFoundError: if the folder or one of the two required tables is missing.
        ValueError: from the loader, for malformed tables.
    """
    from orpr_jax.data.loader import load_data

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"data path {folder} is not a folder holding sales.* and "
                                "rows.* tables")
    sales, rows = _find(folder, "sales"), _find(folder, "rows")
    for name, found in (("sales", sales), ("rows", rows)):
        if found is None:
            raise FileNotFoundError(f"data folder {folder} has no {name}.parquet or "
                                    f"{name}.csv")
    return load_data(sales, rows, capacity_path=_find(folder, "capacity"))


def prepare_run_dir(out: str | Path, config: RunConfig, *, resume: bool) -> Path:
    """Creates ``out`` for ``config`` (or checks it when resuming).

    Raises:
        ValueError: if ``out`` holds another run (a different config, or any files) and
            ``resume`` is False, or holds no run when resuming.
    """
    out = Path(out)
    cfg_path = out / "config.json"
    if resume:
        if not cfg_path.exists():
            raise ValueError(f"{out} holds no run to resume (no config.json)")
        return out
    if out.exists() and any(out.iterdir()):
        if cfg_path.exists():
            raise ValueError(f"{out} already holds a run; use `orpr run --resume {out}` to "
                             "continue it or choose another --out")
        raise ValueError(f"{out} is not empty; choose an empty or new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return out


def _periods(data: InventoryData) -> tuple[tuple[int, int], tuple[int, int]]:
    from orpr_jax.scenarios import jd_period

    return jd_period(data, "train"), jd_period(data, "test")


def run_pipeline(config: RunConfig, out: str | Path, *, resume: bool = False,
                 upto: str = "evaluate", progress: bool = True, log=print) -> dict:
    """Runs the pipeline into ``out`` up to stage ``upto`` and returns the results.

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
    """
    from orpr_jax.evaluation.alignment import AlignSettings, align_and_compare
    from orpr_jax.evaluation.pretrained import label_stage, pretrain_stage
    from orpr_jax.labels.labeller import LabelConfig
    from orpr_jax.train.pretrain import PretrainConfig

    if upto not in STAGES:
        raise ValueError(f"upto={upto!r} is not allowed; use one of {list(STAGES)}")
    out = Path(out)
    if resume:
        prepare_run_dir(out, config, resume=True)
        config = RunConfig.from_json(json.loads((out / "config.json").read_text()))
    else:
        prepare_run_dir(out, config, resume=False)
    t0 = time.perf_counter()
    data = load_run_data(config)
    train, test = _periods(data)
    summary = {"rows": data.num_rows, "days": data.num_days, "train": train, "test": test,
               "categories": len(data.categories), "warehouses": len(data.warehouses),
               "data_hash": _data_hash(data), "source": config.data or "jd_synthetic"}
    (out / "data.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"data: {data.num_rows} rows x {data.num_days} days ({summary['source']}), train days "
        f"{train[0]}..{sum(train) - 1}, test days {test[0]}..{sum(test) - 1}")
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
        "train_period": list(train), "test_period": list(test),
    }
    if upto == "align":
        results["seconds"] = time.perf_counter() - t0
        return results
    # The metrics are on disk before the (slower, plotting) report is written.
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    from orpr_jax.evaluation.breakdowns import write_run_report

    results.update(write_run_report(per_seed[0], results, config, data, test, out, log=log))
    results["seconds"] = time.perf_counter() - t0
    return results
