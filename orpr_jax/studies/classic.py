"""Learned policies on the classic lost-sales model against the exact optimum.

For each case (Poisson mean 5, h = 1, lost-sales penalty p, lead time L) an MLP policy
over order quantities is trained with PPO, RLOO and pathwise gradients in the simulator,
then every policy is simulated on the same demand draws (common random numbers) as the
value-iteration optimum (:mod:`orpr_jax.exact.optimal`); the gap to the optimum is
the simulated cost difference over the simulated optimal cost. The exact optimum and best
base-stock costs come from the Markov chain.

Run ``python -m orpr_jax.studies.classic --json PATH`` for the 16-case table.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from orpr_jax.exact import (
    CLASSIC_LEAD_TIMES,
    CLASSIC_PENALTIES,
    best_base_stock,
    lost_sales_optimum,
)
from orpr_jax.scenarios import make_lost_sales
from orpr_jax.sim.rollout import evaluate_sums
from orpr_jax.train.agents import make_mlp_agent
from orpr_jax.train.rl import HParams, RLConfig, make_task, make_train, trained_agent


@dataclasses.dataclass(frozen=True)
class ClassicSettings:
    """Training and evaluation budget of one case.

    Attributes:
        train_rows: rows simulated in parallel during training.
        max_order: order bins are ``0..max_order`` units.
        updates: updates per algorithm (by name).
        learning_rates: Adam step size per algorithm (annealed linearly to 0).
        num_steps: days per rollout.
        eval_rows: rows of the evaluation run.
        eval_days: days of the evaluation run (after ``warmup_days``).
        warmup_days: days excluded from the evaluation.
    """

    train_rows: int = 256
    max_order: int = 20
    updates: tuple[tuple[str, int], ...] = (("pathwise", 600), ("ppo", 600), ("rloo", 300))
    learning_rates: tuple[tuple[str, float], ...] = (
        ("pathwise", 3e-3), ("ppo", 1e-3), ("rloo", 1e-3))
    num_steps: int = 32
    eval_rows: int = 1000
    eval_days: int = 2000
    warmup_days: int = 200


def _cost_per_day(env, params, policy, key, s: ClassicSettings) -> np.ndarray:
    sums = evaluate_sums(env, params, policy, key, s.eval_days + s.warmup_days, s.warmup_days)
    total = sums.holding_cost + sums.penalty_cost + sums.ordering_cost + sums.purchase_cost
    return np.asarray(total / sums.days, np.float64)


def classic_case(lead_time: int, penalty: float, key: jax.Array,
                 settings: ClassicSettings | None = None) -> dict:
    """One case: exact optimum, best base stock, and each algorithm's simulated gap.

    Returns:
        A JSON-able dict: ``optimum``, ``best_base_stock`` (level, cost, gap), and per
        algorithm the simulated cost, the simulated optimum on the same draws, the gap in
        percent with its standard error (over rows), and training seconds.
    """
    s = settings or ClassicSettings()
    opt = lost_sales_optimum(lead_time, penalty)
    bs = best_base_stock(lead_time, penalty)
    env_tr, p_tr = make_lost_sales(s.train_rows, lead_time=lead_time, lost_sales_cost=penalty)
    env_ev, p_ev = make_lost_sales(s.eval_rows, lead_time=lead_time, lost_sales_cost=penalty)
    eval_key, train_key = jax.random.split(key)
    opt_rows = _cost_per_day(env_ev, p_ev, opt.policy(), eval_key, s)
    out = {
        "lead_time": lead_time, "penalty": penalty, "optimum": opt.average_cost,
        "optimum_simulated": float(opt_rows.mean()),
        "best_base_stock": {"level": bs.level, "cost": bs.average_cost,
                            "gap_pct": 100 * (bs.average_cost / opt.average_cost - 1)},
        "algorithms": {},
    }
    values = np.arange(0, s.max_order + 1)
    # Same scale for every p: advantages are normalised, and Adam is scale-free.
    task = make_task(p_tr, s.train_rows, reward_scale=5.0)
    lrs = dict(s.learning_rates)
    for i, (alg, updates) in enumerate(s.updates):
        agent = make_mlp_agent(values, lead_time, i, scale=5.0)
        # PPO's value clipping on and value normalisation off, as recorded in
        # benchmarks/results/quality_lost_sales_cpu.json.
        cfg = RLConfig(algorithm=alg, num_updates=updates, num_steps=s.num_steps,
                       num_epochs=4, num_minibatches=8, rloo_k=2, anneal_lr=True,
                       clip_value=True, normalize_values=False)
        hp = HParams.create(learning_rate=lrs[alg], ent_coef=0.0, gamma=0.99)
        train = jax.jit(make_train(cfg, env_tr, p_tr, agent, task))
        t0 = time.perf_counter()
        runner, _ = jax.block_until_ready(train(jax.random.fold_in(train_key, i), hp))
        seconds = time.perf_counter() - t0
        rows = _cost_per_day(env_ev, p_ev, trained_agent(agent, runner, cfg), eval_key, s)
        diff = rows - opt_rows
        out["algorithms"][alg] = {
            "cost": float(rows.mean()),
            "gap_pct": float(100 * diff.mean() / opt_rows.mean()),
            "gap_se_pct": float(100 * diff.std(ddof=1) / np.sqrt(diff.size) / opt_rows.mean()),
            "train_seconds": seconds, "updates": updates,
        }
    return out


def markdown_table(cases: list[dict]) -> str:
    """The README table of :func:`classic_case` results: cost gap to the optimum, in %."""
    algs = list(cases[0]["algorithms"]) if cases else []
    head = ("| L | p | optimum | best base-stock | " + " | ".join(algs) + " |\n"
            + "|---:|---:|---:|---:|" + "---:|" * len(algs))
    lines = [head]
    for c in cases:
        cells = [f"{c['algorithms'][a]['gap_pct']:+.2f}% ± {c['algorithms'][a]['gap_se_pct']:.2f}"
                 for a in algs]
        lines.append(f"| {c['lead_time']} | {c['penalty']:g} | {c['optimum']:.4f} | "
                     f"{c['best_base_stock']['cost']:.4f} ({c['best_base_stock']['gap_pct']:+.2f}%)"
                     f" | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Trains PPO, RLOO and pathwise on the classic cases; prints and saves the table."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--lead-times", default=",".join(map(str, CLASSIC_LEAD_TIMES)))
    parser.add_argument("--penalties", default=",".join(map(str, CLASSIC_PENALTIES)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    parser.add_argument("--render", type=Path, default=None,
                        help="print the markdown table of a saved --json file and exit")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(markdown_table(json.loads(args.render.read_text())["cases"]))
        return 0
    s = ClassicSettings()
    if args.quick:
        s = ClassicSettings(train_rows=64, updates=(("pathwise", 20), ("ppo", 20), ("rloo", 10)),
                            eval_rows=200, eval_days=300, warmup_days=50)
    cases = []
    for lt in map(int, args.lead_times.split(",")):
        for p in map(float, args.penalties.split(",")):
            case = classic_case(lt, p, jax.random.key(args.seed), s)
            cases.append(case)
            algs = "  ".join(f"{a} {v['cost']:.4f} ({v['gap_pct']:+.2f}% +- {v['gap_se_pct']:.2f})"
                             for a, v in case["algorithms"].items())
            print(f"L={lt} p={p:g}: optimum {case['optimum']:.4f}, base-stock "
                  f"{case['best_base_stock']['cost']:.4f} "
                  f"({case['best_base_stock']['gap_pct']:+.2f}%); {algs}", flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"settings": dataclasses.asdict(s),
                                                 "cases": cases}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
