"""ORPR end to end on a data set: OR labels -> pretraining -> alignment in the simulator,
compared on held-out rows and days with the tuned baselines.

The rows are split once (as in :mod:`orpr_jax.evaluation.pretrained`): the foundation
model is pretrained on the OR labels of the training rows over the training period, then
aligned in the simulator on the same rows and period. Every policy is evaluated on the
held-out rows over the test period: the incumbent rule (one safety-days value tuned on the
training period), base-stock (levels tuned per row on the training period), the OR policy
(hindsight labels of those rows and days: the teacher, not deployable), the pretrained
model, ORPR (pretrained + PPO with the KL anchor, per-category in-stock constraints and
promotion expert guidance), PPO from scratch, RLOO and pathwise gradients (both from the
pretrained model).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.heuristics import HeuristicResult, evaluated, tune_base_stock
from orpr_jax.evaluation.or_policy import label_policy, tune_incumbent
from orpr_jax.labels.labeller import LabelConfig, label_decisions
from orpr_jax.policies import BaseStock
from orpr_jax.policies.foundation import FoundationModel
from orpr_jax.sim.rollout import evaluate
from orpr_jax.train.agents import make_foundation_agent
from orpr_jax.train.loop import fit
from orpr_jax.train.pretrain import PretrainConfig
from orpr_jax.train.rl import (
    HParams,
    RLConfig,
    Task,
    estimate_uplift,
    make_task,
    promotion_expert_bins,
)

#: The compared learned policies: name -> (algorithm, starts from the pretrained model).
ALGORITHMS = {
    "orpr": ("ppo", True),
    "ppo-scratch": ("ppo", False),
    "rloo": ("rloo", True),
    "pathwise": ("pathwise", True),
}


#: Allowed ``AlignSettings.play_mode`` values.
PLAY_MODES = ("auto", "greedy", "expected")


@dataclasses.dataclass(frozen=True)
class AlignSettings:
    """Alignment settings of :func:`align_and_compare` (the traced ones go to
    :class:`~orpr_jax.train.rl.HParams`).

    Attributes:
        num_updates: updates per algorithm.
        num_steps: days per rollout.
        num_epochs: PPO/RLOO epochs per rollout.
        num_minibatches: minibatches per epoch.
        rloo_k: RLOO copies per row.
        learning_rate: Adam step size (fine-tuning).
        scratch_learning_rate: Adam step size of PPO from scratch.
        kl_coef: weight of KL(pi || pretrained).
        gae_lambda: PPO's GAE lambda per decision interval (0.99: an order's effect shows
            after the lead time, beyond the interval that earns its reward, so the
            advantage leans on longer returns than the usual 0.95).
        ent_coef: entropy bonus.
        expert_weight: weight of the promotion-window expert term.
        turnover_weight: weight of the excess-turnover-days penalty.
        target_turnover: turnover days above which the penalty applies.
        lagrange_lr: dual-ascent step of the per-category in-stock multipliers.
        service_margin: the in-stock target is the incumbent rule's in-stock rate on the
            training rows and period plus this margin.
        safety_days_expert: extra days of the promotion expert over lead time + review.
        max_train_rows: at most this many training rows are simulated during alignment
            (a fixed random subset; all rows when None).
        critic_warmup_fraction: share of the PPO updates that first train only the fresh
            value head of the pretrained model.
        clip_value: PPO's value clipping (off here: with value normalisation the critic's
            loss is O(1) already).
        normalize_values: PPO's value normalisation (see ``RLConfig.normalize_values``).
        play_mode: how PPO / RLOO policies decide after training: ``"greedy"`` (the argmax
            bin), ``"expected"`` (the expected inventory days of the policy's
            distribution) or ``"auto"``: whichever of the two costs less on the training
            rows over the training period (never the held-out rows or days). Pathwise
            policies always play the expected action they were trained on.
    """

    num_updates: int = 40
    num_steps: int = 28
    num_epochs: int = 2
    num_minibatches: int = 4
    rloo_k: int = 2
    learning_rate: float = 3e-4
    scratch_learning_rate: float = 3e-4
    kl_coef: float = 0.01
    gae_lambda: float = 0.99
    ent_coef: float = 0.0
    expert_weight: float = 0.1
    turnover_weight: float = 0.0
    target_turnover: float = 14.0
    lagrange_lr: float = 0.5
    service_margin: float = 0.0
    safety_days_expert: float = 2.0
    max_train_rows: int | None = 512
    critic_warmup_fraction: float = 0.1
    clip_value: bool = False
    normalize_values: bool = True
    play_mode: str = "auto"

    def __post_init__(self) -> None:
        if self.play_mode not in PLAY_MODES:
            raise ValueError(f"play_mode={self.play_mode!r} is not allowed; use one of "
                             f"{list(PLAY_MODES)}")


@dataclasses.dataclass
class AlignReport:
    """What :func:`align_and_compare` measured, and the policies it compared.

    Attributes:
        results: test-period metrics of every policy on the held-out rows.
        histories: per-update training metrics of each alignment algorithm.
        policies: every compared policy by its result name (policy pytrees).
        held_out: the held-out rows' data set (what ``results`` were measured on).
        train_rows: rows simulated during alignment.
        held_out_rows: rows evaluated.
        service_target: the in-stock target of the Lagrange constraints.
        seconds: wall time of the whole comparison.
        play_modes: per algorithm, the mode its trained policy plays and the training-period
            total cost of each candidate mode (see ``AlignSettings.play_mode``).
    """

    results: list[HeuristicResult]
    histories: dict[str, list[dict]]
    policies: dict[str, object]
    held_out: InventoryData
    train_rows: int
    held_out_rows: int
    service_target: float
    seconds: float
    play_modes: dict[str, dict] = dataclasses.field(default_factory=dict)


def alignment_task(d_seen: InventoryData, p_tr, values, train: tuple[int, int],
                   safety_days_expert: float) -> Task:
    """The alignment objective's per-row data: in-stock constraints per category and the
    promotion expert (uplift-adjusted lead time + review + ``safety_days_expert`` days;
    the uplift from the row table, or estimated on ``train`` when the data lacks it)."""
    categories = np.asarray(p_tr.category, np.int64)
    lead = np.asarray(d_seen.rows["lead_time_mean"], np.float64)
    review = np.asarray(d_seen.rows["review_period"], np.float64)
    if "promo_uplift" in d_seen.rows:
        uplift = np.asarray(d_seen.rows["promo_uplift"], np.float64)
    else:
        period = slice(train[0], train[0] + train[1])
        uplift = estimate_uplift(d_seen.demand[period], d_seen.promo[period], group=categories)
    expert = promotion_expert_bins(p_tr, values, lead + review + safety_days_expert,
                                   uplift=uplift)
    return make_task(p_tr, len(categories), group=categories, expert_bins=expert)


def choose_play_mode(agent, env, params, key, num_days: int, warmup_days: int,
                     mode: str = "auto"):
    """``(agent playing the chosen mode, {"mode", "train_cost": {mode: cost}})``.

    ``"auto"`` simulates the greedy and the expected-action policy on ``env`` / ``params``
    (the training rows and period) and keeps the cheaper one; a fixed mode is kept as is.
    """
    if mode not in PLAY_MODES:
        raise ValueError(f"play_mode={mode!r} is not allowed; use one of {list(PLAY_MODES)}")
    if mode != "auto":
        return agent.playing(mode), {"mode": mode, "train_cost": {}}
    costs = {m: float(evaluate(env, params, agent.playing(m), key, num_days,
                               warmup_days)["total_cost"]) for m in ("greedy", "expected")}
    best = min(costs, key=costs.get)
    return agent.playing(best), {"mode": best, "train_cost": costs}


def _hparams(s: AlignSettings, scratch: bool, service_target: float) -> HParams:
    return HParams.create(
        learning_rate=s.scratch_learning_rate if scratch else s.learning_rate,
        kl_coef=0.0 if scratch else s.kl_coef, ent_coef=s.ent_coef, gae_lambda=s.gae_lambda,
        expert_weight=s.expert_weight, turnover_weight=s.turnover_weight,
        target_turnover=s.target_turnover, lagrange_lr=s.lagrange_lr,
        service_target=service_target,
    )


def align_and_compare(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    settings: AlignSettings | None = None,
    algorithms: tuple[str, ...] = tuple(ALGORITHMS),
    label_config: LabelConfig | None = None,
    preset: str = "small",
    pretrain_config: PretrainConfig | None = None,
    held_out_fraction: float = 0.2,
    warmup_days: int = 28,
    resume: bool = False,
    progress: bool = True,
) -> AlignReport:
    """Runs ORPR and the alternatives; evaluates everything on held-out rows and days.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the labelling, pretraining, alignment and tuning
            period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key.
        run_dir: run folder (labels, pretraining and one alignment folder per algorithm).
        settings: alignment settings.
        algorithms: which of :data:`ALGORITHMS` to train.
        label_config: the OR model (default as in :func:`pretrain_stage`).
        preset: foundation model size.
        pretrain_config: pretraining settings.
        held_out_fraction: share of rows never trained on.
        warmup_days: leading days excluded from the metrics.
        resume: continue every stage from the run folder's checkpoints.
        progress: show progress bars.

    Returns:
        An :class:`AlignReport`.

    Raises:
        ValueError: for an unknown algorithm name.
    """
    from orpr_jax.evaluation.pretrained import pretrain_stage

    for name in algorithms:
        if name not in ALGORITHMS:
            raise ValueError(f"algorithm={name!r} is not allowed; use one of {list(ALGORITHMS)}")
    s = settings or AlignSettings()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    stage = pretrain_stage(data, train, key, run_dir, label_config=label_config,
                           preset=preset, pretrain_config=pretrain_config,
                           held_out_fraction=held_out_fraction, resume=resume,
                           progress=progress)
    _, label_key, tune_key, eval_key = jax.random.split(key, 4)
    align_key, subset_key = jax.random.split(jax.random.fold_in(key, 1))
    lc = stage.label_config
    values = np.asarray(lc.candidates, np.float32)

    # Training rows for alignment (a fixed subset bounds the simulated batch).
    seen = stage.seen
    if s.max_train_rows is not None and seen.size > s.max_train_rows:
        pick = np.sort(np.asarray(jax.random.choice(subset_key, seen.size,
                                                    (s.max_train_rows,), replace=False)))
        seen = seen[pick]
    d_seen = data.select_rows(seen)
    env_tr, p_tr = env_from_data(d_seen, start=train[0], num_days=train[1])

    # The incumbent rule: one safety-days value, tuned on the training period.
    d_held = data.select_rows(stage.held)
    env_ht, p_ht = env_from_data(d_held, start=train[0], num_days=train[1])
    env_te, p_te = env_from_data(d_held, start=test[0], num_days=test[1])
    incumbent = tune_incumbent(env_ht, p_ht, train, tune_key, warmup_days, lc.window)
    safety = incumbent.safety_days
    inc_train = evaluate(env_tr, p_tr, incumbent, tune_key, train[1], warmup_days)
    service_target = float(min(float(inc_train["in_stock_rate"]) + s.service_margin, 1.0))

    task = alignment_task(d_seen, p_tr, values, train, s.safety_days_expert)
    num_groups = int(np.max(np.asarray(task.group))) + 1

    results: list[HeuristicResult] = []
    policies: dict[str, object] = {}

    def run(name, policy, seconds=0.0):
        results.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days,
                                 seconds))
        policies[name] = policy

    run(f"incumbent rule (L + R + {float(safety):g} days)", incumbent)
    best_level = tune_base_stock(d_held, env_ht, p_ht, train, tune_key, warmup_days)
    run("base-stock (tuned per row)", BaseStock(best_level))
    run("OR policy (hindsight labels, the teacher)",
        label_policy(label_decisions(env_te, p_te, label_key, lc), lc.window))
    pretrained = make_foundation_agent(stage.result.model, values, alpha=lc.alpha,
                                       window=lc.window)
    run(f"pretrained ({preset})", pretrained)

    histories: dict[str, list[dict]] = {}
    play_modes: dict[str, dict] = {}
    names = {"orpr": "ORPR (pretrained + PPO)", "ppo-scratch": "PPO from scratch",
             "rloo": "RLOO (pretrained + RLOO)", "pathwise": "pathwise (pretrained + BPTT)"}
    for i, name in enumerate(algorithms):
        algorithm, from_pretrained = ALGORITHMS[name]
        agent = pretrained
        if not from_pretrained:
            fresh = FoundationModel(stage.model_config, rngs=nnx.Rngs(i + 1))
            agent = make_foundation_agent(fresh, values, alpha=lc.alpha, window=lc.window)
        cfg = RLConfig(algorithm=algorithm, num_updates=s.num_updates, num_steps=s.num_steps,
                       num_epochs=s.num_epochs, num_minibatches=s.num_minibatches,
                       rloo_k=s.rloo_k, num_groups=num_groups,
                       critic_warmup_updates=int(s.critic_warmup_fraction * s.num_updates),
                       clip_value=s.clip_value, normalize_values=s.normalize_values)
        t0 = time.perf_counter()
        out = fit(cfg, env_tr, p_tr, agent, _hparams(s, not from_pretrained, service_target),
                  jax.random.fold_in(align_key, i), run_dir / "align" / name, task=task,
                  chunk=max(1, s.num_updates // 10), resume=resume,
                  data_hash=stage.labels.meta.get("input_hash", ""), progress=progress)
        histories[name] = out.history
        trained = out.agent
        if algorithm != "pathwise":
            trained, play_modes[name] = choose_play_mode(trained, env_tr, p_tr, tune_key,
                                                         train[1], warmup_days, s.play_mode)
        run(names[name], trained, time.perf_counter() - t0)
    return AlignReport(results=results, histories=histories, policies=policies,
                       held_out=d_held, train_rows=int(seen.size),
                       held_out_rows=int(stage.held.size), service_target=service_target,
                       seconds=time.perf_counter() - t_start, play_modes=play_modes)


def main(argv: list[str] | None = None) -> int:
    """ORPR on the built-in data: the held-out comparison table of every policy."""
    import argparse
    import json

    from orpr_jax.evaluation.tables import markdown_table, print_table
    from orpr_jax.scenarios import jd_period, jd_synthetic_data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="small", choices=("small", "default"))
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--updates", type=int, default=AlignSettings.num_updates)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--out", type=Path, default=Path("runs/align"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    data = jd_synthetic_data(seed=args.seed, num_skus=args.skus)
    train, test = jd_period(data, "train"), jd_period(data, "test")
    pc = PretrainConfig(total_steps=args.pretrain_steps, eval_every=100, patience=8,
                        ordinal_sigma=1.0, seed=args.seed)
    rep = align_and_compare(data, train, test, jax.random.key(args.seed), args.out,
                            settings=AlignSettings(num_updates=args.updates),
                            algorithms=tuple(args.algorithms.split(",")), preset=args.preset,
                            pretrain_config=pc, resume=args.resume)
    rows = [(r.name, r.metrics) for r in rep.results]
    print_table(f"held-out rows ({rep.held_out_rows}), test period", rows)
    print(f"aligned on {rep.train_rows} training rows; in-stock target "
          f"{rep.service_target:.3f}; {rep.seconds:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(markdown_table(rows) + "\n")
    (args.out / "report.json").write_text(json.dumps({
        "results": {r.name: {**r.metrics, "train_seconds": r.tune_seconds}
                    for r in rep.results},
        "train_rows": rep.train_rows, "held_out_rows": rep.held_out_rows,
        "service_target": rep.service_target, "seconds": rep.seconds,
        "play_modes": rep.play_modes,
        "histories": rep.histories}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

