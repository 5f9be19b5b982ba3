#!/usr/bin/env python
"""Scaling of the simulator over devices: ``orpr_jax.distributed.sharded_evaluate``.

The ``lost_sales`` scenario (demand sampled inside the scan from an inverse-CDF table,
lead time 2) under a base-stock policy, with the rows split over a one-axis device mesh
of 1, 2, ... ``--devices`` devices (``evaluate``-style metric sums, so memory does not
grow with the days):

1. ``sharded_equals_unsharded``: per-row and aggregate metrics of the sharded run on all
   devices against the plain one-device ``evaluate`` on the same rows (with padding:
   a row count that is not a multiple of the devices).
2. ``results`` (``mode="strong"``): a fixed number of rows over 1, 2, 4, ... devices.
3. ``results`` (``mode="weak"``): a fixed number of rows per device.
4. ``largest``: ``--max-rows`` rows x ``--days`` days on all devices, in a fresh child
   process (its peak RSS is reported); ``max_rows_completed`` is its row count when it
   finished.

On a CPU the script sets ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (N =
``--devices``) before importing JAX, so one process sees N host devices. Forced host
devices share the machine's cores: they show that the sharded program is partitioned and
correct, not a speed-up beyond the physical cores.

Timing: the parameters are placed on the mesh once, before timing. Each configuration's
first call (trace + compile + run) is made apart; ``compile_s`` is the tracing, lowering
and XLA compile time JAX reports for it (``jax.monitoring`` events), which a busy
machine does not inflate the way ``first - steady`` would. Then the steady calls of a
series' configurations alternate (1, 2, 4, 1, 2, 4, ... devices; best of ``--repeats``
each, every call waited for with ``jax.block_until_ready``), so a change of machine load
biases none of them. Process CPU time is recorded with every call.

Usage::

    .venv/bin/python benchmarks/bench_scale.py --json benchmarks/results/bench_scale_cpu.json
    .venv/bin/python benchmarks/bench_scale.py --quick   # smoke run, small sizes

JSON: ``{"devices", "versions", "sharded_equals_unsharded", "results": [{"devices",
"rows", "row_days_per_s", "mode", "compile_s", ...}], "max_rows_completed", "largest",
...}``. Not a test module.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LEAD_TIME = 2
DEMAND_MEAN = 5.0
LEVEL = 17.0  # base-stock level for lead time 2, mean 5 (the README's example)


def _parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=4,
                    help="devices of the largest mesh (forced host devices on a CPU)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--quick", action="store_true", help="smoke run with small sizes")
    ap.add_argument("--days", type=int, default=None, help="days (default 365; --quick 60)")
    ap.add_argument("--strong-rows", type=int, default=None,
                    help="rows of the strong-scaling runs (default 1,000,000; --quick 20,000)")
    ap.add_argument("--weak-rows", type=int, default=None,
                    help="rows per device of the weak-scaling runs (default 250,000; "
                         "--quick 5,000)")
    ap.add_argument("--max-rows", type=int, default=None,
                    help="rows of the largest run (default 10,000,000; --quick 100,000)")
    ap.add_argument("--check-rows", type=int, default=None,
                    help="rows of the sharded-equals-unsharded check (default 100,003; "
                         "--quick 1,003; not a multiple of the devices, so padded)")
    ap.add_argument("--repeats", type=int, default=4,
                    help="steady-state calls per configuration (>= 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    quick = args.quick
    defaults = {
        "days": (365, 60),
        "strong_rows": (1_000_000, 20_000),
        "weak_rows": (250_000, 5_000),
        "max_rows": (10_000_000, 100_000),
        "check_rows": (100_003, 1_003),
    }
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    for name in ("devices", "days", "strong_rows", "weak_rows", "max_rows", "check_rows",
                 "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _force_host_devices(n: int) -> None:
    """Asks XLA for ``n`` CPU devices; must run before JAX is imported."""
    if "jax" in sys.modules:
        raise RuntimeError("set XLA_FLAGS before importing jax")
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    flags.append(f"--xla_force_host_platform_device_count={n}")
    os.environ["XLA_FLAGS"] = " ".join(flags)


def _device_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to ``n`` (and ``n`` itself)."""
    counts, c = [], 1
    while c < n:
        counts.append(c)
        c *= 2
    return counts + [n]


