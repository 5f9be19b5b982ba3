#!/usr/bin/env python
"""Simulator throughput: ``orpr_jax.evaluate`` against a vectorised NumPy loop.

Three measurements, each size in its own spawned process, so sizes do not pollute each
other. ``peak_mem_mb`` is that child's ``ru_maxrss`` after the JAX warm-up and first
steady call, before any NumPy call: it includes the interpreter and imports
(``start_peak_mem_mb``) and the host-side setup (``setup_peak_mem_mb``, e.g. building
and validating the params):

1. ``results`` (one entry per ``--rows``): base-stock with per-row levels on a
   ``SimConfig(lead_time_mode="per_row", demand_mode="trace")`` lost-sales scenario
   (per-row fixed lead times in 1..8, a pre-drawn Poisson demand trace ``[days, rows]``),
   run through ``orpr_jax.evaluate`` and through a NumPy version of the same dynamics
   (``_numpy_baselines.py``: loop over days, vectorised over rows) on the same trace.
   Every metric sum ``evaluate`` accumulates is recomputed by NumPy and the total costs
   must agree (relative 1e-4), so both sides do the same work.
2. ``sampled_check``: the ``lost_sales`` scenario (demand drawn inside the scan from an
   inverse-CDF table) against a NumPy loop that draws ``Generator.poisson`` each day.
   Same dynamics, independent random numbers: the costs agree within sampling error
   (reported with standard errors, not asserted).
3. ``million_rows``: 1e6 rows x 365 days of the ``lost_sales`` scenario through
   ``evaluate`` (JAX only; no ``[days, rows]`` array is materialised).

JAX timing: first call = trace + compile + run, ``compile_s = first - steady``, steady =
best of ``--repeats`` calls, each with ``jax.block_until_ready``. NumPy: best of
``--numpy-repeats``. JAX and NumPy calls alternate (JAX, NumPy, JAX, ...), so a change
of machine load during the run biases neither. Throughput is in row-days per second;
``ratio`` = JAX / NumPy (wall clock). XLA runs its CPU kernels on several threads and
NumPy on one, so the process CPU time of each side is recorded too (``*_cpu_s``;
``cpu_ratio`` = NumPy CPU / JAX CPU is the per-core efficiency).

Usage::

    .venv/bin/python benchmarks/bench_sim.py --rows 1000,100000 --days 365 --json out.json
    .venv/bin/python benchmarks/bench_sim.py --quick   # smoke run: 1000 rows x 60 days

Not a test module (pytest collects ``tests/`` only, and nothing here is named ``test_``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import (  # noqa: E402
    Contender,
    current_rss_mb,
    env_info,
    fmt,
    load_avg,
    parse_rows,
    peak_rss_mb,
    row_days_per_s,
    run_isolated,
    save_report,
    time_interleaved,
    time_jax,
)
from _numpy_baselines import (  # noqa: E402
    DTYPE,
    SUM_FIELDS,
    numpy_simulate,
    per_row_cost_per_day,
    total_cost,
)
from _sim_tables import print_tables  # noqa: E402

# Trace scenario (results): costs are small binary fractions, so every per-row sum is an
# exactly representable float32 integer or half-integer and both sides agree exactly.
TRACE_MAX_LEAD = 8
TRACE_COSTS = {"holding_cost": 1.0, "penalty_cost": 9.0, "fixed_order_cost": 2.0,
               "purchase_cost": 0.5}
TOTAL_COST_RTOL = 1e-4

# Sampled scenario (sampled_check, million_rows): orpr_jax.make("lost_sales", ...).
SAMPLED_LEAD = 2
SAMPLED_LEVEL = 17.0

# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def build_trace_inputs(rows: int, days: int, seed: int) -> dict[str, np.ndarray]:
    """Host inputs of the trace scenario: per-row lead times, means, levels, trace."""
    rng = np.random.default_rng(seed)
    lead = rng.integers(1, TRACE_MAX_LEAD + 1, size=rows)
    means = rng.uniform(1.0, 10.0, size=rows)
    # A safety stock of about 1.5 standard deviations of demand over L + 1 days.
    cover = means * (lead + 1)
    level = np.round(cover + 1.5 * np.sqrt(cover)).astype(DTYPE)
    trace = np.empty((days, rows), DTYPE)
    for t in range(days):  # day by day: no [days, rows] int64 temporary
        trace[t] = rng.poisson(means)
    return {"lead": lead, "means": means, "level": level, "trace": trace}


def _sums_from_jax(sums) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(sums, name)) for name in SUM_FIELDS}


def _costs_from_params(params) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(params, name))
            for name in ("holding_cost", "penalty_cost", "fixed_order_cost", "purchase_cost")}


# --------------------------------------------------------------------------------------
# Benchmarks (each runs in its own process)
# --------------------------------------------------------------------------------------


def bench_trace_size(
    rows: int, days: int, seed: int, repeats: int, numpy_repeats: int, skip_numpy: bool,
    warmup_days: int = 0,
) -> dict[str, Any]:
    """One ``results`` entry: JAX (evaluate) vs NumPy on the same per-row trace scenario."""
    import jax

    import orpr_jax
    from orpr_jax.sim import evaluate_sums

    rss_start = peak_rss_mb()
    inputs = build_trace_inputs(rows, days, seed)
    config = orpr_jax.SimConfig(
        num_rows=rows,
        max_lead_time=TRACE_MAX_LEAD,
        lead_time_mode="per_row",
        demand_mode="trace",
        backorder=False,
    )
    params = orpr_jax.make_params(
        config,
        lead_time=inputs["lead"],
        demand_trace=inputs["trace"],
        base_demand=inputs["means"],
        initial_on_hand=inputs["level"],
        **TRACE_COSTS,
    )
    env = orpr_jax.InventoryEnv(config)
    policy = orpr_jax.policies.base_stock(inputs["level"])
    key = jax.random.key(seed)
    jax.block_until_ready(params)
    rss_setup = peak_rss_mb()

    def run_jax():
        return orpr_jax.evaluate(env, params, policy, key, days, warmup_days)

    costs = _costs_from_params(params)

    def run_numpy():
        return numpy_simulate(inputs["trace"], inputs["lead"], inputs["level"],
                              inputs["level"], costs, TRACE_MAX_LEAD, days, warmup_days)

    contenders = {"jax": Contender(run_jax, repeats, jax=True)}
    if not skip_numpy:
        contenders["numpy"] = Contender(run_numpy, numpy_repeats)
    mem: dict[str, float] = {}
    load_before = load_avg()
    timings = time_interleaved(
        contenders, after_first_run=lambda n: mem.setdefault(n, peak_rss_mb())
    )
    timing = timings["jax"]
    metrics = timing.result
    jax_total = float(np.asarray(metrics["per_row"]["total_cost"], np.float64).sum())
    jax_sums = _sums_from_jax(evaluate_sums(env, params, policy, key, days, warmup_days))

    out: dict[str, Any] = {
        "rows": rows,
        "days": days,
        "jax_row_days_per_s": row_days_per_s(rows, days, timing.steady_s),
        "numpy_row_days_per_s": None,
        "ratio": None,
        "compile_s": timing.compile_s,
        "peak_mem_mb": mem["jax"],
        "jax_first_call_s": timing.first_s,
        "jax_steady_s": timing.steady_s,
        "jax_runs_s": timing.runs_s,
        "jax_cpu_s": timing.cpu_s,
        "numpy_s": None,
        "numpy_runs_s": None,
        "numpy_cpu_s": None,
        "cpu_ratio": None,
        "setup_peak_mem_mb": rss_setup,
        "start_peak_mem_mb": rss_start,
        "jax_total_cost": jax_total,
        "jax_cost_per_row_day": float(metrics["cost_per_row_day"]),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }
    if skip_numpy:
        return out

    np_timing = timings["numpy"]
    np_sums = np_timing.result
    np_total = total_cost(np_sums)
    rel = abs(jax_total - np_total) / max(abs(np_total), 1e-12)
    field_rel = {
        name: abs(float(jax_sums[name].astype(np.float64).sum())
                  - float(np_sums[name].astype(np.float64).sum()))
        / max(abs(float(np_sums[name].astype(np.float64).sum())), 1e-12)
        for name in SUM_FIELDS
    }
    if not rel <= TOTAL_COST_RTOL:
        raise AssertionError(
            f"rows={rows}: JAX total cost {jax_total!r} != NumPy {np_total!r} "
            f"(relative difference {rel:.3g} > {TOTAL_COST_RTOL})"
        )
    np_tp = row_days_per_s(rows, days, np_timing.steady_s)
    out.update(
        numpy_row_days_per_s=np_tp,
        ratio=out["jax_row_days_per_s"] / np_tp,
        numpy_s=np_timing.steady_s,
        numpy_runs_s=np_timing.runs_s,
        numpy_cpu_s=np_timing.cpu_s,
        cpu_ratio=np_timing.cpu_s / timing.cpu_s if timing.cpu_s else None,
        numpy_total_cost=np_total,
        total_cost_rel_diff=rel,
        max_metric_sum_rel_diff=max(field_rel.values()),
        max_row_sum_abs_diff=max(
            float(np.max(np.abs(jax_sums[n] - np_sums[n]))) for n in SUM_FIELDS
        ),
    )
    return out


def _lost_sales(rows: int):
    import orpr_jax

    return orpr_jax.make("lost_sales", num_rows=rows, lead_time=SAMPLED_LEAD)


def bench_sampled(
    rows: int, days: int, seed: int, repeats: int, numpy_repeats: int, warmup_days: int = 0
) -> dict[str, Any]:
    """``sampled_check``: lost_sales scenario, JAX table sampling vs NumPy Poisson draws."""
    import jax

    import orpr_jax

    env, params = _lost_sales(rows)
    policy = orpr_jax.policies.base_stock(SAMPLED_LEVEL)
    key = jax.random.key(seed)
    mean = float(np.asarray(params.base_demand)[0])
    on_hand0 = np.asarray(params.initial_on_hand)
    costs = _costs_from_params(params)
    seeds = iter(range(seed + 1000, seed + 1000 + numpy_repeats))

    def run_jax():
        return orpr_jax.evaluate(env, params, policy, key, days, warmup_days)

    def run_numpy():  # fresh, independent Poisson draws on every call
        rng = np.random.default_rng(next(seeds))
        return numpy_simulate((rng, mean), SAMPLED_LEAD, SAMPLED_LEVEL, on_hand0, costs,
                              env.config.max_lead_time, days, warmup_days)

    mem: dict[str, float] = {}
    load_before = load_avg()
    timings = time_interleaved(
        {"jax": Contender(run_jax, repeats, jax=True),
         "numpy": Contender(run_numpy, numpy_repeats)},
        after_first_run=lambda n: mem.setdefault(n, peak_rss_mb()),
    )
    timing, np_timing = timings["jax"], timings["numpy"]
    metrics = timing.result
    counted = days - warmup_days
    jax_row = np.asarray(metrics["per_row"]["cost_per_day"], np.float64)
    np_row = per_row_cost_per_day(np_timing.result, counted)

    jax_tp = row_days_per_s(rows, days, timing.steady_s)
    np_tp = row_days_per_s(rows, days, np_timing.steady_s)
    jax_cost, np_cost = float(jax_row.mean()), float(np_row.mean())
    jax_se = float(jax_row.std(ddof=1) / math.sqrt(rows)) if rows > 1 else float("nan")
    np_se = float(np_row.std(ddof=1) / math.sqrt(rows)) if rows > 1 else float("nan")
    return {
        "rows": rows,
        "days": days,
        "warmup_days": warmup_days,
        "level": SAMPLED_LEVEL,
        "lead_time": SAMPLED_LEAD,
        "demand_mean": mean,
        "jax_row_days_per_s": jax_tp,
        "numpy_row_days_per_s": np_tp,
        "ratio": jax_tp / np_tp,
        "compile_s": timing.compile_s,
        "jax_steady_s": timing.steady_s,
        "jax_runs_s": timing.runs_s,
        "jax_cpu_s": timing.cpu_s,
        "numpy_s": np_timing.steady_s,
        "numpy_runs_s": np_timing.runs_s,
        "numpy_cpu_s": np_timing.cpu_s,
        "cpu_ratio": np_timing.cpu_s / timing.cpu_s if timing.cpu_s else None,
        "jax_cost_per_row_day": jax_cost,
        "numpy_cost_per_row_day": np_cost,
        "jax_cost_stderr": jax_se,
        "numpy_cost_stderr": np_se,
        "cost_diff_z": (jax_cost - np_cost) / math.hypot(jax_se, np_se),
        "jax_evaluate_cost_per_row_day": float(metrics["cost_per_row_day"]),
        "peak_mem_mb": mem["jax"],
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }


def bench_million(rows: int, days: int, seed: int, repeats: int) -> dict[str, Any]:
    """``million_rows``: lost_sales scenario through evaluate only (JAX)."""
    import jax

    import orpr_jax

    rss_start = peak_rss_mb()
    env, params = _lost_sales(rows)
    policy = orpr_jax.policies.base_stock(SAMPLED_LEVEL)
    key = jax.random.key(seed)
    jax.block_until_ready(params)
    rss_setup = peak_rss_mb()
    load_before = load_avg()
    timing = time_jax(orpr_jax.evaluate, env, params, policy, key, days, 0, repeats=repeats)
    rss = peak_rss_mb()
    return {
        "rows": rows,
        "days": days,
        "row_days_per_s": row_days_per_s(rows, days, timing.steady_s),
        "compile_s": timing.compile_s,
        "peak_mem_mb": rss,
        "peak_mem_target_mb": 2048,
        "within_target": rss <= 2048,
        "start_peak_mem_mb": rss_start,
        "setup_peak_mem_mb": rss_setup,
        "current_mem_mb": current_rss_mb(),
        "steady_s": timing.steady_s,
        "first_call_s": timing.first_s,
        "runs_s": timing.runs_s,
        "cpu_s": timing.cpu_s,
        "cost_per_row_day": float(timing.result["cost_per_row_day"]),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=parse_rows, default=None,
                    help="comma-separated row counts (default 1000,100000; --quick: 1000)")
    ap.add_argument("--days", type=int, default=None, help="days (default 365; --quick: 60)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1000 rows x 60 days, small sampled check, no million")
    ap.add_argument("--skip-numpy", action="store_true",
                    help="no NumPy baseline (and no cost check) in the main comparison")
    ap.add_argument("--million", action=argparse.BooleanOptionalAction, default=None,
                    help="run million_rows (default: on unless --quick)")
    ap.add_argument("--million-rows", type=int, default=1_000_000)
    ap.add_argument("--sampled", action=argparse.BooleanOptionalAction, default=True,
                    help="run sampled_check (default on)")
    ap.add_argument("--sampled-rows", type=int, default=None,
                    help="rows of sampled_check (default 100000; --quick: 1000)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="steady-state JAX calls (>= 1; million_rows makes at most 2)")
    ap.add_argument("--numpy-repeats", type=int, default=3, help="NumPy calls (>= 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-process", action="store_true",
                    help="no child processes (debugging; peak memory then accumulates)")
    args = ap.parse_args(argv)
    if args.rows is None:
        args.rows = [1000] if args.quick else [1000, 100_000]
    if args.days is None:
        args.days = 60 if args.quick else 365
    if args.million is None:
        args.million = not args.quick
    if args.sampled_rows is None:
        args.sampled_rows = 1000 if args.quick else 100_000
    if args.days < 1 or args.repeats < 1 or args.numpy_repeats < 1:
        ap.error("--days, --repeats and --numpy-repeats must be >= 1")
    return args


def main(argv=None) -> dict[str, Any]:
    args = _parse_args(argv)
    call = (lambda fn, *a: fn(*a)) if args.in_process else run_isolated
    t_start = time.perf_counter()
    report: dict[str, Any] = env_info("float32")
    report["config"] = {
        "rows": args.rows, "days": args.days, "quick": args.quick,
        "repeats": args.repeats, "numpy_repeats": args.numpy_repeats, "seed": args.seed,
        "skip_numpy": args.skip_numpy, "isolated_processes": not args.in_process,
        "trace_scenario": {"max_lead_time": TRACE_MAX_LEAD, "lead_times": "uniform 1..8",
                           "demand": "Poisson(mean_i), mean_i ~ U(1, 10)",
                           "level": "round(m(L+1) + 1.5 sqrt(m(L+1)))", **TRACE_COSTS},
    }
    report["results"] = []
    for rows in args.rows:
        print(f"[bench_sim] trace scenario rows={rows} days={args.days} ...", flush=True)
        res = call(bench_trace_size, rows, args.days, args.seed, args.repeats,
                   args.numpy_repeats, args.skip_numpy)
        report["results"].append(res)
        print(f"[bench_sim]   JAX {fmt(res['jax_row_days_per_s'], '.3g')} row-days/s, "
              f"NumPy {fmt(res['numpy_row_days_per_s'], '.3g')}, ratio "
              f"{fmt(res['ratio'], '.2f')}", flush=True)
    report["sampled_check"] = None
    if args.sampled:
        print(f"[bench_sim] sampled_check rows={args.sampled_rows} days={args.days} ...",
              flush=True)
        report["sampled_check"] = call(bench_sampled, args.sampled_rows, args.days,
                                       args.seed, args.repeats, args.numpy_repeats)
    report["million_rows"] = None
    if args.million:
        print(f"[bench_sim] million_rows rows={args.million_rows} days={args.days} ...",
              flush=True)
        report["million_rows"] = call(bench_million, args.million_rows, args.days,
                                      args.seed, max(1, min(args.repeats, 2)))
    report["wall_s"] = time.perf_counter() - t_start
    print_tables(report)
    save_report(args.json, report, "bench_sim")
    return report


if __name__ == "__main__":
    main()
