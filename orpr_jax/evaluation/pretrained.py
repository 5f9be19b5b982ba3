"""Pretraining on the OR labels and the pretrained policy on held-out rows.

Rows are split once: the foundation model is pretrained on the OR labels of the training
rows over the first year and evaluated, on the held-out rows over the second year, beside
the OR policy (labels computed with hindsight on those rows and days, the teacher) and
base-stock tuned per row on the first year.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.heuristics import HeuristicResult, evaluated, tune_base_stock
from orpr_jax.evaluation.or_policy import label_policy
from orpr_jax.labels.dataset import cached_labels
from orpr_jax.labels.labeller import LabelConfig, label_decisions
from orpr_jax.policies import BaseStock
from orpr_jax.policies.features import inputs_from_labels
from orpr_jax.policies.foundation import (
    FoundationConfig,
    FoundationModel,
    count_params,
    make_foundation_policy,
)
from orpr_jax.train.pretrain import PretrainConfig, pretrain


@dataclasses.dataclass
class PretrainReport:
    """What :func:`pretrain_and_compare` measured."""

    results: list[HeuristicResult]
    train_rows: int
    held_out_rows: int
    samples: int
    params: int
    best_step: int
    history: list[dict]
    seconds: float


@dataclasses.dataclass
class PretrainStage:
    """The pretraining stage shared by the comparisons: the row split, the OR labels of
    the training rows, and the pretrained model.

    Attributes:
        seen: sorted indices of the training rows.
        held: sorted indices of the held-out rows.
        label_config: the OR model that labelled the training rows.
        labels: the training rows' label set.
        model_config: the foundation model's config.
        result: the pretraining result (``result.model`` holds the best parameters).
        samples: labelled decisions used.
    """

    seen: np.ndarray
    held: np.ndarray
    label_config: LabelConfig
    labels: object
    model_config: FoundationConfig
    result: object
    samples: int


def _split_rows(data: InventoryData, key: jax.Array, held_out_fraction: float):
    split_key = jax.random.split(key, 4)[0]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(split_key)).ravel())
    perm = rng.permutation(data.num_rows)
    n_held = max(1, int(round(held_out_fraction * data.num_rows)))
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def label_stage(
    data: InventoryData,
    train: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    label_config: LabelConfig | None = None,
    held_out_fraction: float = 0.2,
):
    """The OR labels of the training rows on ``train`` (cached under ``run_dir/labels``);
    the row split and the key use are those of :func:`pretrain_stage`."""
    lc = label_config or LabelConfig(alpha=0.98, grouping="row", objective="units")
    seen, _ = _split_rows(data, key, held_out_fraction)
    label_key = jax.random.split(key, 4)[1]
    env_tr, p_tr = env_from_data(data.select_rows(seen), start=train[0], num_days=train[1])
    labels, _ = cached_labels(env_tr, p_tr, label_key, lc, Path(run_dir) / "labels")
    return labels


def pretrain_stage(
    data: InventoryData,
    train: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    label_config: LabelConfig | None = None,
    preset: str = "small",
    pretrain_config: PretrainConfig | None = None,
    held_out_fraction: float = 0.2,
    resume: bool = False,
    progress: bool = True,
) -> PretrainStage:
    """Splits the rows, labels the training rows on ``train`` (cached under
    ``run_dir/labels``) and pretrains the foundation model (``run_dir/pretrain``).

    ``key`` is split as in :func:`pretrain_and_compare`, so both see the same split.
    """
    run_dir = Path(run_dir)
    lc = label_config or LabelConfig(alpha=0.98, grouping="row", objective="units")
    pc = pretrain_config or PretrainConfig()
    seen, held = _split_rows(data, key, held_out_fraction)
    labels = label_stage(data, train, key, run_dir, label_config=lc,
                         held_out_fraction=held_out_fraction)
    inputs, y, row_ids = inputs_from_labels(labels)
    mcfg = FoundationConfig.preset(preset, len(lc.candidates), data_history_length(labels),
                                   len(data.categories))
    result = pretrain(
        lambda rngs: FoundationModel(mcfg, rngs=rngs), inputs, y, row_ids, pc,
        run_dir / "pretrain", resume=resume, data_hash=labels.meta.get("input_hash", ""),
        progress=progress,
    )
    return PretrainStage(seen=seen, held=held, label_config=lc, labels=labels,
                         model_config=mcfg, result=result, samples=int(y.shape[0]))


def data_history_length(labels) -> int:
    """H of the observations the labels were computed from."""
    return int(np.shape(labels.features.sales_history)[-1])


def pretrain_and_compare(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    label_config: LabelConfig | None = None,
    preset: str = "small",
    pretrain_config: PretrainConfig | None = None,
    held_out_fraction: float = 0.2,
    warmup_days: int = 28,
    resume: bool = False,
    progress: bool = True,
) -> PretrainReport:
    """Labels the first year, pretrains on the training rows, compares on held-out rows.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the labelled, tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key.
        run_dir: run folder (label cache, checkpoints, metrics.jsonl).
        label_config: the OR model (default: per row, unit objective, alpha 0.98).
        preset: ``"small"`` or ``"default"`` foundation model.
        pretrain_config: optimisation settings.
        held_out_fraction: share of rows never seen in pretraining.
        warmup_days: leading days excluded from the metrics.
        resume: continue pretraining from the run folder's last checkpoint.
        progress: show progress bars.

    Returns:
        A :class:`PretrainReport`.
    """
    t_start = time.perf_counter()
    stage = pretrain_stage(data, train, key, run_dir, label_config=label_config,
                           preset=preset, pretrain_config=pretrain_config,
                           held_out_fraction=held_out_fraction, resume=resume,
                           progress=progress)
    _, label_key, tune_key, eval_key = jax.random.split(key, 4)
    lc, held, result = stage.label_config, stage.held, stage.result

    # Held-out rows over the second year.
    d_held = data.select_rows(held)
    env_te, p_te = env_from_data(d_held, start=test[0], num_days=test[1])
    env_ht, p_ht = env_from_data(d_held, start=train[0], num_days=train[1])
    out = []

    def run(name, policy):
        out.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days))

    best_level = tune_base_stock(d_held, env_ht, p_ht, train, tune_key, warmup_days)
    run("base-stock (tuned per row)", BaseStock(best_level))
    or_labels = label_decisions(env_te, p_te, label_key, lc)
    run("OR policy (hindsight labels, the teacher)", label_policy(or_labels, lc.window))
    v_values = jnp.asarray(lc.candidates)
    model = result.model
    run(f"pretrained foundation model ({preset}, argmax bin)",
        make_foundation_policy(model, v_values, alpha=lc.alpha, window=lc.window))
    run(f"pretrained foundation model ({preset}, expected v)",
        make_foundation_policy(model, v_values, alpha=lc.alpha, window=lc.window,
                               expected_v=True))
    return PretrainReport(
        results=out, train_rows=len(stage.seen), held_out_rows=len(held), samples=stage.samples,
        params=count_params(model), best_step=result.best_step, history=result.history,
        seconds=time.perf_counter() - t_start,
    )



def main(argv: list[str] | None = None) -> int:
    """Pretrains on the built-in data's OR labels and writes the held-out comparison."""
    import argparse
    import json

    from orpr_jax.evaluation.tables import markdown_table, print_table
    from orpr_jax.scenarios import jd_period, jd_synthetic_data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="small", choices=("small", "default"))
    parser.add_argument("--steps", type=int, default=3000, help="pretraining steps")
    parser.add_argument("--out", type=Path, default=Path("runs/pretrain"))
    parser.add_argument("--resume", action="store_true", help="continue from a checkpoint")
    args = parser.parse_args(argv)
    data = jd_synthetic_data(seed=args.seed, num_skus=args.skus)
    train, test = jd_period(data, "train"), jd_period(data, "test")
    pc = PretrainConfig(total_steps=args.steps, eval_every=100, patience=8, ordinal_sigma=1.0,
                        seed=args.seed)
    rep = pretrain_and_compare(data, train, test, jax.random.key(args.seed), args.out,
                               preset=args.preset, pretrain_config=pc, resume=args.resume)
    rows = [(r.name, r.metrics) for r in rep.results]
    print_table(f"held-out rows ({rep.held_out_rows}), second year", rows)
    last = rep.history[-1] if rep.history else {}
    print(f"{rep.params:,} parameters, {rep.samples:,} labelled decisions of {rep.train_rows} "
          f"rows, best step {rep.best_step}; last eval {last}; {rep.seconds:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(markdown_table(rows) + "\n")
    (args.out / "report.json").write_text(json.dumps({
        "results": {r.name: r.metrics for r in rep.results}, "params": rep.params,
        "samples": rep.samples, "train_rows": rep.train_rows,
        "held_out_rows": rep.held_out_rows, "best_step": rep.best_step,
        "last_eval": last, "seconds": rep.seconds}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
