"""OR-label throughput: candidate replays, the three selection solvers, paper scale.

Usage::

    python benchmarks/bench_labels.py --json PATH          # full run (paper scale included)
    python benchmarks/bench_labels.py --quick --json PATH  # small smoke run

JSON: ``{"device", "versions", "replay": {"row_days_per_s", ...}, "selection":
{"milp_solves_per_s", "batched_cvxpy_solves_per_s", "fresh_cvxpy_loop_solves_per_s",
"jax_fast_solves_per_s", "batched_vs_loop", "max_rel_gap_fast_vs_milp", ...},
"paper_scale": {"rows", "dates", "seconds", ...}, "online": {"row_decisions_per_s",
"crps_total", ...}}``.

``online`` times the deployable OR model (``orpr_jax.labels.online``): one decision day
with every row reviewing (rows x 30 candidates x S scenarios replayed, then the per-row
selection), and scores its scenario samplers against the realised demand (CRPS of the
next-14-day total and of each day, on observations of an inventory-days run). Run it
alone with ``--only online``.

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
from orpr_jax.labels.online import (  # noqa: E402
    OnlineConfig,
    make_online_policy,
    sample_crps,
    scenario_demand,
)
from orpr_jax.policies import censored_forecast, inventory_days  # noqa: E402
from orpr_jax.sim.dynamics import observe  # noqa: E402
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


def _jd_env(num_skus: int, num_warehouses: int, num_days: int):
    data = generate(jax.random.key(0), SyntheticSpec(num_skus=num_skus,
                                                     num_warehouses=num_warehouses))
    return env_from_data(data, start=28, num_days=num_days)


def _observations(env, params, days: int, v: float = 14.0):
    """Observations of every day of an inventory-days run (``[days, R, ...]`` leaves)."""
    policy = inventory_days(v)

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            obs, state = carry
            obs, state, *_ = env.step(k, state, policy(obs, None), params)
            return (obs, state), obs

        return jax.lax.scan(body, (obs, state), jax.random.split(key, days))[1]

    return run(jax.random.key(3))


def score_scenarios(env, params, days: int, horizon: int = 14, scenarios: int = 64) -> dict:
    """CRPS of each sampler's scenarios against the realised demand (lower is better)."""
    obs_all = _observations(env, params, days)
    dates = list(range(28, days - horizon, 7))
    trace = params.demand_trace
    out = {}
    for name in ("poisson", "negbin", "bootstrap"):
        total, daily = [], []
        for t in dates:
            obs = jax.tree.map(lambda x, t=t: x[t - 1], obs_all)  # observation of day t
            real = trace[t:t + horizon]  # [T, R]
            key = jax.random.key(t)
            if name == "poisson":
                f = censored_forecast(obs, 28)
                d = jax.random.poisson(key, jnp.broadcast_to(f, (scenarios, horizon, f.shape[0])))
                d = d.astype(jnp.float32)
            else:
                cal = params.promo_calendar
                days_p = obs.t[0] - 28 + jnp.arange(28)
                past = jnp.where(days_p[None, :] >= 0, cal[days_p % cal.shape[0]].T, 0.0)
                d = scenario_demand(key, obs, horizon, scenarios, model=name, past_promo=past)
            total.append(float(sample_crps(d.sum(axis=1), real.sum(axis=0))))
            daily.append(float(sample_crps(d, real)))
        out[name] = {"crps_total": float(np.mean(total)), "crps_daily": float(np.mean(daily))}
    out["dates"] = len(dates)
    out["horizon"] = horizon
    return out


def bench_online(num_skus: int, num_warehouses: int, scenarios: int = 16) -> dict:
    """Row-decisions per second of the deployable OR model (every row reviewing)."""
    env, params = _jd_env(num_skus, num_warehouses, 200)
    env = type(env)(env.config.replace(use_review=False))  # every row decides every day
    cfg = OnlineConfig(scenarios=scenarios)
    policy = make_online_policy(env, params, cfg)
    obs = observe(env.config, params, env.reset(jax.random.key(0), params)[1])
    decide = jax.jit(policy.decide)
    timing = time_jax(lambda: decide(obs, jax.random.key(1)), repeats=3)
    return {"rows": env.num_rows, "scenarios": scenarios, "candidates": len(cfg.candidates),
            "horizon": policy.horizon, "row_decisions_per_s": env.num_rows / timing.steady_s,
            "steady_s": timing.steady_s, "compile_s": timing.compile_s,
            "forecast_scores": score_scenarios(*_jd_env(num_skus, num_warehouses, 150), 150)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--skus", type=int, default=5319, help="paper-scale SKUs")
    parser.add_argument("--warehouses", type=int, default=31, help="paper-scale warehouses")
    parser.add_argument("--dates", type=int, default=52, help="paper-scale weekly dates")
    parser.add_argument("--only", choices=("replay", "selection", "paper_scale", "online"),
                        help="run one part only")
    args = parser.parse_args(argv)
    if args.quick:
        args.skus, args.warehouses, args.dates = 300, 5, 6
    t_all = time.perf_counter()
    out = env_info()
    if args.only == "online":
        return _online_only(out, args, t_all)
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
    print("[bench_labels] online (deployable OR model) ...", flush=True)
    _report_online(out, args)
    out["total_s"] = time.perf_counter() - t_all
    if args.json:
        write_json(args.json, out)
        print(f"[bench_labels] wrote {args.json}")
    return 0


def _report_online(out: dict, args) -> None:
    out["online"] = bench_online(150 if args.quick else 300, 2)
    o = out["online"]
    print(f"  {o['row_decisions_per_s']:.3g} row-decisions/s ({o['rows']} rows x "
          f"{o['candidates']} candidates x {o['scenarios']} scenarios x {o['horizon']} days; "
          f"compile {o['compile_s']:.1f} s)", flush=True)
    for name in ("poisson", "negbin", "bootstrap"):
        f = o["forecast_scores"][name]
        print(f"  {name}: CRPS 14-day total {f['crps_total']:.3f}, daily {f['crps_daily']:.3f}",
              flush=True)


def _online_only(out: dict, args, t_all: float) -> int:
    print("[bench_labels] online (deployable OR model) ...", flush=True)
    _report_online(out, args)
    out["total_s"] = time.perf_counter() - t_all
    if args.json:
        write_json(args.json, out)
        print(f"[bench_labels] wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
