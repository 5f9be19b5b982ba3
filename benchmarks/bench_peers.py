#!/usr/bin/env python
"""Peer benchmark: the project's fused PPO against rejax PPO (gymnax adapter) and
Stable-Baselines3 PPO (Gymnasium adapter) on the same lost-sales dynamics, plus simulator
rows for DynaPlex and gym-invmgmt where installed.

Usage::

    .venv/bin/python benchmarks/bench_peers.py --json PATH     # full budget
    .venv/bin/python benchmarks/bench_peers.py --quick --json PATH

Case: ``lost_sales`` with L = 2, p = 9, h = 1, Poisson(5) demand (exact optimum 6.0936 per
period, :func:`orpr_jax.exact.lost_sales_optimum`). Every trainer sees the same dynamics
(the project's simulator), the same observation (``orpr_jax.policies.flat_features`` with
scale 5), order-quantity bins 0..20, reward ``-cost / 5``, a (64, 64) tanh actor and critic
and the same PPO settings (``--rows`` parallel rows, 32 days per rollout, 4 epochs of 8
minibatches, Adam 1e-3, gamma 0.99, GAE 0.95, clip 0.2, grad norm 0.5, no entropy bonus).
Differences that remain: the peers' episodes are truncated and reset every 365 days (the
fused PPO runs one continuing episode), and each library keeps its own PPO details
(advantage normalisation, value clipping, initialisation).

Each trainer runs in chunks of ``--chunk-updates`` updates; after each chunk its greedy
policy is evaluated (not timed) by ``orpr_jax.sim.rollout.evaluate_sums`` on ``--eval-rows``
rows x ``--eval-days`` days after 100 warm-up days with the **same key** as the optimal
policy (common random numbers; SB3's and rejax's actors are read out of their weights into
JAX functions). ``gap = cost / optimum_simulated - 1``. Time to 1% = the training seconds
(compile excluded: each trainer's first chunk is a warm-up on a throwaway run) until the
first evaluation with gap <= 1%, or ``null`` ("not reached within budget") when
``--budget-s`` training seconds pass first. Throughput = training row-days / training
seconds (best chunk). Targets (2-core CPU): fused >= 50x SB3 throughput and >= 10x less
time to the 1% gap; fused >= 1x rejax throughput.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import env_info, fmt, load_avg, save_report  # noqa: E402

import orpr_jax  # noqa: E402
from orpr_jax.exact import lost_sales_optimum  # noqa: E402
from orpr_jax.policies.saved import flat_features  # noqa: E402
from orpr_jax.sim.rollout import evaluate_sums  # noqa: E402
from orpr_jax.train.agents import make_mlp_agent  # noqa: E402
from orpr_jax.train.rl import HParams, RLConfig, make_task, make_update, trained_agent  # noqa: E402

LEAD, PENALTY, MEAN, SCALE = 2, 9.0, 5.0, 5.0
VALUES = np.arange(0, 21, dtype=np.float32)
NUM_STEPS, EPOCHS, MINIBATCHES, LR = 32, 4, 8, 1e-3
GAP_TARGET = 0.01
EPISODE_DAYS = 365


class Evaluator:
    """Greedy cost per row-day on common random numbers, and the simulated optimum."""

    def __init__(self, rows: int, days: int, seed: int):
        self.env, self.params = orpr_jax.make("lost_sales", num_rows=rows, lead_time=LEAD,
                                              lost_sales_cost=PENALTY)
        self.key, self.days, self.warmup = jax.random.key(seed + 1000), days, 100
        self.optimum = lost_sales_optimum(LEAD, PENALTY)
        self.optimum_simulated = self.cost(self.optimum.policy())

    def cost(self, policy) -> float:
        s = evaluate_sums(self.env, self.params, policy, self.key, self.days + self.warmup,
                          self.warmup)
        total = s.holding_cost + s.penalty_cost + s.ordering_cost + s.purchase_cost
        return float(jnp.mean(total / s.days))  # per row-day

    def gap(self, policy) -> float:
        return self.cost(policy) / self.optimum_simulated - 1.0


def _mlp_policy(layers, head):
    """A greedy policy over the flat features from (kernel, bias) numpy weights."""
    layers = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]
    head = (jnp.asarray(head[0]), jnp.asarray(head[1]))

    def policy(obs, key):
        x = flat_features(obs, SCALE)
        for w, b in layers:
            x = jnp.tanh(x @ w + b)
        return jnp.asarray(VALUES)[jnp.argmax(x @ head[0] + head[1], axis=-1)]

    return policy


def _chunked(name: str, chunk_fn, policy_of, state, steps_per_chunk: int, ev: Evaluator,
             budget_s: float) -> dict[str, Any]:
    """Trains in chunks until the gap is <= 1% or ``budget_s`` training seconds pass."""
    trained_s, chunk_s, curve = 0.0, [], []
    reached = None
    while trained_s < budget_s:
        t0 = time.perf_counter()
        state = chunk_fn(state)
        dt = time.perf_counter() - t0
        trained_s += dt
        chunk_s.append(dt)
        gap = ev.gap(policy_of(state))
        curve.append({"train_s": trained_s, "row_days": steps_per_chunk * len(chunk_s),
                      "gap": gap})
        print(f"[{name}] {trained_s:7.1f} s  gap {100 * gap:+.2f}%", flush=True)
        if gap <= GAP_TARGET:
            reached = trained_s
            break
    return {"row_days_per_s": steps_per_chunk / min(chunk_s), "time_to_1pct_s": reached,
            "reached": reached is not None, "final_gap": curve[-1]["gap"],
            "train_s": trained_s, "chunks": len(chunk_s), "row_days_per_chunk": steps_per_chunk,
            "chunk_s": chunk_s, "curve": curve,
            "status": "reached" if reached is not None else "not reached within budget"}


def run_fused(a, ev: Evaluator) -> dict[str, Any]:
    env, params = orpr_jax.make("lost_sales", num_rows=a.rows, lead_time=LEAD,
                                lost_sales_cost=PENALTY)
    agent = make_mlp_agent(VALUES, LEAD, 0, scale=SCALE)
    cfg = RLConfig(num_updates=a.chunk_updates, num_steps=NUM_STEPS, num_epochs=EPOCHS,
                   num_minibatches=MINIBATCHES, clip_value=True, normalize_values=False)
    hp = HParams.create(learning_rate=LR, ent_coef=0.0, gamma=0.99, gae_lambda=0.95,
                        clip_eps=0.2)
    init, update = make_update(cfg, env, params, agent, make_task(params, a.rows,
                                                                  reward_scale=SCALE))
    chunk = jax.jit(lambda r: jax.lax.scan(lambda c, _: update(c, hp), r, None,
                                           length=a.chunk_updates)[0])
    t0 = time.perf_counter()
    # Warm-up on a throwaway run, twice: from a fresh state and from a chunk's output, so
    # every argument signature the timed chain meets is compiled before the clock starts.
    jax.block_until_ready(chunk(chunk(jax.jit(init)(jax.random.key(a.seed + 1), hp))))
    compile_s = time.perf_counter() - t0
    runner = jax.block_until_ready(jax.jit(init)(jax.random.key(a.seed), hp))
    out = _chunked("fused", lambda r: jax.block_until_ready(chunk(r)),
                   lambda r: trained_agent(agent, r, cfg), runner,
                   a.rows * NUM_STEPS * a.chunk_updates, ev, a.budget_s)
    return {**out, "first_chunk_s": compile_s}


def run_rejax(a, ev: Evaluator) -> dict[str, Any]:
    import rejax

    import orpr_jax.adapters as ad

    env, env_params = ad.make("orpr/LostSales-v0", lead_time=LEAD, lost_sales_cost=PENALTY,
                              reward_scale=SCALE, scale=SCALE,
                              max_steps_in_episode=EPISODE_DAYS)
    steps = a.rows * NUM_STEPS * a.chunk_updates
    algo = rejax.PPO.create(
        env=ad.legacy_step(env), env_params=env_params, num_envs=a.rows, num_steps=NUM_STEPS,
        num_epochs=EPOCHS, num_minibatches=MINIBATCHES, learning_rate=LR, ent_coef=0.0,
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, max_grad_norm=0.5, total_timesteps=steps,
        eval_freq=steps, skip_initial_evaluation=True,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)})
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))  # timed: no eval

    with jax.numpy_dtype_promotion("standard"):
        train = jax.jit(lambda ts: algo.train(train_state=ts)[0])
        t0 = time.perf_counter()
        # rejax builds a new state class on every init_state call (a new pytree type, so a
        # new compile): warm up twice (fresh state, then a chunk's output) from the very
        # state object the timed run starts from, and throw the warm-up's outputs away.
        ts = algo.init_state(jax.random.key(a.seed))
        jax.block_until_ready(train(train(ts)))
        compile_s = time.perf_counter() - t0

        def policy_of(ts):
            p = ts.actor_ts.params["params"]
            dense = [p["features"][f"Dense_{i}"] for i in range(2)]
            layers = [(d["kernel"], d["bias"]) for d in dense]
            return _mlp_policy(layers, (p["action_logits"]["kernel"], p["action_logits"]["bias"]))

        out = _chunked("rejax", lambda s: jax.block_until_ready(train(s)), policy_of, ts, steps,
                       ev, a.budget_s)
    return {**out, "first_chunk_s": compile_s, "version": rejax.__version__
            if hasattr(rejax, "__version__") else _version("rejax")}


def run_sb3(a, ev: Evaluator) -> dict[str, Any]:
    import stable_baselines3 as sb3
    import torch

    from orpr_jax.adapters.gymnasium_env import InventoryVectorEnv
    from orpr_jax.adapters.sb3 import SB3VecEnv

    venv = InventoryVectorEnv("lost_sales", num_envs=a.rows, lead_time=LEAD,
                              lost_sales_cost=PENALTY, reward_scale=SCALE, scale=SCALE,
                              max_steps_in_episode=EPISODE_DAYS)
    venv.reset(seed=a.seed)
    venv.step(np.zeros(a.rows, np.int64))  # compile the simulator's step before timing
    warm = sb3.PPO("MlpPolicy", SB3VecEnv(venv), n_steps=NUM_STEPS, device="cpu")
    warm.learn(a.rows * NUM_STEPS)  # torch's first-call costs, apart from the timed run
    model = sb3.PPO("MlpPolicy", SB3VecEnv(venv), n_steps=NUM_STEPS,
                    batch_size=a.rows * NUM_STEPS // MINIBATCHES, n_epochs=EPOCHS,
                    learning_rate=LR, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                    ent_coef=0.0, max_grad_norm=0.5, seed=a.seed, device="cpu")
    steps = a.rows * NUM_STEPS * a.chunk_updates

    def chunk(m):
        m.learn(steps, reset_num_timesteps=False)
        return m

    def policy_of(m):
        net = m.policy.mlp_extractor.policy_net
        layers = [(net[i].weight.detach().numpy().T, net[i].bias.detach().numpy())
                  for i in (0, 2)]
        head = m.policy.action_net
        return _mlp_policy(layers, (head.weight.detach().numpy().T, head.bias.detach().numpy()))

    out = _chunked("sb3", chunk, policy_of, model, steps, ev, a.sb3_budget_s or a.budget_s)
    return {**out, "version": sb3.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run_dynaplex(a) -> dict[str, Any]:
    """DynaPlex's lost-sales MDP (the same model) assessing base-stock S = 19."""
    import dynaplex
    from dynaplex.modelling import DiscreteDist
    from dynaplex.models.lost_sales import BaseStockPolicy, LostSalesMDP

    mdp = LostSalesMDP(p=PENALTY, h=1.0, leadtime=LEAD, demand_dist=DiscreteDist.poisson(MEAN),
                       bound_order_size_to_max_system_inv=True)
    out = {}
    for attempt in ("first", "steady"):
        t0 = time.perf_counter()
        comparer = dynaplex.PolicyComparer(mdp, number_of_trajectories=a.sim_rows,
                                           warmup_time=100, horizon=a.sim_days, seed=0)
        res = comparer.assess(BaseStockPolicy(mdp, base_stock_level=19))
        out[f"{attempt}_s"] = time.perf_counter() - t0
    return {"rows": a.sim_rows, "days": a.sim_days + 100, "cost_per_period": res.mean,
            "error": res.error, "row_days_per_s": a.sim_rows * (a.sim_days + 100)
            / out["steady_s"], **out, "version": _version("dynaplex")}


