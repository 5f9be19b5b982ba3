"""The seed-aggregated comparison of a run: per policy, the mean over seeds and a 95%
t-interval of each metric, and the change of total cost against a baseline."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = ["REPORT_METRICS", "comparison_table", "policy_family", "t_interval"]

#: (metric key, column title, format, better) of the comparison table, in display order.
#: ``better`` is ``"lower"`` or ``"higher"`` (turnover days: lower at equal service).
REPORT_METRICS = (
    ("total_cost", "total cost", "{:,.0f}", "lower"),
    ("holding_cost", "holding cost", "{:,.0f}", "lower"),
    ("lost_units", "lost units", "{:,.0f}", "lower"),
    ("lost_sales_cost", "lost-sales cost", "{:,.0f}", "lower"),
    ("turnover_days", "turnover days", "{:.2f}", "lower"),
    ("in_stock_rate", "in-stock", "{:.2%}", "higher"),
    ("fill_rate", "fill rate", "{:.2%}", "higher"),
)

_TUNED_SUFFIX = re.compile(r"\s*\([^()]*\d[^()]*\)\s*$")


def policy_family(name: str) -> str:
    """Default grouping key of :func:`comparison_table`: ``name`` without a trailing
    parenthesis that holds a number.

    Tuned policies carry their tuned value in their name (``"incumbent rule (L + R + 3
    days)"``), which may differ from seed to seed; without this they would not pool.
    Descriptive parentheses stay (``"base-stock (tuned per row)"``).
    """
    return _TUNED_SUFFIX.sub("", name)


def _name_and_metrics(entry) -> tuple[str, Mapping]:
    """``(name, metrics)`` of a result: ``{"name", "metrics"}`` (a ``HeuristicResult``
    through ``dataclasses.asdict``), a flat ``{"name", **metrics}`` or a ``HeuristicResult``."""
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return entry.name, entry.metrics
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ValueError(f"a result must be a mapping with a 'name' key; got {entry!r}")
    if "metrics" in entry:
        return entry["name"], entry["metrics"]
    return entry["name"], {k: v for k, v in entry.items() if k != "name"}


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None]:
    """Mean and half-width of the Student-t confidence interval of the mean.

    ``half = t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample
    standard deviation (``ddof=1``).

    Args:
        values: ``n >= 1`` observations (one per seed).
        confidence: coverage in (0, 1).

    Returns:
        ``(mean, half_width)``; ``half_width`` is None for ``n == 1`` (no interval).

    Raises:
        ValueError: for no values or a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    x = np.asarray(values, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-d sequence of values; got shape {x.shape}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, None
    t = float(stats.t.ppf(0.5 + confidence / 2.0, df=x.size - 1))
    return mean, t * float(x.std(ddof=1)) / math.sqrt(x.size)


def comparison_table(
    results_by_seed: Mapping[str, Sequence[dict]],
    *,
    baseline: str | None = "incumbent",
    metrics: Sequence[str] = tuple(m[0] for m in REPORT_METRICS),
    confidence: float = 0.95,
    group_key: Callable[[str], str] = policy_family,
) -> list[dict]:
    """Per policy, the mean over seeds and a t-interval of each metric.

    Args:
        results_by_seed: seed label -> that seed's results, each ``{"name": str,
            "metrics": {metric: float}}`` (``dataclasses.asdict`` of a
            :class:`~orpr_jax.evaluation.baselines.HeuristicResult`; the dataclass itself
            and a flat ``{"name": str, metric: float, ...}`` work too).
        baseline: case-insensitive prefix of the policy whose mean total cost the others
            are compared with (``"incumbent"`` matches ``"incumbent rule (...)"``); None
            for no comparison.
        metrics: metric keys to aggregate.
        confidence: coverage of the intervals.
        group_key: maps a result's name to its row; results of one seed with the same key
            are an error. The default strips tuned values (:func:`policy_family`).

    Returns:
        One dict per policy, in order of first appearance: ``policy`` (the group key),
        ``names`` (the distinct original names), ``seeds`` (how many seeds it has),
        ``mean`` and ``half_width`` (metric -> float; half-width None with one seed),
        ``values`` (metric -> per-seed list), ``is_baseline`` and ``cost_change_pct``
        (``100 * (total_cost - baseline) / baseline`` of the means; None without a
        baseline or when the baseline's total cost is 0).

    Raises:
        ValueError: for no seeds, a result without a metric, a policy twice in one seed,
            or a ``baseline`` prefix that matches no policy or several.
    """
    if not results_by_seed:
        raise ValueError("results_by_seed is empty")
    names: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for seed, results in results_by_seed.items():
        seen = set()
        for entry in results:
            name, m = _name_and_metrics(entry)
            key = group_key(name)
            if key in seen:
                raise ValueError(f"seed {seed!r} has policy {key!r} twice")
            seen.add(key)
            missing = [k for k in metrics if k not in m]
            if missing:
                raise ValueError(f"seed {seed!r}, policy {name!r} lacks metrics {missing}")
            if name not in names.setdefault(key, []):
                names[key].append(name)
            counts[key] = counts.get(key, 0) + 1
            per_metric = values.setdefault(key, {k: [] for k in metrics})
            for k in metrics:
                per_metric[k].append(float(m[k]))

    rows = []
    for key, per_metric in values.items():
        mean, half = {}, {}
        for k, v in per_metric.items():
            mean[k], half[k] = t_interval(v, confidence)
        rows.append({"policy": key, "names": names[key], "seeds": counts[key],
                     "mean": mean, "half_width": half,
                     "values": per_metric, "is_baseline": False, "cost_change_pct": None})

    if baseline is not None:
        prefix = baseline.lower()
        hits = [r for r in rows
                if any(n.lower().startswith(prefix) for n in [r["policy"], *r["names"]])]
        if len(hits) != 1:
            found = [r["policy"] for r in hits] if hits else [r["policy"] for r in rows]
            what = "several policies" if hits else "no policy"
            raise ValueError(f"baseline={baseline!r} matches {what}; policies: {found}")
        if "total_cost" not in metrics:
            raise ValueError("a baseline comparison needs 'total_cost' in metrics")
        base = hits[0]
        base["is_baseline"] = True
        ref = base["mean"]["total_cost"]
        for r in rows:
            if ref != 0.0:
                r["cost_change_pct"] = 100.0 * (r["mean"]["total_cost"] - ref) / ref
    return rows