def _problem(rows: int):
    import orpr_jax

    env, params = orpr_jax.make("lost_sales", num_rows=rows, lead_time=LEAD_TIME,
                                demand_mean=DEMAND_MEAN)
    return env, params, orpr_jax.policies.base_stock(LEVEL)


#: JAX's monitoring events of one compilation: tracing, lowering, XLA compile.
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds = [0.0]
_listening = [False]


def _compile_clock() -> float:
    """Seconds spent compiling in this process so far (JAX monitoring events)."""
    import jax

    if not _listening[0]:
        def listen(event: str, duration: float, **_: Any) -> None:
            if event in _COMPILE_EVENTS:
                _compile_seconds[0] += duration

        jax.monitoring.register_event_duration_secs_listener(listen)
        _listening[0] = True
    return _compile_seconds[0]


def _summary(timing, rows: int, devices: int, days: int, compile_s: float,
             first_s: float) -> dict[str, Any]:
    from _common import row_days_per_s

    result = timing.result
    return {
        "devices": devices,
        "rows": rows,
        "days": days,
        "row_days_per_s": row_days_per_s(rows, days, timing.steady_s),
        "compile_s": compile_s,
        "first_call_s": first_s,
        "steady_s": timing.steady_s,
        "runs_s": timing.runs_s,
        "cpu_s": timing.cpu_s,
        "cpu_runs_s": timing.cpu_runs_s,
        "cost_per_row_day": float(result["cost_per_row_day"]),
        "per_row_sharding": str(getattr(result["per_row"]["total_cost"].sharding, "spec",
                                        "one device")),
    }


def _placed_problem(rows: int, devices: int):
    """``(env, params, policy, mesh)`` with the params placed on the mesh once, so the
    timed calls find them in place (a row count that is not a multiple of the devices is
    left to ``sharded_evaluate``, which then pads and places it on every call)."""
    import jax

    from orpr_jax import distributed as dist

    mesh = dist.make_mesh(devices)
    env, params, policy = _problem(rows)
    if devices > 1 and rows % devices == 0:
        params = dist.shard_params(params, mesh)
    return env, jax.block_until_ready(params), policy, mesh


def _caller(rows: int, devices: int, days: int, seed: int):
    import jax

    from orpr_jax import distributed as dist

    env, params, policy, mesh = _placed_problem(rows, devices)
    key = jax.random.key(seed)
    return lambda: dist.sharded_evaluate(env, params, policy, key, days, 0, mesh)


def _first_call(call) -> tuple[float, float]:
    """``(compile_s, first_s)`` of the first call: the time JAX reports for tracing,
    lowering and XLA compilation (its monitoring events, so a busy machine does not
    inflate it the way ``first - steady`` would), and the call's wall time."""
    import jax

    c0, t0 = _compile_clock(), time.perf_counter()
    jax.block_until_ready(call())
    return _compile_clock() - c0, time.perf_counter() - t0