def run_gym_invmgmt(a) -> dict[str, Any]:
    """gym-invmgmt's serial network stepped by an order-up-to policy on its on-hand
    entries (obs = [D[t-1], X[t+1], arrivals]; the pipeline is not split per link)."""
    import gym_invmgmt

    env = gym_invmgmt.CoreEnv(scenario="serial")
    env.reset(seed=0)
    steps = max(200, a.sim_days)
    obs, _ = env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        order = np.clip(40.0 - obs[1:4], 0.0, env.action_space.high)
        obs, _, term, trunc, _ = env.step(order)
        if term or trunc:
            obs, _ = env.reset()
    dt = time.perf_counter() - t0
    return {"steps": steps, "row_days_per_s": steps / dt, "seconds": dt,
            "scenario": "serial (3 reorder links, one env)", "version": _version("gym-invmgmt")}


def _attempt(name: str, fn, *args) -> dict[str, Any]:
    try:
        return {"status": "ok", **fn(*args)}
    except ImportError as e:
        return {"status": "skipped", "reason": f"not installed: {e}"}
    except Exception as e:  # a peer failing must not lose the other rows  # noqa: BLE001
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"}


def _ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def main(argv: list[str] | None = None) -> int:
    """Runs every trainer and simulator row; prints the table; writes ``--json``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="small budget (smoke run)")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--chunk-updates", type=int, default=10)
    p.add_argument("--budget-s", type=float, default=300.0, help="training seconds per trainer")
    p.add_argument("--sb3-budget-s", type=float, default=None)
    p.add_argument("--eval-rows", type=int, default=1000)
    p.add_argument("--eval-days", type=int, default=2000)
    p.add_argument("--sim-rows", type=int, default=1000)
    p.add_argument("--sim-days", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.quick:
        a.budget_s, a.eval_rows, a.eval_days, a.chunk_updates = 40.0, 256, 600, 10
        a.sim_rows, a.sim_days = 256, 500
    t_start = time.perf_counter()
    ev = Evaluator(a.eval_rows, a.eval_days, a.seed)
    load_before = load_avg()
    trainers = {"fused_ppo": _attempt("fused", run_fused, a, ev),
                "rejax_ppo": _attempt("rejax", run_rejax, a, ev),
                "sb3_ppo": _attempt("sb3", run_sb3, a, ev)}
    sims = {"dynaplex": _attempt("dynaplex", run_dynaplex, a),
            "gym_invmgmt": _attempt("gym_invmgmt", run_gym_invmgmt, a)}
    f, r, s = (trainers[k] for k in ("fused_ppo", "rejax_ppo", "sb3_ppo"))
    ratios = {"throughput_fused_vs_sb3": _ratio(f.get("row_days_per_s"), s.get("row_days_per_s")),
              "throughput_fused_vs_rejax": _ratio(f.get("row_days_per_s"),
                                                  r.get("row_days_per_s")),
              "time_to_1pct_sb3_vs_fused": _ratio(s.get("time_to_1pct_s"),
                                                  f.get("time_to_1pct_s"))}
    if ratios["time_to_1pct_sb3_vs_fused"] is None and f.get("reached") and not s.get("reached"):
        ratios["time_to_1pct_sb3_vs_fused_lower_bound"] = _ratio(s.get("train_s"),
                                                                 f["time_to_1pct_s"])
    targets = {"throughput_fused_vs_sb3 >= 50": _ge(ratios["throughput_fused_vs_sb3"], 50),
               "time_to_1pct >= 10x less than sb3": _ge(
                   ratios.get("time_to_1pct_sb3_vs_fused")
                   or ratios.get("time_to_1pct_sb3_vs_fused_lower_bound"), 10),
               "throughput_fused_vs_rejax >= 1": _ge(ratios["throughput_fused_vs_rejax"], 1)}
    print("\n| trainer | row-days/s | time to 1% gap (s) | final gap | status |\n|---|---:|---:|---:|---|")
    for k, v in trainers.items():
        print(f"| {k} | {fmt(v.get('row_days_per_s'), '.3g')} | "
              f"{fmt(v.get('time_to_1pct_s'), '.1f')} | "
              f"{fmt(None if v.get('final_gap') is None else 100 * v['final_gap'], '+.2f')}% | "
              f"{v.get('status')} {v.get('reason', '')} |")
    for k, v in sims.items():
        print(f"| {k} (simulator) | {fmt(v.get('row_days_per_s'), '.3g')} | - | - | "
              f"{v.get('status')} {v.get('reason', '')} |")
    print("ratios:", ratios, "\ntargets:", targets)
    report = {**env_info(), "quick": a.quick, "config": vars(a) | {"json": str(a.json)},
              "case": {"lead_time": LEAD, "penalty": PENALTY, "holding": 1.0, "mean": MEAN,
                       "optimum": ev.optimum.average_cost,
                       "optimum_simulated": ev.optimum_simulated},
              "load_before": load_before, "load_after": load_avg(), "trainers": trainers,
              "simulators": sims, "ratios": ratios, "targets_met": targets,
              "wall_s": time.perf_counter() - t_start}
    save_report(a.json, report, "bench_peers")
    return 0


def _ge(x, target) -> bool | None:
    return None if x is None else bool(x >= target)


if __name__ == "__main__":
    raise SystemExit(main())
