"""The report of an ``orpr run``: comparison table with confidence intervals over seeds,
learning curves, example trajectories, per-category and promotion-window breakdowns, and
the simulated field test, all on the held-out rows over the test period.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from orpr_jax.data.dataset import env_from_data
from orpr_jax.evaluation.field_test import field_test_markdown, field_test_table, run_field_test
from orpr_jax.evaluation.report import (
    comparison_markdown,
    comparison_table,
    per_category_metrics,
    promotion_window_metrics,
    trajectory_series,
    write_report,
)
from orpr_jax.sim.rollout import rollout

#: Policies shown in the trajectory and breakdown figures (by result-name prefix).
_FIGURE_POLICIES = ("incumbent", "base-stock", "pretrained", "ORPR")


def _pick(policies: dict, prefixes=_FIGURE_POLICIES) -> dict:
    out = {}
    for prefix in prefixes:
        for name, policy in policies.items():
            if name.lower().startswith(prefix.lower()):
                out[name] = policy
                break
    return out


def write_run_report(rep, results: dict, config, data, test: tuple[int, int], out: Path, *,
                     warmup_days: int = 28, log=print) -> dict:
    """Computes the breakdowns and the field test of the first seed's policies and writes
    ``out/report.md`` (+ PNGs) and ``out/summary.md``.

    Args:
        rep: the first seed's :class:`~orpr_jax.pipeline.align.AlignReport`.
        results: the run's results so far (``by_seed`` metrics, ``histories``).
        config: the run's :class:`~orpr_jax.pipeline.RunConfig`.
        data: the whole data set; the field test runs on ``rep.held_out`` over the test
            period (rows and days unseen by every policy), with the other rows passed as
            ``train_row_ids`` so it can refuse them.
        test: ``(start, num_days)`` of the test period.
        out: run folder.
        warmup_days: leading test days excluded from the breakdowns.
        log: progress messages.

    Returns:
        The report's extra results (field-test rows, breakdowns) for ``results.json``.
    """
    by_seed = {f"seed {k}": [{"name": n, "metrics": m} for n, m in seed.items()]
               for k, seed in enumerate(results["by_seed"])}
    rows = comparison_table(by_seed, baseline="incumbent")
    (out / "summary.md").write_text(comparison_markdown(rows) + "\n")

    held = rep.held_out
    env_te, p_te = env_from_data(held, start=test[0], num_days=test[1])
    key = jax.random.key(config.seed)
    shown = _pick(rep.policies)
    categories, promotions, series = {}, {}, {}
    cat_index = held.category_index()
    names = held.categories
    promo = held.promo[test[0]: test[0] + test[1]]
    example_rows = list(np.argsort(-held.demand[test[0]: sum(test)].mean(axis=0))[:3])
    for name, policy in shown.items():
        _, outcomes, _ = rollout(env_te, p_te, policy, key, test[1])
        outcomes = jax.tree.map(np.asarray, outcomes)
        categories[name] = per_category_metrics(outcomes, cat_index, names,
                                                warmup_days=warmup_days)
        promotions[name] = promotion_window_metrics(outcomes, promo, warmup_days=warmup_days)
        series[name] = trajectory_series(outcomes, example_rows)
    days = np.arange(test[0], test[0] + test[1])
    log(f"breakdowns of {len(shown)} policies on {held.num_rows} held-out rows")

    field_md, field_rows = None, None
    orpr = [p for n, p in rep.policies.items() if n.startswith("ORPR")]
    incumbent = [p for n, p in rep.policies.items() if n.startswith("incumbent")]
    if config.field_test and orpr and incumbent:
        period = 7
        span = test[1] - warmup_days
        pre = max(2 * period, (span // 2) // period * period)
        post = max(period, (span - pre) // period * period)
        train_ids = np.setdiff1d(data.rows["row_id"].to_numpy(), held.rows["row_id"].to_numpy())
        field = run_field_test(held, orpr[0], incumbent[0], key, train_row_ids=train_ids,
                               treatment=config.treatment, pre_days=pre, post_days=post,
                               start=test[0], warmup_days=warmup_days, seed=config.seed)
        field_rows = field_test_table(field)
        field_md = field_test_markdown(field_rows)
        log(f"field test: {int(np.sum(field.treated))} treated of {held.num_rows} held-out rows, "
            f"{pre} pre and {post} post days")

    notes = [
        f"data: {results.get('source', config.data or 'jd_synthetic')}; "
        f"{rep.held_out_rows} held-out rows evaluated over test days "
        f"{test[0]}..{sum(test) - 1} (first {warmup_days} days are warm-up)",
        f"alignment on {rep.train_rows} training rows; in-stock targets of the Lagrange "
        f"constraints per category (the incumbent's in-stock rate on the category's training "
        f"rows and period plus the margin; pooled {rep.service_target:.3f})",
        f"seeds: {config.seeds} (confidence intervals are 95% t-intervals over seeds"
        f"{'; one seed, so none shown' if config.seeds == 1 else ''})",
        f"preset {config.preset}: model {config.model}, {config.pretrain_steps} pretraining "
        f"steps, {config.num_updates} alignment updates of {config.num_steps} days",
    ]
    if rep.play_modes:
        chosen = ", ".join(f"{k} plays {v['mode']}" for k, v in rep.play_modes.items())
        notes.append(f"decoding of every learned policy ({config.play_mode}; 'auto' picks, per "
                     f"policy, the cheapest of argmax, expected inventory days and the 0.7, "
                     f"0.8 and 0.9 quantiles on the training rows and period): {chosen}")
    path = write_report(
        out, title="ORPR run report", comparison_rows=rows, histories=results["histories"],
        trajectories=(days, series, "example held-out rows (highest demand)"),
        categories=categories, promotions=promotions, field_test_markdown=field_md,
        notes=notes)
    log(f"wrote {path}")
    return {"comparison": rows, "field_test": field_rows,
            "categories": json.loads(json.dumps(categories, default=float)),
            "promotions": json.loads(json.dumps(promotions, default=float))}
