"""Report tables of the simulator benchmark (``bench_sim.py``; not a test module)."""

from __future__ import annotations

from typing import Any

from _common import fmt


def print_tables(report: dict[str, Any]) -> None:
    """Prints ``results``, ``sampled_check`` and ``million_rows`` of a report as tables."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        import json

        print(json.dumps(report, indent=2, default=str))
        return
    console = Console(width=max(Console().width, 140))
    console.print(f"[bold]device[/]: {report['device']}   versions: {report['versions']}   "
                  f"dtype: {report['dtype']}")
    t = Table(title="evaluate (per-row L, demand trace) vs NumPy, same dynamics and trace")
    for col in ("rows", "days", "JAX row-days/s", "NumPy row-days/s", "ratio",
                "compile s", "JAX s", "NumPy s", "peak MB", "cost rel diff"):
        t.add_column(col, justify="right")
    for r in report["results"]:
        t.add_row(str(r["rows"]), str(r["days"]), fmt(r["jax_row_days_per_s"], ".3g"),
                  fmt(r["numpy_row_days_per_s"], ".3g"), fmt(r["ratio"], ".2f"),
                  fmt(r["compile_s"], ".2f"), fmt(r["jax_steady_s"], ".3f"),
                  fmt(r["numpy_s"], ".3f"), fmt(r["peak_mem_mb"], ".0f"),
                  fmt(r.get("total_cost_rel_diff"), ".1e"))
    console.print(t)
    s = report.get("sampled_check")
    if s:
        t = Table(title=f"sampled_check: lost_sales L={s['lead_time']}, base stock "
                        f"{s['level']:g}, JAX table sampling vs NumPy Generator.poisson")
        for col in ("rows", "days", "JAX row-days/s", "NumPy row-days/s", "ratio",
                    "compile s", "JAX cost/row-day", "NumPy cost/row-day", "z"):
            t.add_column(col, justify="right")
        t.add_row(str(s["rows"]), str(s["days"]), fmt(s["jax_row_days_per_s"], ".3g"),
                  fmt(s["numpy_row_days_per_s"], ".3g"), fmt(s["ratio"], ".2f"),
                  fmt(s["compile_s"], ".2f"),
                  f"{s['jax_cost_per_row_day']:.4f} ± {s['jax_cost_stderr']:.4f}",
                  f"{s['numpy_cost_per_row_day']:.4f} ± {s['numpy_cost_stderr']:.4f}",
                  fmt(s["cost_diff_z"], ".2f"))
        console.print(t)
    m = report.get("million_rows")
    if m:
        t = Table(title="million_rows: lost_sales through evaluate (JAX only)")
        for col in ("rows", "days", "row-days/s", "compile s", "steady s", "peak MB",
                    "within 2 GB"):
            t.add_column(col, justify="right")
        t.add_row(str(m["rows"]), str(m["days"]), fmt(m["row_days_per_s"], ".3g"),
                  fmt(m["compile_s"], ".2f"), fmt(m["steady_s"], ".2f"),
                  fmt(m["peak_mem_mb"], ".0f"), str(m["within_target"]))
        console.print(t)
