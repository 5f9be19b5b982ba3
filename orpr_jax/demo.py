"""The demo job: heuristics tuned on the built-in jd_synthetic data, compared on the
held-out year with the paper's metrics. Run with ``bash scripts/demo.sh``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from orpr_jax.evaluation.heuristics import compare_heuristics
from orpr_jax.evaluation.tables import markdown_table, print_table
from orpr_jax.scenarios import jd_period, jd_synthetic_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=1000, help="SKUs in the data set")
    parser.add_argument("--seed", type=int, default=0, help="data-set and simulation seed")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    data = jd_synthetic_data(seed=args.seed, num_skus=args.skus)
    print(f"jd_synthetic: {data.num_rows} rows ({args.skus} SKUs x {len(data.warehouses)} "
          f"warehouses, {len(data.categories)} categories), {data.num_days} days "
          f"[{time.perf_counter() - t0:.1f} s]")
    train, test = jd_period(data, "train"), jd_period(data, "test")
    print(f"tuning per row on days {train[0]}..{sum(train) - 1}, "
          f"testing on days {test[0]}..{sum(test) - 1} (warm-up 28 days excluded)")
    results = compare_heuristics(data, train, test, jax.random.key(args.seed))
    rows = [(r.name, r.metrics) for r in results]
    print_table("jd_synthetic, held-out year", rows)
    for r in results:
        if r.tune_seconds:
            print(f"  {r.name}: tuned in {r.tune_seconds:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heuristics.md").write_text(markdown_table(rows) + "\n")
    (args.out / "heuristics.json").write_text(
        json.dumps({r.name: r.metrics for r in results}, indent=2)
    )
    print(f"wrote {args.out / 'heuristics.md'} and heuristics.json "
          f"[total {time.perf_counter() - t0:.1f} s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
