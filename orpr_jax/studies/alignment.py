"""ORPR on the built-in data: every policy of the pipeline's comparison on held-out rows
and days, written as ``report.md`` and ``report.json``.

Run ``python -m orpr_jax.studies.alignment``.
"""

from __future__ import annotations

import jax

from orpr_jax.pipeline.align import align_and_compare
from orpr_jax.pipeline.config import ALGORITHMS, AlignSettings
from orpr_jax.train.pretrain import PretrainConfig


def main(argv: list[str] | None = None) -> int:
    """ORPR on the built-in data: the held-out comparison table of every policy."""
    import argparse
    import json
    from pathlib import Path

    from orpr_jax.evaluation.tables import markdown_table, print_table
    from orpr_jax.scenarios import jd_period, jd_synthetic_data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="small", choices=("small", "default"))
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--updates", type=int, default=AlignSettings.num_updates)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--out", type=Path, default=Path("runs/align"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    data = jd_synthetic_data(seed=args.seed, num_skus=args.skus)
    train, test = jd_period(data, "train"), jd_period(data, "test")
    pc = PretrainConfig(total_steps=args.pretrain_steps, eval_every=100, patience=8,
                        ordinal_sigma=1.0, seed=args.seed)
    rep = align_and_compare(data, train, test, jax.random.key(args.seed), args.out,
                            settings=AlignSettings(num_updates=args.updates),
                            algorithms=tuple(args.algorithms.split(",")), preset=args.preset,
                            pretrain_config=pc, resume=args.resume)
    rows = [(r.name, r.metrics) for r in rep.results]
    print_table(f"held-out rows ({rep.held_out_rows}), test period", rows)
    print(f"aligned on {rep.train_rows} training rows; in-stock target "
          f"{rep.service_target:.3f}; {rep.seconds:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(markdown_table(rows) + "\n")
    (args.out / "report.json").write_text(json.dumps({
        "results": {r.name: {**r.metrics, "train_seconds": r.tune_seconds}
                    for r in rep.results},
        "train_rows": rep.train_rows, "held_out_rows": rep.held_out_rows,
        "service_target": rep.service_target, "seconds": rep.seconds,
        "play_modes": rep.play_modes,
        "histories": rep.histories}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