def bench_mode(mode: str, row_counts: dict[int, int], days: int, seed: int,
               repeats: int) -> list[dict[str, Any]]:
    """One scaling series: ``row_counts`` maps devices -> rows.

    Each configuration is compiled apart (caches cleared first, compile time from JAX's
    monitoring events); the steady calls of the configurations then alternate (1, 2, 4,
    1, 2, 4, ...), so a change of machine load during the series biases none of them
    and the speed-ups compare like with like.
    """
    import jax
    from _common import Contender, load_avg, time_interleaved

    jax.clear_caches()  # the strong and weak series share some shapes
    calls, first = {}, {}
    for n, rows in row_counts.items():
        print(f"[bench_scale] {mode}: {rows} rows on {n} device(s): compile ...", flush=True)
        calls[n] = _caller(rows, n, days, seed)
        first[n] = _first_call(calls[n])
    load_before = load_avg()
    timings = time_interleaved({str(n): Contender(calls[n], repeats, jax=True)
                                for n in row_counts})
    load_after = load_avg()
    out, base = [], None
    for n, rows in row_counts.items():
        res = {"mode": mode, **_summary(timings[str(n)], rows, n, days, *first[n])}
        base = base or res["row_days_per_s"]
        # Throughput relative to one device; ideal is n in both modes (weak: the time
        # per call stays constant while the rows grow n-fold).
        res["speedup"] = res["row_days_per_s"] / base
        res["efficiency"] = res["speedup"] / n
        res.update(load_avg_before=load_before, load_avg_after=load_after)
        out.append(res)
        print(f"[bench_scale]   {mode} {n} device(s): {res['row_days_per_s']:.3g} "
              f"row-days/s, compile {res['compile_s']:.2f} s", flush=True)
    return out


def check_equal(rows: int, devices: int, days: int, seed: int) -> dict[str, Any]:
    """Sharded (all devices, padded) against the unsharded ``evaluate`` on the same rows."""
    import jax
    import numpy as np

    import orpr_jax
    from orpr_jax import distributed as dist

    env, params, policy = _problem(rows)
    key = jax.random.key(seed)
    ref = orpr_jax.evaluate(env, params, policy, key, days, 0)
    out = dist.sharded_evaluate(env, params, policy, key, days, 0, dist.make_mesh(devices))
    per_row = {
        name: float(np.max(np.abs(np.asarray(out["per_row"][name], np.float64)
                                  - np.asarray(ref["per_row"][name], np.float64))))
        for name in ref["per_row"]
    }
    aggregate = {
        name: abs(float(out[name]) - float(ref[name])) / max(abs(float(ref[name])), 1e-12)
        for name in ref if name != "per_row"
    }
    equal = max(aggregate.values()) <= 1e-5 and all(
        np.allclose(np.asarray(out["per_row"][n]), np.asarray(ref["per_row"][n]), rtol=1e-6)
        for n in ref["per_row"]
    )
    return {
        "rows": rows,
        "padded_rows": dist.pad_rows(rows, devices),
        "devices": devices,
        "days": days,
        "equal": bool(equal),
        "max_per_row_abs_diff": per_row,
        "max_aggregate_rel_diff": max(aggregate.values()),
        "total_cost_sharded": float(out["total_cost"]),
        "total_cost_unsharded": float(ref["total_cost"]),
    }


def bench_largest(rows: int, devices: int, days: int, seed: int) -> dict[str, Any]:
    """The largest run, meant for a fresh process: a first call and one steady call."""
    from _common import current_rss_mb, load_avg, peak_rss_mb, time_jax

    rss_start = peak_rss_mb()
    t0 = time.perf_counter()
    call = _caller(rows, devices, days, seed)
    setup_s = time.perf_counter() - t0
    rss_setup = peak_rss_mb()
    load_before = load_avg()
    compile_s, first_s = _first_call(call)
    timing = time_jax(call, repeats=1)
    res = _summary(timing, rows, devices, days, compile_s, first_s)
    res.update(setup_s=setup_s, peak_mem_mb=peak_rss_mb(), start_peak_mem_mb=rss_start,
               setup_peak_mem_mb=rss_setup, current_mem_mb=current_rss_mb(),
               load_avg_before=load_before, load_avg_after=load_avg())
    return res


