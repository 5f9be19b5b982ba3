"""The classic lost-sales suite: reference, tuned base-stock and capped base-stock per instance.

For each of the 56 instances of :mod:`orpr_jax.suite` (Poisson and geometric demand with
mean 5, h = 1, p in {4, 9, 19, 39}, L in {1, 2, 3, 4, 6, 8, 10}): the reference (exact
optimum for L <= 4; best published cost for L >= 6), base-stock and capped base-stock
tuned per instance, and their gaps to the reference. For L <= 4 every figure is exact (the
gaps have no standard error). For L >= 6 the heuristics are tuned by simulation with
common random numbers, then simulated on fresh draws until the SE of base-stock's gap to
capped base-stock is at most 0.05% of the capped cost; their gaps to the published
reference carry the SE of the simulated cost (the published figures have their own
noise, about +-0.1%).

Run ``python -m orpr_jax.studies.suite --json PATH`` (``--quick`` for a tiny smoke run,
``--render PATH`` to print the table of a saved JSON).

Trained RL columns are not offered: :mod:`orpr_jax.studies.classic` exposes no function
that returns a trained greedy policy (``classic_case`` returns simulated costs only).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from orpr_jax.suite import (
    DEMANDS,
    LEAD_TIMES,
    PENALTIES,
    PUBLISHED_SOURCE,
    Instance,
    SimSettings,
    crn_costs,
    instance,
    instances,
    reference,
    tune_base_stock,
    tune_capped,
)

#: The quick run's instances and budget (CI: one exact Poisson, one exact geometric and
#: one simulated instance; well under a minute).
QUICK = (("poisson", 9.0, 1), ("geometric", 4.0, 1), ("poisson", 4.0, 6))
QUICK_SETTINGS = SimSettings(tune_rows=64, tune_days=300, eval_rows=200, eval_days=500,
                             warmup_days=100, max_batches=1)


def _gap(cost: float, ref: float) -> float:
    return 100.0 * (cost / ref - 1.0)


def suite_case(inst: Instance, key: jax.Array, settings: SimSettings | None = None) -> dict:
    """One instance: reference, tuned base-stock and capped base-stock, gaps, seconds.

    Returns:
        A JSON-able dict (see the module docstring); gaps are in percent of the reference.
    """
    s = settings or SimSettings()
    start = time.perf_counter()
    ref = reference(inst)
    tune_key, eval_key = jax.random.split(key)
    bs = tune_base_stock(inst, tune_key, s)
    cp = tune_capped(inst, tune_key, s)
    out = {
        "demand": inst.demand, "p": inst.lost_sales_cost, "L": inst.lead_time,
        # The published source is long and the same for every row: it is in the JSON once.
        "reference": dataclasses.asdict(ref) | (
            {"source": "published_source"} if ref.kind == "published" else {}),
    }
    if inst.exact:
        sims = {"capped": {"cost": cp.cost, "cost_se": 0.0, "gap_pct": 0.0, "gap_se_pct": 0.0},
                "base_stock": {"cost": bs.cost, "cost_se": 0.0,
                               "gap_pct": _gap(bs.cost, cp.cost), "gap_se_pct": 0.0}}
    else:
        sims = crn_costs(inst, {"capped": cp.policy, "base_stock": bs.policy}, eval_key, s)
    for name, tuned in (("base_stock", bs), ("capped", cp)):
        sim = sims[name]
        out[name] = {
            "params": tuned.params, "cost": sim["cost"], "exact": tuned.exact,
            "cost_se": sim["cost_se"], "gap_pct": _gap(sim["cost"], ref.cost),
            "gap_se_pct": 100.0 * sim["cost_se"] / ref.cost,
            "tune_seconds": tuned.seconds, "evaluated": tuned.evaluated,
        }
        if not inst.exact:
            out[name]["row_days"] = sim["row_days"]
    out["base_stock_vs_capped_pct"] = sims["base_stock"]["gap_pct"]
    out["base_stock_vs_capped_se_pct"] = sims["base_stock"]["gap_se_pct"]
    out["seconds"] = time.perf_counter() - start
    return out


def _pm(gap: float, se: float) -> str:
    return f"{gap:+.2f}%" if se == 0 else f"{gap:+.2f}% ± {se:.2f}"


def markdown_table(cases: list[dict]) -> str:
    """The docs table of :func:`suite_case` results."""
    lines = ["| demand | p | L | reference | base-stock (S) | gap | capped (S, r) | gap | "
             "base-stock vs capped | s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        ref, bs, cp = c["reference"], c["base_stock"], c["capped"]
        mark = "" if ref["kind"] == "exact" else " (pub.)"
        lines.append(
            f"| {c['demand']} | {c['p']:g} | {c['L']} | {ref['cost']:.4f}{mark} | "
            f"{bs['cost']:.4f} ({bs['params']['level']}) | {_pm(bs['gap_pct'], bs['gap_se_pct'])}"
            f" | {cp['cost']:.4f} ({cp['params']['level']}, {cp['params']['cap']}) | "
            f"{_pm(cp['gap_pct'], cp['gap_se_pct'])} | "
            f"{_pm(c['base_stock_vs_capped_pct'], c['base_stock_vs_capped_se_pct'])} | "
            f"{c['seconds']:.0f} |")
    return "\n".join(lines)


def _csv(text: str, cast) -> list:
    return [cast(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    """Runs the suite's references and tuned heuristics; prints and saves the table."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--demands", default=",".join(DEMANDS))
    parser.add_argument("--penalties", default=",".join(f"{p:g}" for p in PENALTIES))
    parser.add_argument("--lead-times", default=",".join(map(str, LEAD_TIMES)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="three instances, tiny budget")
    parser.add_argument("--render", type=Path, default=None,
                        help="print the markdown table of a saved --json file and exit")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(markdown_table(json.loads(args.render.read_text())["cases"]))
        return 0
    if args.quick:
        grid, s = [instance(*q) for q in QUICK], QUICK_SETTINGS
    else:
        grid = [instance(d, p, lt) for d in _csv(args.demands, str)
                for p in _csv(args.penalties, float) for lt in _csv(args.lead_times, int)]
        s = SimSettings()
    start, cases = time.perf_counter(), []
    full = instances()
    for inst in grid:
        # The key depends on the instance only (its place in the full grid), so a run of
        # part of the grid gives the same numbers as the full run.
        index = full.index(inst) if inst in full else len(full)
        case = suite_case(inst, jax.random.fold_in(jax.random.key(args.seed), index), s)
        cases.append(case)
        print(f"{inst.name}: reference {case['reference']['cost']:.4f} "
              f"({case['reference']['kind']}), base-stock {case['base_stock']['cost']:.4f} "
              f"({case['base_stock']['gap_pct']:+.2f}%), capped {case['capped']['cost']:.4f} "
              f"({case['capped']['gap_pct']:+.2f}%), {case['seconds']:.1f} s", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "settings": dataclasses.asdict(s), "quick": args.quick,
                "published_source": PUBLISHED_SOURCE, "device": str(jax.devices()[0]),
                "jax": jax.__version__, "numpy": np.__version__,
                "seconds": time.perf_counter() - start, "cases": cases}, indent=2))
    print(f"{len(cases)} instances in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
