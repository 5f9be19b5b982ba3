"""OR-label throughput: candidate replays, the three selection solvers, paper scale.

Usage::

    python benchmarks/bench_labels.py --json PATH          # full run (paper scale included)
    python benchmarks/bench_labels.py --quick --json PATH  # small smoke run

JSON: ``{"device", "versions", "replay": {"row_days_per_s", ...}, "selection":
{"milp_solves_per_s", "batched_cvxpy_solves_per_s", "fresh_cvxpy_loop_solves_per_s",
"jax_fast_solves_per_s", "batched_vs_loop", "max_rel_gap_fast_vs_milp", ...},
"paper_scale": {"rows", "dates", "seconds", ...}}``.

The paper-scale run labels about 70k SKU x warehouse rows (5,319 SKUs over 31 warehouses
of the synthetic generator) at 52 weekly dates end to end with the JAX fast path; the MILP
and the batched cvxpy relaxation then re-solve a sample of the recorded selection
problems and the objective gaps are reported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import env_info, peak_rss_mb, time_jax, write_json  # noqa: E402
from selection_instances import benchmark_selection  # noqa: E402

from orpr_jax.data.dataset import env_from_data  # noqa: E402
from orpr_jax.data.synthetic import SyntheticSpec, generate  # noqa: E402
from orpr_jax.labels import selection as sel  # noqa: E402
from orpr_jax.labels.labeller import LabelConfig, label_decisions  # noqa: E402
from orpr_jax.labels.replay import replay_candidates, replay_config, row_horizons  # noqa: E402
from orpr_jax.sim.dynamics import initial_state  # noqa: E402


def bench_replay(num_skus: int, num_warehouses: int, repeats: int = 3) -> dict:
    """Row-days per second of one replay call (rows x candidates x horizon days)."""
    data = generate(jax.random.key(0), SyntheticSpec(num_skus=num_skus,
                                                     num_warehouses=num_warehouses))
    env, params = env_from_data(data, start=28, num_days=200)
    lc = LabelConfig()
    rcfg = replay_config(env.config)
    row_h = row_horizons(env.config, params, lc.margin, lc.max_horizon)
    horizon = int(jnp.max(row_h))
    state = initial_state(env.config, params)
    cands = jnp.asarray(lc.candidates)
    demand = params.demand_trace[None, :horizon]

    def call():
        return replay_candidates(rcfg, params, state, cands, demand, row_h,
                                 jax.random.key(1), horizon, lc.window)

    # First call (trace + compile + run) apart, then the best of ``repeats`` calls.
    timing = time_jax(call, repeats=repeats)
    steady = timing.steady_s
    work = env.num_rows * len(lc.candidates) * horizon
    return {"rows": env.num_rows, "candidates": len(lc.candidates), "horizon": horizon,
            "row_days_per_s": work / steady, "steady_s": steady,
            "compile_s": timing.compile_s}


def bench_selection(batch: int, groups: int, choices: int) -> dict:
    """The three solvers on random problems (see ``selection_instances.benchmark_selection``)."""
    r = benchmark_selection(batch, groups, choices)
    out = {
        "problems": batch, "groups": groups, "choices": choices,
        "milp_solves_per_s": r["milp_solves_per_s"],
        "batched_cvxpy_solves_per_s": r["batched_lp_full_solves_per_s"],
        "batched_cvxpy_layer_only_solves_per_s": r["batched_lp_solves_per_s"],
        "fresh_cvxpy_loop_solves_per_s": r["fresh_lp_loop_solves_per_s"],
        "jax_fast_solves_per_s": r["dual_solves_per_s"],
        "max_rel_gap_fast_vs_milp": r["max_rel_gap_fast_vs_milp"],
        "mean_rel_gap_fast_vs_milp": r["mean_rel_gap_fast_vs_milp"],
        "max_rel_gap_batched_vs_milp": r["max_rel_gap_batched_lp_vs_milp"],
        "jax_fast_compile_s": r["dual_compile_s"],
    }
    out["batched_vs_loop"] = out["batched_cvxpy_solves_per_s"] / out[
        "fresh_cvxpy_loop_solves_per_s"]
    out["fast_vs_batched"] = out["jax_fast_solves_per_s"] / out["batched_cvxpy_solves_per_s"]
    return out


def bench_paper_scale(num_skus: int, num_warehouses: int, dates: int, check: int) -> dict:
    """Labels ``dates`` weekly decisions for every row end to end; checks a sample."""
    t0 = time.perf_counter()
    data = generate(jax.random.key(0), SyntheticSpec(num_skus=num_skus,
                                                     num_warehouses=num_warehouses))
    lc = LabelConfig(max_dates=dates)
    env, params = env_from_data(data, start=28, num_days=dates * lc.stride + lc.max_horizon)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = label_decisions(env, params, jax.random.key(1), lc)
    seconds = time.perf_counter() - t0
    # Re-solve a sample of the recorded problems exactly and with the batched relaxation.
    rng = np.random.default_rng(0)
    flat = [(d, w) for d in range(labels.v.shape[0]) for w in range(labels.budget.shape[1])]
    pick = rng.choice(len(flat), size=min(check, len(flat)), replace=False)
    idx = tuple(np.array([flat[i] for i in pick]).T)
    problem = sel.SelectionProblem(
        stock=jnp.asarray(labels.stock[idx]), loss=jnp.asarray(labels.loss[idx]),
        budget=jnp.asarray(labels.budget[idx]), allowed=jnp.asarray(labels.allowed[idx]),
        active=jnp.asarray(labels.active[idx]))
    fast = sel.solve_dual(problem)
    milp = sel.solve_milp(problem)
    lp = sel.solve_batched_lp(problem)
    both = np.asarray(milp.feasible) & np.asarray(fast.feasible)
    ref = np.maximum(np.asarray(milp.objective)[both], 1e-12)
    gap_fast = (np.asarray(fast.objective)[both] - ref) / ref
    both_lp = both & np.asarray(lp.feasible)
    ref_lp = np.maximum(np.asarray(milp.objective)[both_lp], 1e-12)
    gap_lp = (np.asarray(lp.objective)[both_lp] - ref_lp) / ref_lp
    return {
        "skus": num_skus, "warehouses": num_warehouses, "rows": env.num_rows,
        "dates": int(labels.v.shape[0]), "seconds": seconds, "setup_s": setup_s,
        "horizon": labels.meta["horizon"], "groups": labels.meta["groups"],
        "infeasible_problems": labels.meta["infeasible_count"],
        "problems": int(labels.feasible.size),
        "checked_problems": int(len(pick)), "checked_feasible": int(both.sum()),
        "max_rel_gap_fast_vs_milp": float(gap_fast.max()) if gap_fast.size else None,
        "mean_rel_gap_fast_vs_milp": float(gap_fast.mean()) if gap_fast.size else None,
        "max_rel_gap_batched_vs_milp": float(gap_lp.max()) if gap_lp.size else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--skus", type=int, default=5319, help="paper-scale SKUs")
    parser.add_argument("--warehouses", type=int, default=31, help="paper-scale warehouses")
    parser.add_argument("--dates", type=int, default=52, help="paper-scale weekly dates")
    args = parser.parse_args(argv)
    if args.quick:
        args.skus, args.warehouses, args.dates = 300, 5, 6
    t_all = time.perf_counter()
    out = env_info()
    print("[bench_labels] replay ...", flush=True)
    out["replay"] = bench_replay(1000 if args.quick else 5000, 5)
    print(f"  {out['replay']['row_days_per_s']:.3g} row-days/s "
          f"({out['replay']['rows']} rows x {out['replay']['candidates']} candidates x "
          f"{out['replay']['horizon']} days)", flush=True)
    print("[bench_labels] selection ...", flush=True)
    out["selection"] = bench_selection(32 if args.quick else 256, 20, 30)
    s = out["selection"]
    print(f"  MILP {s['milp_solves_per_s']:.3g}/s, batched cvxpy "
          f"{s['batched_cvxpy_solves_per_s']:.3g}/s, fresh loop "
          f"{s['fresh_cvxpy_loop_solves_per_s']:.3g}/s (x{s['batched_vs_loop']:.2f}), JAX fast "
          f"{s['jax_fast_solves_per_s']:.3g}/s (x{s['fast_vs_batched']:.0f} batched), max gap "
          f"{s['max_rel_gap_fast_vs_milp']:.3%}", flush=True)
    print(f"[bench_labels] paper scale: {args.skus} SKUs x {args.warehouses} warehouses, "
          f"{args.dates} dates ...", flush=True)
    out["paper_scale"] = bench_paper_scale(args.skus, args.warehouses, args.dates,
                                           check=20 if args.quick else 60)
    p = out["paper_scale"]
    print(f"  {p['rows']} rows x {p['dates']} dates labelled in {p['seconds']:.1f} s "
          f"(setup {p['setup_s']:.1f} s); {p['infeasible_problems']}/{p['problems']} "
          f"problems infeasible; sample gap fast vs MILP max "
          f"{p['max_rel_gap_fast_vs_milp']}", flush=True)
    out["total_s"] = time.perf_counter() - t_all
    if args.json:
        write_json(args.json, out)
        print(f"[bench_labels] wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
