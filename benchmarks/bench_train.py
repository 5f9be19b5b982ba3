#!/usr/bin/env python
"""Training throughput: fused PPO (one jitted program) against a host loop over days.

Usage::

    .venv/bin/python benchmarks/bench_train.py --json PATH   # full run: both policies
    .venv/bin/python benchmarks/bench_train.py --quick       # smoke run: MLP, 256 rows

JSON: ``{"device", "versions", "config", "results": [{"policy", "rows",
"fused_row_days_per_s", "host_row_days_per_s", "ratio", "fused_compile_s",
"host_compile_s", "num_steps", "num_epochs", "num_minibatches", "num_updates",
"breakdown": {...}, ...}], "seeds_vmapped": {"seeds", "rows", "row_days_per_s", ...},
"target_met", "wall_s"}``.

Scenario: ``orpr_jax.make("lost_sales", num_rows=R, lead_time=2)`` (Poisson demand, mean
5, h = 1, p = 9, a review every day) for both policies, so the rows of the table differ
only in the network:

* ``"mlp"``: ``make_mlp_agent`` with hidden (64, 64), order-quantity bins 0..20,
  ``scale=5.0``;
* ``"foundation-small"``: ``FoundationModel(FoundationConfig.small(30, 28, 1))`` (random
  initialisation; every lost_sales row has category 0) through ``make_foundation_agent``,
  inventory-days bins 1..30.

PPO settings: ``RLConfig``'s defaults, a typical PPO configuration for this problem and
not tuned for the ratio: ``--num-steps`` 32 days per update, ``--epochs`` 4 of
``--minibatches`` 4 (so each update takes 16 gradient steps on minibatches of
``32 x R / 4`` row-days), ``HParams.create()`` defaults; ``--updates`` 2 updates per MLP
run and ``--foundation-updates`` 1 per foundation run. Two contenders per size, from the
same initial runner with the same keys:

* **fused**: ``jax.jit(make_train(config, env, params, agent))(key, hparams)``: the
  rollouts, GAE, PPO epochs and dual ascent of every update in one program.
* **host** (the baseline), built from the public
  :func:`orpr_jax.train.rl.make_ppo_parts` only: per update, one jitted ``parts.keys``
  call, a Python loop of ``num_steps`` calls of ``jax.jit(parts.day_step)`` (policy and
  reference forward, sampling, ``env.step``, reward: one day's
  :class:`~orpr_jax.train.rl.Transition`), one jitted call stacking the days, then one
  call of ``jax.jit(parts.learn)`` (GAE, PPO epochs, dual ascent). Both first calls use
  the same key and must end with the same parameters and multipliers
  (``max_param_diff`` <= 1e-5), so both do the same work.

Row-days/s = ``num_updates x num_steps x rows / seconds`` of a whole run (init, rollouts
and updates). Each contender's first call (trace + compile + run) is timed apart
(``*_compile_s = first - steady``); then steady rounds (fused, host, fused, host, ...;
fresh keys), so a change of load on the shared machine biases neither; up to
``--repeats`` rounds (5), no new round once a size's rounds took ``--budget-s`` (20 s);
steady = best call.

``breakdown`` (per update, best of alternating rounds, each call blocked on):
``host_rollout_s`` (the host's keys + day loop + stack), ``fused_rollout_s`` (a jitted
``parts.keys`` + ``lax.scan`` of ``parts.day_step`` alone) and ``learn_s``
(``jax.jit(parts.learn)`` on that rollout: the same compiled learning step the host
calls, and the same math the fused program runs). The learning step is common to both
contenders, so fusing can at best reach ``ratio_bound = (host_rollout_s + learn_s) /
(fused_rollout_s + learn_s)``; ``ratio_bound_free_rollout = (host_rollout_s + learn_s) /
learn_s`` is the ceiling even for a rollout that cost nothing.

``seeds_vmapped``: ``jax.jit(jax.vmap(train, in_axes=(0, None)))`` over ``--seeds`` keys
(8) at ``--seed-rows`` rows (256) with the MLP, total row-days/s over all seeds (every
seed starts from the same initial network; the keys differ); ``null`` with ``--seeds 0``
(the ``--quick`` default, which keeps the smoke run near a minute on 2 busy cores: the
vmapped program is one more compile of about 15 s).

Target: fused >= 10x host at 256 rows with the MLP (printed PASS / FAIL).

Not a test module (pytest collects ``tests/`` only, and nothing here is named ``test_``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import (  # noqa: E402
    Contender,
    env_info,
    fmt,
    load_avg,
    parse_rows,
    save_report,
    time_interleaved,
    time_pair,
    time_rounds,
)
from _train_contenders import make_host  # noqa: E402
from flax import nnx  # noqa: E402

import orpr_jax  # noqa: E402
from orpr_jax.policies.foundation import FoundationConfig, FoundationModel  # noqa: E402
from orpr_jax.train.agents import make_foundation_agent, make_mlp_agent  # noqa: E402
from orpr_jax.train.rl import HParams, RLConfig, make_train  # noqa: E402

LEAD_TIME = 2
MLP_VALUES = np.arange(0, 21, dtype=np.float32)  # order quantities 0..20
MLP_SCALE = 5.0  # the scenario's mean demand
FOUNDATION_VALUES = np.arange(1, 31, dtype=np.float32)  # inventory days 1..30
POLICIES = ("mlp", "foundation-small")
TARGET_RATIO = 10.0
PARAM_ATOL = 1e-5
_DEFAULTS = RLConfig()  # num_steps 32, num_epochs 4, num_minibatches 4


# --------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------


def build(policy: str, rows: int):
    """``(env, sim_params, agent, num_params)`` of one benchmark size."""
    env, params = orpr_jax.make("lost_sales", num_rows=rows, lead_time=LEAD_TIME)
    if policy == "mlp":
        agent = make_mlp_agent(MLP_VALUES, env.config.max_lead_time, 0, scale=MLP_SCALE,
                               hidden=(64, 64))
    elif policy == "foundation-small":
        cfg = FoundationConfig.small(len(FOUNDATION_VALUES), env.config.history_length, 1)
        agent = make_foundation_agent(FoundationModel(cfg, rngs=nnx.Rngs(0)),
                                      FOUNDATION_VALUES)
    else:
        raise ValueError(f"policy={policy!r} is not allowed; use one of {POLICIES}")
    num_params = sum(int(np.size(x)) for x in jax.tree.leaves(agent.params))
    return env, params, agent, num_params


# --------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------


def _max_param_diff(a, b) -> float:
    diffs = jax.tree.map(lambda x, y: jnp.max(jnp.abs(x - y)), a, b)
    return float(max(jax.tree.leaves(diffs)))


def _breakdown(host: types.SimpleNamespace, config: RLConfig, hp: HParams, seed: int,
               repeats: int, budget_s: float) -> dict[str, Any]:
    """Per-update seconds of the host rollout, the fused rollout alone and the learning
    step (common to both contenders), from the initial runner of key ``seed``."""
    runner = host.init(jax.random.key(seed), hp)
    t0 = time.perf_counter()
    rolled = jax.block_until_ready(host.fused_rollout(runner, hp))  # compile + run
    fused_rollout_first_s = time.perf_counter() - t0
    t = time_rounds({"host_rollout": lambda: host.rollout(runner, hp),
                 "fused_rollout": lambda: host.fused_rollout(runner, hp),
                 "learn": lambda: host.learn(runner, *rolled, hp)}, repeats, budget_s)
    hr, fr, le = (t[k].steady_s for k in ("host_rollout", "fused_rollout", "learn"))
    n = config.num_steps
    return {
        "host_rollout_s": hr,
        "fused_rollout_s": fr,
        "learn_s": le,
        "host_day_s": hr / n,
        "fused_day_s": fr / n,
        "rollout_ratio": hr / fr,
        "learn_share_fused": le / (fr + le),
        "learn_share_host": le / (hr + le),
        "ratio_bound": (hr + le) / (fr + le),
        "ratio_bound_free_rollout": (hr + le) / le,
        "host_rollout_runs_s": t["host_rollout"].runs_s,
        "fused_rollout_runs_s": t["fused_rollout"].runs_s,
        "learn_runs_s": t["learn"].runs_s,
        "fused_rollout_compile_s": max(fused_rollout_first_s - fr, 0.0),
    }


def bench_size(policy: str, rows: int, config: RLConfig, repeats: int, budget_s: float,
               seed: int) -> dict[str, Any]:
    """One ``results`` entry: fused vs host loop for ``policy`` at ``rows`` rows."""
    env, sim_params, agent, num_params = build(policy, rows)
    hp = HParams.create()
    host = make_host(config, env, sim_params, agent)
    fused = jax.jit(make_train(config, env, sim_params, agent))
    # Keys seed, seed + 1, ... per contender, made before the clock starts: the first
    # (compile) call uses `seed`, every steady call a fresh key, and both contenders see
    # the same sequence.
    keys = [jax.random.key(seed + i) for i in range(repeats + 1)]
    calls = {"fused": 0, "host": 0}

    def next_key(name):
        k = keys[calls[name]]
        calls[name] += 1
        return k

    load_before = load_avg()
    first, timings = time_pair({"fused": lambda: fused(next_key("fused"), hp),
                                 "host": lambda: host.train(next_key("host"), hp)},
                                repeats, budget_s)
    # Same key, same math: the first calls must end with the same parameters.
    fused_runner, fused_metrics = first["fused"][1]
    host_runner = first["host"][1][0]
    max_diff = max(_max_param_diff(fused_runner.params, host_runner.params),
                   _max_param_diff(fused_runner.lagrange, host_runner.lagrange))
    if not max_diff <= PARAM_ATOL:
        raise AssertionError(f"{policy} rows={rows}: host-loop training ends {max_diff:.3g} "
                             f"away from the fused run's parameters (> {PARAM_ATOL})")

    breakdown = _breakdown(host, config, hp, seed, repeats, budget_s)
    tf, th = timings["fused"], timings["host"]
    row_days = config.num_updates * config.num_steps * rows
    fused_tp, host_tp = row_days / tf.steady_s, row_days / th.steady_s
    return {
        "policy": policy,
        "rows": rows,
        "fused_row_days_per_s": fused_tp,
        "host_row_days_per_s": host_tp,
        "ratio": fused_tp / host_tp,
        "fused_compile_s": tf.compile_s,
        "host_compile_s": th.compile_s,
        "num_steps": config.num_steps,
        "num_epochs": config.num_epochs,
        "num_minibatches": config.num_minibatches,
        "num_updates": config.num_updates,
        "num_params": num_params,
        "row_days": row_days,
        "fused_steady_s": tf.steady_s,
        "host_steady_s": th.steady_s,
        "fused_runs_s": tf.runs_s,
        "host_runs_s": th.runs_s,
        "fused_first_s": tf.first_s,
        "host_first_s": th.first_s,
        "fused_cpu_s": tf.cpu_s,
        "host_cpu_s": th.cpu_s,
        # Kept from the earlier schema: the host update's two halves (see breakdown).
        "host_rollout_s_per_update": breakdown["host_rollout_s"],
        "host_update_s_per_update": breakdown["learn_s"],
        "breakdown": breakdown,
        "max_param_diff": max_diff,
        "final_cost_per_row_day": float(fused_metrics["cost_per_row_day"][-1]),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }


def bench_seeds(rows: int, seeds: int, config: RLConfig, repeats: int,
                seed: int) -> dict[str, Any]:
    """``seeds_vmapped``: ``jit(vmap(train))`` over ``seeds`` keys with the MLP."""
    env, sim_params, agent, _ = build("mlp", rows)
    hp = HParams.create()
    train = jax.jit(jax.vmap(make_train(config, env, sim_params, agent), in_axes=(0, None)))
    # One [seeds] key batch per call, made before the clock starts.
    batches = [jax.random.split(jax.random.key(seed + i), seeds) for i in range(repeats + 1)]
    calls = [0]

    def run():
        keys = batches[calls[0]]
        calls[0] += 1
        return train(keys, hp)

    load_before = load_avg()
    t = time_interleaved({"vmap": Contender(run, repeats, jax=True)})["vmap"]
    row_days = seeds * config.num_updates * config.num_steps * rows
    return {
        "seeds": seeds,
        "rows": rows,
        "row_days_per_s": row_days / t.steady_s,
        "policy": "mlp",
        "row_days": row_days,
        "compile_s": t.compile_s,
        "steady_s": t.steady_s,
        "runs_s": t.runs_s,
        "first_s": t.first_s,
        "cpu_s": t.cpu_s,
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: the MLP only (unless --policies), 256 rows, "
                         "1 update, no seeds_vmapped unless --seeds (same PPO settings)")
    ap.add_argument("--rows", type=parse_rows, default=None,
                    help="comma-separated row counts (default 256,4096; --quick: 256)")
    ap.add_argument("--foundation-rows", type=parse_rows, default=None,
                    help="row counts of foundation-small (default: --rows; --quick: 64)")
    ap.add_argument("--policies", default=None,
                    help=f"comma-separated subset of {','.join(POLICIES)} (default both; "
                         "--quick: mlp)")
    ap.add_argument("--updates", type=int, default=None,
                    help="PPO updates per MLP run (default 2; --quick: 1)")
    ap.add_argument("--foundation-updates", type=int, default=1,
                    help="PPO updates per foundation-small run (default 1)")
    ap.add_argument("--num-steps", type=int, default=_DEFAULTS.num_steps,
                    help=f"days per update (default {_DEFAULTS.num_steps})")
    ap.add_argument("--epochs", type=int, default=_DEFAULTS.num_epochs,
                    help=f"PPO epochs per update (default {_DEFAULTS.num_epochs})")
    ap.add_argument("--minibatches", type=int, default=_DEFAULTS.num_minibatches,
                    help=f"minibatches per epoch (default {_DEFAULTS.num_minibatches})")
    ap.add_argument("--repeats", type=int, default=5,
                    help="at most this many steady rounds per size (fused, host) and per "
                         "breakdown (host rollout, fused rollout, learn) (default 5)")
    ap.add_argument("--budget-s", type=float, default=20.0,
                    help="no further steady round once the rounds of a size took this long")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds of seeds_vmapped, 0 to skip it (default 8; --quick: 0)")
    ap.add_argument("--seed-rows", type=int, default=256,
                    help="rows of seeds_vmapped (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.rows is None:
        args.rows = [256] if args.quick else [256, 4096]
    if args.foundation_rows is None:
        args.foundation_rows = [64] if args.quick else args.rows
    if args.updates is None:
        args.updates = 1 if args.quick else 2
    if args.seeds is None:
        args.seeds = 0 if args.quick else 8
    if args.policies is None:
        args.policies = "mlp" if args.quick else ",".join(POLICIES)
    args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [p for p in args.policies if p not in POLICIES]
    if bad:
        ap.error(f"--policies: unknown {bad}; use {','.join(POLICIES)}")
    if args.seeds < 0:
        ap.error("--seeds must be >= 0")
    for name in ("updates", "foundation_updates", "num_steps", "epochs", "minibatches",
                 "repeats", "seed_rows"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    config = RLConfig(algorithm="ppo", num_updates=args.updates, num_steps=args.num_steps,
                      num_epochs=args.epochs, num_minibatches=args.minibatches)
    configs = {"mlp": config,
               "foundation-small": dataclasses.replace(config,
                                                       num_updates=args.foundation_updates)}
    t_start = time.perf_counter()
    print(f"[bench_train] PPO: {config.num_steps} days per update, {config.num_epochs} "
          f"epochs x {config.num_minibatches} minibatches; updates: "
          f"{ {p: c.num_updates for p, c in configs.items()} }", flush=True)
    report: dict[str, Any] = env_info("float32")
    import flax

    report["versions"].update(flax=flax.__version__, optax=optax.__version__)
    report["config"] = {
        "quick": args.quick, "rows": args.rows, "foundation_rows": args.foundation_rows,
        "policies": args.policies, "seeds": args.seeds, "seed_rows": args.seed_rows,
        "budget_s": args.budget_s,
        "num_updates": {p: c.num_updates for p, c in configs.items()},
        "num_steps": config.num_steps,
        "num_epochs": config.num_epochs, "num_minibatches": config.num_minibatches,
        "repeats": args.repeats, "seed": args.seed,
        "scenario": (f"orpr_jax.make('lost_sales', num_rows=R, lead_time={LEAD_TIME}) for "
                     "both policies (Poisson mean 5, h 1, p 9, daily review)"),
        "mlp": "make_mlp_agent hidden (64, 64), order-quantity bins 0..20, scale 5.0",
        "foundation-small": ("FoundationModel(FoundationConfig.small(30, 28, 1)), random "
                             "init, make_foundation_agent, inventory-days bins 1..30"),
        "hparams": "HParams.create() defaults",
        "host_baseline": ("make_ppo_parts: per update one jitted parts.keys call, a "
                          "Python loop of num_steps calls of jit(parts.day_step), one "
                          "jitted stack of the days, one call of jit(parts.learn)"),
        "breakdown": ("per update, best of alternating rounds: host_rollout_s (keys + "
                      "day loop + stack), fused_rollout_s (jit of parts.keys + lax.scan "
                      "of parts.day_step), learn_s (jit(parts.learn), common to both); "
                      "ratio_bound = (host_rollout_s + learn_s) / (fused_rollout_s + "
                      "learn_s)"),
        "target": f"fused >= {TARGET_RATIO:g}x host at 256 rows with the MLP",
    }
    report["results"] = []
    for policy in args.policies:
        for rows in args.rows if policy == "mlp" else args.foundation_rows:
            print(f"[bench_train] {policy} rows={rows} ...", flush=True)
            res = bench_size(policy, rows, configs[policy], args.repeats, args.budget_s,
                             args.seed)
            report["results"].append(res)
            print(f"[bench_train]   fused {res['fused_row_days_per_s']:.3g} row-days/s, "
                  f"host {res['host_row_days_per_s']:.3g}, ratio {res['ratio']:.2f} "
                  f"(compile {res['fused_compile_s']:.1f} s / {res['host_compile_s']:.1f} s"
                  f"; param diff {fmt(res['max_param_diff'], '.1e')})", flush=True)
            b = res["breakdown"]
            print(f"[bench_train]   per update: rollout host {b['host_rollout_s']:.4f} s / "
                  f"fused {b['fused_rollout_s']:.4f} s, learn {b['learn_s']:.4f} s "
                  f"-> ratio bound {b['ratio_bound']:.2f} (free rollout "
                  f"{b['ratio_bound_free_rollout']:.2f})", flush=True)
    report["seeds_vmapped"] = None
    if args.seeds > 0:
        print(f"[bench_train] seeds_vmapped: {args.seeds} seeds x {args.seed_rows} rows ...",
              flush=True)
        sv = bench_seeds(args.seed_rows, args.seeds, config, args.repeats, args.seed)
        report["seeds_vmapped"] = sv
        single = next((r for r in report["results"]
                       if r["policy"] == "mlp" and r["rows"] == args.seed_rows), None)
        if single is not None:
            sv["speedup_vs_one_seed"] = sv["row_days_per_s"] / single["fused_row_days_per_s"]
        print(f"[bench_train]   {sv['row_days_per_s']:.3g} row-days/s in total "
              f"(compile {sv['compile_s']:.1f} s)", flush=True)

    target = next((r for r in report["results"]
                   if r["policy"] == "mlp" and r["rows"] == 256), None)
    if target is None:
        report["target_met"] = None
        print("[bench_train] target: not measured (no mlp run at 256 rows)")
    else:
        report["target_met"] = bool(target["ratio"] >= TARGET_RATIO)
        print(f"[bench_train] target fused >= {TARGET_RATIO:g}x host (mlp, 256 rows): "
              f"{'PASS' if report['target_met'] else 'FAIL'} ({target['ratio']:.2f}x)")
    report["wall_s"] = time.perf_counter() - t_start

    print(f"\n{'policy':<18}{'rows':>6}{'fused rd/s':>12}{'host rd/s':>12}{'ratio':>8}"
          f"{'bound':>8}{'host roll s':>13}{'fused roll s':>14}{'learn s':>10}"
          f"{'fused comp s':>14}{'host comp s':>13}")
    for r in report["results"]:
        b = r["breakdown"]
        print(f"{r['policy']:<18}{r['rows']:>6}{r['fused_row_days_per_s']:>12.3g}"
              f"{r['host_row_days_per_s']:>12.3g}{r['ratio']:>8.2f}{b['ratio_bound']:>8.2f}"
              f"{b['host_rollout_s']:>13.4f}{b['fused_rollout_s']:>14.4f}"
              f"{b['learn_s']:>10.4f}"
              f"{r['fused_compile_s']:>14.2f}{r['host_compile_s']:>13.2f}")
    save_report(args.json, report, "bench_train")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
