"""The alignment and evaluation stages: the pretrained model fine-tuned in the simulator
(:func:`align_stage`), then every policy measured on held-out rows and days
(:func:`evaluate_stage`); :func:`align_and_compare` chains the two.

The rows are split once (as in :mod:`orpr_jax.pipeline.stages`): the foundation model is
pretrained on the OR labels of the training rows over the training period, then aligned in
the simulator on the same rows and period. Every policy is evaluated on the held-out rows
over the test period: the baselines a planner would field (the incumbent rule with one
safety-days value, and per row: inventory days, base-stock at a fixed level, base-stock
following the forecast and (s, S); all tuned on the training period), the OR policy
(hindsight labels of those rows and days: the teacher, not deployable), the pretrained
model, ORPR (pretrained + PPO with the KL anchor, per-category in-stock constraints and
promotion expert guidance), PPO from scratch, RLOO and pathwise gradients (both from the
pretrained model). Every learned policy decodes its distribution by the same rule (see
``AlignSettings.play_mode``), chosen per policy on the training rows and period.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.baselines import (
    HeuristicResult,
    evaluated,
    fielded_baselines,
    tune_incumbent,
)
from orpr_jax.labels.labeller import LabelConfig, label_decisions
from orpr_jax.pipeline.config import ALGORITHMS, DECODINGS, PLAY_MODES, AlignSettings
from orpr_jax.pipeline.stages import pretrain_stage
from orpr_jax.policies import label_policy
from orpr_jax.policies.foundation import FoundationModel
from orpr_jax.sim.rollout import evaluate, rollout
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

#: Result names of the learned policies, by algorithm name.
POLICY_NAMES = {"orpr": "ORPR (pretrained + PPO)", "ppo-scratch": "PPO from scratch",
                "rloo": "RLOO (pretrained + RLOO)", "pathwise": "pathwise (pretrained + BPTT)"}


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
        play_modes: per learned policy (``"pretrained"`` and each algorithm), the decoding
            it plays, the training-period total cost of each candidate decoding (see
            ``AlignSettings.play_mode``) and the chosen decoding's in-stock rate per
            category on the training rows beside its target.
        service_targets: the per-category in-stock targets and their source.
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
    service_targets: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Aligned:
    """What :func:`align_stage` trained, ready for :func:`evaluate_stage`.

    Attributes:
        stage: the pretraining stage (row split, labels, pretrained model).
        incumbent: the incumbent rule, its safety days tuned on the training period.
        pretrained: the pretrained model as an agent.
        trained: the aligned agents by result name, in training order.
        train_seconds: training time of each aligned agent, by result name.
        histories: per-update training metrics of each algorithm.
        play_modes: per PPO / RLOO algorithm, the chosen decision mode and its costs.
        train_rows: rows simulated during alignment.
        service_target: the in-stock target of the Lagrange constraints.
        held_out: the held-out rows' data set.
        held_train: ``(env, params)`` of the held-out rows over the training period (the
            baselines are tuned there).
        service_targets: the per-category in-stock targets and their source.
    """

    stage: object
    incumbent: object
    pretrained: object
    trained: dict[str, object]
    train_seconds: dict[str, float]
    histories: dict[str, list[dict]]
    play_modes: dict[str, dict]
    train_rows: int
    service_target: float
    held_out: InventoryData
    held_train: tuple
    service_targets: dict = dataclasses.field(default_factory=dict)


def alignment_task(d_seen: InventoryData, p_tr, values, train: tuple[int, int],
                   safety_days_expert: float, service_target=None) -> Task:
    """The alignment objective's per-row data: in-stock constraints per category (with
    ``service_target`` ``[G]`` per category, or the pooled ``HParams.service_target``) and
    the promotion expert (uplift-adjusted lead time + review + ``safety_days_expert``
    days; the uplift from the row table, or estimated on ``train`` when the data lacks
    it)."""
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
    return make_task(p_tr, len(categories), group=categories, expert_bins=expert,
                     service_target=service_target)


def group_in_stock(env, params, policy, key, num_days: int, warmup_days: int, group,
                   num_groups: int) -> np.ndarray:
    """``[G]`` in-stock rate of ``policy`` per group (row-days after the warm-up)."""
    return _in_stock_rates(env, params, policy, key, num_days, warmup_days, group,
                           num_groups)[0]


def _in_stock_rates(env, params, policy, key, num_days, warmup_days, group, num_groups):
    """``([G] per group, [] over all row-days)`` in-stock rates from one rollout."""
    _, outcomes, _ = rollout(env, params, policy, key, num_days)
    per_row = np.asarray(outcomes.in_stock)[warmup_days:].mean(axis=0)
    return _by_group(per_row, group, num_groups), float(per_row.mean())


def _by_group(per_row, group, num_groups) -> np.ndarray:
    group = np.asarray(group)
    counts = np.bincount(group, minlength=num_groups)
    sums = np.bincount(group, weights=per_row, minlength=num_groups)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def choose_play_mode(agent, env, params, key, num_days: int, warmup_days: int,
                     mode: str = "auto", *, group=None, targets=None):
    """``(agent playing the chosen decoding, record)``.

    ``"auto"`` simulates every decoding of :data:`~orpr_jax.pipeline.config.DECODINGS` on
    ``env`` / ``params`` (the training rows and period) and keeps the cheapest; a fixed
    mode is kept as is. With ``group`` (``[R]``) and ``targets`` (``[G]``) the record also
    holds the chosen decoding's in-stock rate per group on those rows and days, beside
    the targets the alignment held it to: the service of the policy that is deployed,
    not of the sampled training policy.

    Returns:
        ``(agent, {"mode", "train_cost": {mode: cost}, ["in_stock_by_group", "targets"]})``.
    """
    if mode not in PLAY_MODES:
        raise ValueError(f"play_mode={mode!r} is not allowed; use one of {list(PLAY_MODES)}")
    costs = {}
    if mode == "auto":
        costs = {m: float(evaluate(env, params, agent.playing(m), key, num_days,
                                   warmup_days)["total_cost"]) for m in DECODINGS}
        mode = min(costs, key=costs.get)
    chosen = agent.playing(mode)
    record = {"mode": mode, "train_cost": costs}
    if group is not None and targets is not None:
        targets = np.asarray(targets, np.float64)
        rates = group_in_stock(env, params, chosen, key, num_days, warmup_days, group,
                               targets.shape[0])
        record.update(in_stock_by_group=[float(x) for x in rates],
                      targets=[float(x) for x in targets])
    return chosen, record


def _hparams(s: AlignSettings, scratch: bool, service_target: float) -> HParams:
    return HParams.create(
        learning_rate=s.scratch_learning_rate if scratch else s.learning_rate,
        kl_coef=0.0 if scratch else s.kl_coef, ent_coef=s.ent_coef, gae_lambda=s.gae_lambda,
        expert_weight=s.expert_weight, turnover_weight=s.turnover_weight,
        target_turnover=s.target_turnover, lagrange_lr=s.lagrange_lr,
        service_target=service_target,
    )


def _check_algorithms(algorithms) -> None:
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ValueError(f"algorithm={name!r} is not allowed; use one of {list(ALGORITHMS)}")


def _alignment_rows(stage, data: InventoryData, s: AlignSettings, subset_key) -> np.ndarray:
    """The training rows simulated during alignment (a fixed subset bounds the batch)."""
    seen = stage.seen
    if s.max_train_rows is not None and seen.size > s.max_train_rows:
        pick = np.sort(np.asarray(jax.random.choice(subset_key, seen.size,
                                                    (s.max_train_rows,), replace=False)))
        seen = seen[pick]
    return seen


def align_stage(
    data: InventoryData,
    train: tuple[int, int],
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
) -> Aligned:
    """Pretrains (or resumes) the foundation model and aligns it with each algorithm on
    the training rows over ``train``; nothing here sees the test period.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the labelling, pretraining, alignment and tuning
            period.
        key: PRNG key (split as in :func:`~orpr_jax.pipeline.stages.pretrain_stage`).
        run_dir: run folder (labels, pretraining and one alignment folder per algorithm).
        settings: alignment settings.
        algorithms: which of :data:`~orpr_jax.pipeline.config.ALGORITHMS` to train.
        label_config: the OR model (default as in ``pretrain_stage``).
        preset: foundation model size.
        pretrain_config: pretraining settings.
        held_out_fraction: share of rows never trained on.
        warmup_days: leading days excluded from the metrics.
        resume: continue every stage from the run folder's checkpoints.
        progress: show progress bars.

    Returns:
        An :class:`Aligned`.

    Raises:
        ValueError: for an unknown algorithm name.
    """
    _check_algorithms(algorithms)
    s = settings or AlignSettings()
    run_dir = Path(run_dir)
    stage = pretrain_stage(data, train, key, run_dir, label_config=label_config,
                           preset=preset, pretrain_config=pretrain_config,
                           held_out_fraction=held_out_fraction, resume=resume,
                           progress=progress)
    _, _, tune_key, _ = jax.random.split(key, 4)
    align_key, subset_key = jax.random.split(jax.random.fold_in(key, 1))
    lc = stage.label_config
    values = np.asarray(lc.candidates, np.float32)
    seen = _alignment_rows(stage, data, s, subset_key)
    d_seen = data.select_rows(seen)
    env_tr, p_tr = env_from_data(d_seen, start=train[0], num_days=train[1])

    # The incumbent rule: one safety-days value, tuned on the training period.
    d_held = data.select_rows(stage.held)
    env_ht, p_ht = env_from_data(d_held, start=train[0], num_days=train[1])
    incumbent = tune_incumbent(env_ht, p_ht, train, tune_key, warmup_days, lc.window)
    # Each category is held to its own target: the incumbent's in-stock rate on that
    # category's training rows over the training period, plus the margin (one rollout
    # gives both those rates and the pooled one the report quotes).
    group = np.asarray(p_tr.category, np.int64)
    num_groups = int(group.max()) + 1
    inc_rates, inc_pooled = _in_stock_rates(env_tr, p_tr, incumbent, tune_key, train[1],
                                            warmup_days, group, num_groups)
    service_target = float(min(inc_pooled + s.service_margin, 1.0))
    targets = np.minimum(inc_rates + s.service_margin, 1.0)

    task = alignment_task(d_seen, p_tr, values, train, s.safety_days_expert, targets)
    pretrained = make_foundation_agent(stage.result.model, values, alpha=lc.alpha,
                                       window=lc.window)
    trained, seconds, histories = {}, {}, {}
    pretrained, chosen = choose_play_mode(pretrained, env_tr, p_tr, tune_key, train[1],
                                          warmup_days, s.play_mode, group=group,
                                          targets=targets)
    play_modes = {"pretrained": chosen}
    for i, name in enumerate(algorithms):
        algorithm, from_pretrained = ALGORITHMS[name]
        agent = pretrained.playing("greedy")
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
        agent, play_modes[name] = choose_play_mode(out.agent, env_tr, p_tr, tune_key,
                                                   train[1], warmup_days, s.play_mode,
                                                   group=group, targets=targets)
        trained[POLICY_NAMES[name]] = agent
        seconds[POLICY_NAMES[name]] = time.perf_counter() - t0
    return Aligned(stage=stage, incumbent=incumbent, pretrained=pretrained, trained=trained,
                   train_seconds=seconds, histories=histories, play_modes=play_modes,
                   train_rows=int(seen.size), service_target=service_target,
                   held_out=d_held, held_train=(env_ht, p_ht),
                   service_targets=_targets_record(targets, inc_rates, s.service_margin))


def _targets_record(targets, inc_rates, margin: float) -> dict:
    return {"by_category_index": [float(x) for x in targets],
            "incumbent_in_stock": [float(x) for x in inc_rates],
            "source": f"per category: the incumbent rule's in-stock rate on the category's "
                      f"alignment rows over the training period + {margin:g}, capped at 1"}


def evaluate_stage(
    aligned: Aligned,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    *,
    preset: str = "small",
    warmup_days: int = 28,
) -> tuple[list[HeuristicResult], dict[str, object]]:
    """Every policy on the held-out rows over ``test``: the fielded baselines (the
    incumbent and the per-row baselines tuned on ``train``; see
    :func:`~orpr_jax.evaluation.baselines.fielded_baselines`), the OR policy (hindsight
    labels of the test rows and days: a bound), the pretrained model and each aligned
    agent, each learned one playing its chosen decoding.

    Args:
        aligned: what :func:`align_stage` trained (with the same ``key``).
        train: ``(start, num_days)`` of the tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: the PRNG key given to :func:`align_stage`.
        preset: foundation model size (the pretrained row's name).
        warmup_days: leading days excluded from the metrics.

    Returns:
        ``(results, policies)``: metrics in table order, and the policies by result name.
    """
    _, label_key, tune_key, eval_key = jax.random.split(key, 4)
    lc = aligned.stage.label_config
    d_held = aligned.held_out
    env_ht, p_ht = aligned.held_train
    env_te, p_te = env_from_data(d_held, start=test[0], num_days=test[1])
    results: list[HeuristicResult] = []
    policies: dict[str, object] = {}

    def run(name, policy, seconds=0.0):
        results.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days,
                                 seconds))
        policies[name] = policy

    base_results, base_policies = fielded_baselines(
        d_held, (env_ht, p_ht), train, (env_te, p_te), test, tune_key, eval_key, warmup_days,
        lc.window, incumbent=aligned.incumbent)
    results.extend(base_results)
    policies.update(base_policies)
    run("OR policy (hindsight labels, the teacher)",
        label_policy(label_decisions(env_te, p_te, label_key, lc), lc.window))
    run(f"pretrained ({preset})", aligned.pretrained)
    for name, agent in aligned.trained.items():
        run(name, agent, aligned.train_seconds[name])
    return results, policies


def align_and_compare(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    preset: str = "small",
    warmup_days: int = 28,
    **align_options,
) -> AlignReport:
    """:func:`align_stage` then :func:`evaluate_stage`: ORPR and the alternatives, every
    policy measured on held-out rows and days.

    Args:
        data, train, key, run_dir, preset, warmup_days: as in :func:`align_stage`.
        test: ``(start, num_days)`` of the evaluation period.
        **align_options: the other keywords of :func:`align_stage`.

    Returns:
        An :class:`AlignReport`.

    Raises:
        ValueError: for an unknown algorithm name.
    """
    t_start = time.perf_counter()
    aligned = align_stage(data, train, key, run_dir, preset=preset, warmup_days=warmup_days,
                          **align_options)
    results, policies = evaluate_stage(aligned, train, test, key, preset=preset,
                                       warmup_days=warmup_days)
    return AlignReport(results=results, histories=aligned.histories, policies=policies,
                       held_out=aligned.held_out,
                       train_rows=aligned.train_rows,
                       held_out_rows=int(aligned.stage.held.size),
                       service_target=aligned.service_target,
                       seconds=time.perf_counter() - t_start, play_modes=aligned.play_modes,
                       service_targets=aligned.service_targets)
