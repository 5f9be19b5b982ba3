"""The OR policy (labels played in the simulator) beside tuned base-stock and the
incumbent rule, on a train/test split of a data set."""

from __future__ import annotations

import time

import jax

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.baselines import (
    HeuristicResult,
    evaluated,
    tune_base_stock,
    tune_incumbent,
)
from orpr_jax.labels.labeller import LabelConfig, LabelSet, label_decisions
from orpr_jax.policies import BaseStock, label_policy

def compare_or_policy(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    label_configs: dict[str, LabelConfig] | None = None,
    *,
    warmup_days: int = 28,
    history_length: int = 28,
    window: int = 28,
) -> tuple[list[HeuristicResult], dict[str, LabelSet]]:
    """OR policy vs per-row tuned base-stock vs the tuned incumbent rule on ``test``.

    The OR policy plays the OR model's labels for the test period (hindsight replays, so
    it is the teacher the foundation model learns from, not a deployable policy). The
    base-stock levels (per row) and the incumbent rule's safety days (one value) are tuned
    on ``train``.

    Args:
        data: the data set.
        train: ``(start, num_days)`` of the tuning period.
        test: ``(start, num_days)`` of the evaluation period.
        key: PRNG key.
        label_configs: OR-model variants by name (default: ``{"OR policy":
            LabelConfig()}``).
        warmup_days: leading days excluded from the metrics.
        history_length: sales window of the observation.
        window: forecast window of the incumbent rule.

    Returns:
        ``(results, labels)``: one :class:`HeuristicResult` per policy and the test-period
        label set of each OR variant.
    """
    label_configs = label_configs or {"OR policy": LabelConfig()}
    env_tr, p_tr = env_from_data(data, start=train[0], num_days=train[1],
                                 history_length=history_length)
    env_te, p_te = env_from_data(data, start=test[0], num_days=test[1],
                                 history_length=history_length)
    tune_key, label_key, eval_key = jax.random.split(key, 3)
    results = []

    def run(name, policy, seconds):
        results.append(evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days,
                                 seconds))

    t0 = time.perf_counter()
    best_level = tune_base_stock(data, env_tr, p_tr, train, tune_key, warmup_days)
    run("base-stock (tuned per row)", BaseStock(best_level), time.perf_counter() - t0)

    t0 = time.perf_counter()
    incumbent = tune_incumbent(env_tr, p_tr, train, tune_key, warmup_days, window)
    run(f"incumbent rule (L + R + {float(incumbent.safety_days):g} days)", incumbent,
        time.perf_counter() - t0)

    all_labels = {}
    for name, lc in label_configs.items():
        t0 = time.perf_counter()
        labels = label_decisions(env_te, p_te, label_key, lc)
        run(name, label_policy(labels, lc.window), time.perf_counter() - t0)
        all_labels[name] = labels
    return results, all_labels