def _print_report(report: dict[str, Any]) -> None:
    from _common import fmt
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    console.print(f"[bold]device[/]: {report['device']} x {report['devices']}   "
                  f"versions: {report['versions']}")
    c = report["sharded_equals_unsharded"]
    console.print(f"sharded equals unsharded ({c['rows']:,} rows padded to "
                  f"{c['padded_rows']:,} on {c['devices']} devices): {c['equal']} "
                  f"(max aggregate relative difference {c['max_aggregate_rel_diff']:.1e})")
    t = Table(title=f"sharded_evaluate, lost_sales, base stock {LEVEL:g}, "
                    f"{report['config']['days']} days")
    for col in ("mode", "devices", "rows", "row-days/s", "vs 1 device", "compile s",
                "steady s"):
        t.add_column(col, justify="right")
    for r in report["results"]:
        t.add_row(r["mode"], str(r["devices"]), f"{r['rows']:,}",
                  fmt(r["row_days_per_s"], ".3g"), fmt(r.get("speedup"), ".2f"),
                  fmt(r["compile_s"], ".2f"), fmt(r["steady_s"], ".2f"))
    big = report.get("largest")
    if big:
        t.add_row("largest", str(big["devices"]), f"{big['rows']:,}",
                  fmt(big["row_days_per_s"], ".3g"), "-", fmt(big["compile_s"], ".2f"),
                  fmt(big["steady_s"], ".2f"))
    console.print(t)
    if big:
        console.print(f"largest run: peak RSS {big['peak_mem_mb']:.0f} MB "
                      f"(setup {big['setup_peak_mem_mb']:.0f} MB, {big['setup_s']:.1f} s)")


def main(argv=None) -> dict[str, Any]:
    args = _parse_args(argv)
    _force_host_devices(args.devices)
    import jax
    from _common import env_info, run_isolated, save_report

    if jax.device_count() < args.devices:
        raise SystemExit(f"--devices={args.devices}: only {jax.device_count()} "
                         f"{jax.devices()[0].platform} devices available")
    t_start = time.perf_counter()
    report: dict[str, Any] = env_info("float32")
    report["devices"] = args.devices
    report["config"] = {
        "scenario": "lost_sales", "lead_time": LEAD_TIME, "demand_mean": DEMAND_MEAN,
        "demand": "sampled (inverse-CDF table, Poisson)", "policy": f"base_stock({LEVEL})",
        "days": args.days, "strong_rows": args.strong_rows,
        "weak_rows_per_device": args.weak_rows, "max_rows": args.max_rows,
        "check_rows": args.check_rows, "repeats": args.repeats, "quick": args.quick,
        "seed": args.seed,
    }

    print(f"[bench_scale] sharded vs unsharded, {args.check_rows} rows ...", flush=True)
    report["sharded_equals_unsharded"] = check_equal(args.check_rows, args.devices,
                                                     args.days, args.seed)
    counts = _device_counts(args.devices)
    results = bench_mode("strong", {n: args.strong_rows for n in counts}, args.days,
                         args.seed, args.repeats)
    results += bench_mode("weak", {n: args.weak_rows * n for n in counts}, args.days,
                          args.seed, args.repeats)
    report["results"] = results

    print(f"[bench_scale] largest: {args.max_rows} rows x {args.days} days on "
          f"{args.devices} devices (child process) ...", flush=True)
    report["largest"] = None
    report["max_rows_completed"] = None
    try:
        report["largest"] = run_isolated(bench_largest, args.max_rows, args.devices,
                                          args.days, args.seed)
        report["max_rows_completed"] = args.max_rows
    except Exception as err:  # noqa: BLE001 - recorded, not fatal: the rest still counts
        report["largest_error"] = f"{type(err).__name__}: {err}"
        print(f"[bench_scale]   failed: {report['largest_error']}", flush=True)
    report["wall_s"] = time.perf_counter() - t_start
    _print_report(report)
    save_report(args.json, report, "bench_scale")
    return report


if __name__ == "__main__":
    main()
