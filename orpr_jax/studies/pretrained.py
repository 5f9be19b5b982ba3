"""The pretrained foundation model on held-out rows beside the OR policy (hindsight
labels, the teacher) and the baselines a planner would field (the incumbent rule and the
per-row tuned inventory days, base-stock, forecast-following base-stock and (s, S)).

The model plays the decoding (argmax, expected v or a quantile) that costs least on the
training rows over the training period, the rule the pipeline applies to every learned
policy; the cost of every candidate decoding on those rows is in the report.

Rows are split once: the foundation model is pretrained on the OR labels of the training
rows over the first year and evaluated on the held-out rows over the second year.

Run ``python -m orpr_jax.studies.pretrained``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.baselines import HeuristicResult, evaluated, fielded_baselines
from orpr_jax.labels.labeller import label_decisions
from orpr_jax.pipeline.align import choose_play_mode
from orpr_jax.pipeline.stages import pretrain_stage
from orpr_jax.policies import label_policy
from orpr_jax.policies.foundation import count_params
from orpr_jax.train.agents import make_foundation_agent
from orpr_jax.train.pretrain import PretrainConfig


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
    decoding: dict = dataclasses.field(default_factory=dict)



def pretrain_and_compare(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    preset: str = "small",
    warmup_days: int = 28,
    **pretrain_options,
) -> PretrainReport:
    """Labels the first year, pretrains on the training rows, compares on held-out rows.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the labelled, tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key.
        run_dir: run folder (label cache, checkpoints, metrics.jsonl).
        preset: ``"small"`` or ``"default"`` foundation model.
        warmup_days: leading days excluded from the metrics.
        **pretrain_options: the other keywords of
            :func:`~orpr_jax.pipeline.stages.pretrain_stage` (``label_config``,
            ``pretrain_config``, ``held_out_fraction``, ``resume``, ``progress``).

    Returns:
        A :class:`PretrainReport`.
    """
    t_start = time.perf_counter()
    stage = pretrain_stage(data, train, key, run_dir, preset=preset, **pretrain_options)
    _, label_key, tune_key, eval_key = jax.random.split(key, 4)
    lc, held, result = stage.label_config, stage.held, stage.result

    # Held-out rows over the second year; baselines tuned on their first year.
    d_held = data.select_rows(held)
    env_te, p_te = env_from_data(d_held, start=test[0], num_days=test[1])
    env_ht, p_ht = env_from_data(d_held, start=train[0], num_days=train[1])
    out, _ = fielded_baselines(d_held, (env_ht, p_ht), train, (env_te, p_te), test,
                               tune_key, eval_key, warmup_days, lc.window)

    def run(name, policy):
        out.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days))

    or_labels = label_decisions(env_te, p_te, label_key, lc)
    run("OR policy (hindsight labels, the teacher)", label_policy(or_labels, lc.window))
    agent = make_foundation_agent(result.model, np.asarray(lc.candidates, np.float32),
                                  alpha=lc.alpha, window=lc.window)
    # The decoding is chosen on the training rows over the training period.
    d_seen = data.select_rows(stage.seen)
    env_tr, p_tr = env_from_data(d_seen, start=train[0], num_days=train[1])
    agent, decoding = choose_play_mode(agent, env_tr, p_tr, tune_key, train[1], warmup_days)
    run(f"pretrained foundation model ({preset}, {decoding['mode']})", agent)
    return PretrainReport(
        results=out, train_rows=len(stage.seen), held_out_rows=len(held), samples=stage.samples,
        params=count_params(result.model), best_step=result.best_step, history=result.history,
        seconds=time.perf_counter() - t_start, decoding=decoding,
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
        "last_eval": last, "seconds": rep.seconds, "decoding": rep.decoding}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
