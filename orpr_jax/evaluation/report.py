"""The paper-style report of a run: seed-aggregated comparison table, breakdowns and plots.

Everything here runs on the host after the simulation: metrics come out of ``rollout`` /
``evaluate`` as arrays, and this module turns them into tables (Markdown), PNG figures
(matplotlib, Agg canvas, no pyplot state) and one ``report.md`` that links them by
relative paths, so a run folder can be moved or browsed on GitHub as is.

* :func:`comparison_table` / :func:`comparison_markdown`: per policy, the mean over seeds
  and a 95% t-interval of each metric, and the change of total cost against a baseline.
* :func:`per_category_metrics`, :func:`promotion_window_metrics`: the paper's metrics over
  subsets of row-days of a ``[T, R]`` :class:`~orpr_jax.sim.types.DayOutcome`.
* :func:`plot_learning_curves`, :func:`plot_trajectories`,
  :func:`plot_category_breakdown`, :func:`plot_promotion_windows`: one PNG each.
* :func:`write_report`: all of the above in ``report.md``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from orpr_jax.sim.types import DayOutcome

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

#: (metric key, column title, format) of the per-category and promotion-window tables.
BREAKDOWN_COLUMNS = (
    ("cost_per_row_day", "cost/row-day", "{:.3f}"),
    ("total_cost", "total cost", "{:,.0f}"),
    ("turnover_days", "turnover days", "{:.2f}"),
    ("in_stock_rate", "in-stock", "{:.2%}"),
    ("fill_rate", "fill rate", "{:.2%}"),
)

#: Axis labels of known metric keys (others: the key with spaces).
_LABELS = {
    "cost_per_row_day": "cost per row-day",
    "lagrange_mean": "mean Lagrange multiplier",
    "kl_ref": "KL to pretrained",
    "in_stock_rate": "in-stock rate",
    "fill_rate": "fill rate",
}

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


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _cell(fmt: str, mean: float, half: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = fmt.format(mean)
    return text if half is None else f"{text} ± {fmt.format(half)}"


def comparison_markdown(rows: Sequence[dict], *, confidence: float = 0.95) -> str:
    """The rows of :func:`comparison_table` as a GitHub Markdown table.

    Cells read ``mean ± half-width`` (only the mean for a single seed); the last column is
    the change of mean total cost against the baseline row.

    Args:
        rows: output of :func:`comparison_table`.
        confidence: the coverage the rows were computed with (for the caption line).

    Returns:
        The table, with one caption line under it.
    """
    shown = [c for c in REPORT_METRICS if rows and c[0] in rows[0]["mean"]]
    head = ("| policy | seeds | " + " | ".join(c[1] for c in shown)
            + " | Δ total cost |")
    sep = "|---|---:|" + "---:|" * (len(shown) + 1)
    body = []
    for r in rows:
        cells = [_cell(fmt, r["mean"][k], r["half_width"][k]) for k, _, fmt, _ in shown]
        if r["is_baseline"]:
            change = "baseline"
        elif r["cost_change_pct"] is None:
            change = "n/a"
        else:
            change = f"{r['cost_change_pct']:+.1f}%"
        body.append(f"| {_md_escape(r['policy'])} | {r['seeds']} | " + " | ".join(cells)
                    + f" | {change} |")
    seeds = sorted({r["seeds"] for r in rows}) or [0]
    over = (f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1
            else f"{seeds[0]} to {seeds[-1]} seeds (column seeds)")
    caption = (f"Mean over {over}; ± is the half-width of the {confidence:.0%} Student-t "
               "interval of the mean (none with one seed).")
    return "\n".join([head, sep, *body, "", caption])


# ---------------------------------------------------------------------------------------
# Breakdowns of a [T, R] trajectory.


def _leaves(outcomes: DayOutcome, warmup_days: int) -> dict[str, np.ndarray]:
    demand = np.asarray(outcomes.demand)
    if demand.ndim != 2:
        raise ValueError(f"outcomes must have [T, R] leaves; demand has shape {demand.shape}")
    num_days = demand.shape[0]
    if isinstance(warmup_days, bool) or not isinstance(warmup_days, int) or not (
            0 <= warmup_days < num_days):
        raise ValueError(f"warmup_days={warmup_days!r} must be an int in [0, {num_days})")
    fields = ("demand", "sales", "filled", "unmet", "on_hand_end", "in_stock",
              "holding_cost", "penalty_cost", "cost")
    return {f: np.asarray(getattr(outcomes, f), np.float64)[warmup_days:] for f in fields}


def _subset_metrics(x: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """The paper's metrics over the row-days where ``mask`` is True."""
    s = {k: float(v[mask].sum()) for k, v in x.items()}
    row_days = int(mask.sum())
    if s["sales"] > 0:
        turnover = s["on_hand_end"] / s["sales"]
    else:  # as orpr_jax.sim.metrics: stock that never sells turns over never
        turnover = math.inf if s["on_hand_end"] > 0 else 0.0
    return {
        "total_cost": s["cost"],
        "cost_per_row_day": s["cost"] / row_days if row_days else math.nan,
        "holding_cost": s["holding_cost"],
        "lost_sales_cost": s["penalty_cost"],
        "lost_units": s["unmet"],
        "turnover_days": turnover,
        "in_stock_rate": s["in_stock"] / row_days if row_days else math.nan,
        "fill_rate": s["filled"] / s["demand"] if s["demand"] > 0 else 1.0,
        "demand": s["demand"],
        "sales": s["sales"],
        "row_days": float(row_days),
    }


def per_category_metrics(
    outcomes: DayOutcome,
    category,
    names: Sequence[str] | Mapping[int, str] | None = None,
    *,
    warmup_days: int = 0,
) -> dict:
    """The paper's metrics of each category's rows over days ``warmup_days..T``.

    Args:
        outcomes: ``[T, R]`` leaves, as returned by :func:`orpr_jax.rollout`.
        category: ``[R]`` int category of each row (``params.category``).
        names: category index -> display name (a sequence indexed by category or a
            mapping); keys of the result are the indices when None.
        warmup_days: leading days left out (as ``evaluate``'s ``warmup_days``).

    Returns:
        Category (index or name, in ascending index order) -> metrics: ``total_cost``,
        ``cost_per_row_day``, ``holding_cost``, ``lost_sales_cost``, ``lost_units``,
        ``turnover_days`` (sum of end-of-day stock / sum of sales), ``in_stock_rate``
        (mean of ``in_stock``), ``fill_rate`` (filled / demand, 1 without demand),
        ``demand``, ``sales``, ``row_days``; all Python floats.

    Raises:
        ValueError: for leaves that are not ``[T, R]``, a ``category`` that is not ``[R]``,
            a bad ``warmup_days`` or a category without a name.
    """
    x = _leaves(outcomes, warmup_days)
    num_rows = x["demand"].shape[1]
    cat = np.asarray(category)
    if cat.shape != (num_rows,):
        raise ValueError(f"category must have shape ({num_rows},); got {cat.shape}")
    out = {}
    for c in np.unique(cat):
        c = int(c)
        if names is None:
            label = c
        else:
            try:
                label = names[c]
            except (KeyError, IndexError):
                raise ValueError(f"category {c} has no entry in names") from None
        mask = np.broadcast_to(cat == c, x["demand"].shape)
        out[label] = _subset_metrics(x, mask)
    return out


def promotion_window_metrics(outcomes: DayOutcome, promo, *, warmup_days: int = 0) -> dict:
    """The paper's metrics on promotion row-days and on the other row-days.

    Args:
        outcomes: ``[T, R]`` leaves, as returned by :func:`orpr_jax.rollout`.
        promo: ``[T, R]`` promotion flags (> 0 on promotion days) of the same days; for a
            simulation, ``params.promo_calendar`` taken at ``arange(T) % len(calendar)``.
        warmup_days: leading days left out.

    Returns:
        ``{"promo": metrics, "regular": metrics}`` with the keys of
        :func:`per_category_metrics`; an empty window has ``row_days`` 0, NaN in-stock
        rate and cost per row-day, fill rate 1.

    Raises:
        ValueError: for leaves that are not ``[T, R]``, a ``promo`` of another shape or a
            bad ``warmup_days``.
    """
    x = _leaves(outcomes, warmup_days)
    flags = np.asarray(promo)
    full_shape = (x["demand"].shape[0] + warmup_days, x["demand"].shape[1])
    if flags.shape != full_shape:
        raise ValueError(f"promo must have shape {full_shape} (as the outcomes); "
                         f"got {flags.shape}")
    on = flags[warmup_days:] > 0
    return {"promo": _subset_metrics(x, on), "regular": _subset_metrics(x, ~on)}


def trajectory_series(outcomes: DayOutcome, rows: Sequence[int]) -> dict[str, np.ndarray]:
    """``{"on_hand", "demand", "orders"}``, each ``[T, len(rows)]``, of a few rows of a
    ``[T, R]`` trajectory: the per-policy input of :func:`plot_trajectories`."""
    idx = np.asarray(rows, np.int64)
    return {"on_hand": np.asarray(outcomes.on_hand_end)[:, idx],
            "demand": np.asarray(outcomes.demand)[:, idx],
            "orders": np.asarray(outcomes.order)[:, idx]}


# ---------------------------------------------------------------------------------------
# Plots: each builds a Figure on an Agg canvas (no pyplot, no global backend) and saves it.


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _series(history: Sequence[dict], metric: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, h in enumerate(history):
        v = h.get(metric)
        if v is None:
            continue
        xs.append(float(h.get("update", i)))
        ys.append(float(v))
    return np.asarray(xs), np.asarray(ys)


def plot_learning_curves(
    histories: Mapping[str, Sequence[dict]],
    path,
    metric: str = "cost_per_row_day",
    *,
    extra: Sequence[str] = ("lagrange_mean", "kl_ref"),
) -> Path:
    """Training curves: ``metric`` per update, one line per algorithm.

    Args:
        histories: algorithm -> per-update dicts (``AlignReport.histories``); the x axis is
            their ``"update"`` (the list index where absent).
        path: PNG to write.
        metric: the history key of the main panel.
        extra: further keys, one panel each, drawn when some history has them.

    Returns:
        ``path``.

    Raises:
        ValueError: when no history has ``metric``.
    """
    if not any(_series(h, metric)[0].size for h in histories.values()):
        raise ValueError(f"no history has {metric!r}")
    panels = [metric] + [k for k in extra
                         if any(_series(h, k)[0].size for h in histories.values())]
    fig = _figure(6.5, 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, panels):
        for name, history in histories.items():
            xs, ys = _series(history, key)
            if xs.size:
                ax.plot(xs, ys, marker="." if xs.size < 30 else None, label=name)
        ax.set_ylabel(_LABELS.get(key, key.replace("_", " ")))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[-1].set_xlabel("update")
    return _save(fig, path)


def plot_trajectories(
    days,
    series: Mapping[str, Mapping[str, np.ndarray]],
    path,
    title: str = "Example inventory trajectories",
    row_labels: Sequence[str] | None = None,
) -> Path:
    """On-hand stock, demand and orders over time, one panel per policy (and row).

    Args:
        days: ``[T]`` day indices.
        series: policy -> ``{"on_hand", "demand", "orders"}``, each ``[T]`` (one row) or
            ``[T, K]`` (K rows, one column of panels each; see :func:`trajectory_series`).
        path: PNG to write.
        title: figure title.
        row_labels: K panel titles of the rows (``"example 1"``, ... by default).

    Returns:
        ``path``.

    Raises:
        ValueError: for no policies, a missing key, shapes that disagree or a
            ``row_labels`` of another length.
    """
    if not series:
        raise ValueError("series is empty")
    t = np.asarray(days)
    data = {}
    for policy, s in series.items():
        missing = {"on_hand", "demand", "orders"} - set(s)
        if missing:
            raise ValueError(f"series[{policy!r}] lacks {sorted(missing)}")
        arrays = {k: np.asarray(s[k], np.float64) for k in ("on_hand", "demand", "orders")}
        arrays = {k: v[:, None] if v.ndim == 1 else v for k, v in arrays.items()}
        for k, v in arrays.items():
            if v.ndim != 2 or v.shape[0] != t.shape[0]:
                raise ValueError(f"series[{policy!r}][{k!r}] has shape {v.shape}; "
                                 f"need [{t.shape[0]}] or [{t.shape[0]}, K]")
        data[policy] = arrays
    widths = {v["on_hand"].shape[1] for v in data.values()} | {
        a.shape[1] for v in data.values() for a in v.values()}
    if len(widths) != 1:
        raise ValueError(f"every series needs the same number of rows; got {sorted(widths)}")
    num_cols = widths.pop()
    labels = [f"example {j + 1}" for j in range(num_cols)] if row_labels is None else list(
        row_labels)
    if len(labels) != num_cols:
        raise ValueError(f"row_labels has {len(labels)} entries for {num_cols} rows")
    fig = _figure(4.2 * num_cols + 1.0, 2.2 * len(data) + 0.6)
    axes = fig.subplots(len(data), num_cols, sharex=True, squeeze=False)
    for i, (policy, arrays) in enumerate(data.items()):
        for j in range(num_cols):
            ax = axes[i, j]
            ax.bar(t, arrays["orders"][:, j], width=1.0, color="tab:green", alpha=0.4,
                   label="orders")
            ax.step(t, arrays["on_hand"][:, j], where="post", color="tab:blue",
                    label="on hand (end of day)")
            ax.plot(t, arrays["demand"][:, j], color="tab:red", lw=0.8, label="demand")
            ax.set_title(policy if num_cols == 1 else f"{policy}, {labels[j]}", fontsize="small")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel("units")
    for ax in axes[-1]:
        ax.set_xlabel("day")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
               ncols=3, fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def _grouped_bars(ax, groups: Sequence[str], bars: Mapping[str, Sequence[float]]) -> None:
    x = np.arange(len(groups), dtype=np.float64)
    width = 0.8 / max(len(bars), 1)
    for i, (label, heights) in enumerate(bars.items()):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(x, [str(g) for g in groups], rotation=30 if len(groups) > 6 else 0,
                  ha="right" if len(groups) > 6 else "center", fontsize="small")
    ax.grid(axis="y", alpha=0.3)


def plot_category_breakdown(
    per_category: Mapping[str, Mapping],
    path,
    metric_label: str,
) -> Path:
    """Grouped bars: one group per category, one bar per policy.

    Args:
        per_category: policy -> category -> value (a category a policy lacks is no bar).
        path: PNG to write.
        metric_label: y-axis label.

    Returns:
        ``path``.

    Raises:
        ValueError: for no policies.
    """
    if not per_category:
        raise ValueError("per_category is empty")
    cats: list = []
    for values in per_category.values():
        cats += [c for c in values if c not in cats]
    bars = {policy: [float(values.get(c, math.nan)) for c in cats]
            for policy, values in per_category.items()}
    fig = _figure(max(5.0, 0.35 * len(cats) * len(bars) + 2.0), 3.6)
    ax = fig.subplots()
    _grouped_bars(ax, cats, bars)
    ax.set_xlabel("category")
    ax.set_ylabel(metric_label)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_promotion_windows(
    windows: Mapping[str, Mapping[str, Mapping[str, float]]],
    path,
    metrics: Sequence[str] = ("in_stock_rate", "fill_rate"),
) -> Path:
    """In-stock and fill rate inside vs outside promotion windows, per policy (bars).

    Args:
        windows: policy -> :func:`promotion_window_metrics` output.
        path: PNG to write.
        metrics: one panel each.

    Returns:
        ``path``.

    Raises:
        ValueError: for no policies or a policy without both windows.
    """
    if not windows:
        raise ValueError("windows is empty")
    for policy, w in windows.items():
        if not {"promo", "regular"} <= set(w):
            raise ValueError(f"windows[{policy!r}] needs 'promo' and 'regular'")
    policies = list(windows)
    fig = _figure(max(5.0, 1.2 * len(policies) + 2.0), 2.8 * len(metrics))
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, metrics):
        bars = {label: [float(windows[p][window].get(key, math.nan)) for p in policies]
                for window, label in (("promo", "promotion days"),
                                      ("regular", "regular days"))}
        _grouped_bars(ax, policies, bars)
        ax.set_ylabel(_LABELS.get(key, key.replace("_", " ")))
        ax.set_ylim(0.0, 1.05)
    axes[0].legend(fontsize="small", loc="lower right")
    return _save(fig, path)


# ---------------------------------------------------------------------------------------
# report.md


_HOW_TO_READ = (
    "Each cell is the mean over seeds ± the half-width of a 95% Student-t interval of "
    "that mean (no interval with one seed); overlapping intervals mean the seeds do not "
    "separate the two policies. Δ total cost is the change of mean total cost against the "
    "baseline row (negative is cheaper).",
    "**Total cost** is holding + lost-sales (+ ordering and purchase, where priced) cost "
    "summed over rows and evaluated days; lower is better.",
    "**Holding cost** is the cost of end-of-day stock on hand; lower is better on its own, "
    "but a policy can buy it with lost sales, so read it next to the lost-sales columns.",
    "**Lost units** and **lost-sales cost** count demand not met from stock on the day "
    "(backlog unit-days in backorder mode) and its penalty; lower is better.",
    "**Turnover days** is total end-of-day stock divided by total sales: how many days of "
    "sales the stock covers. Lower is better at equal service; a lower value bought with "
    "a lower in-stock or fill rate is not an improvement.",
    "**In-stock rate** is the share of row-days with stock available before demand; "
    "higher is better. It is the service level the ORPR constraints target per category.",
    "**Fill rate** is demand met from stock on the day divided by demand (1 with no "
    "demand); higher is better. It weights days by demand, so it falls most when stock-outs "
    "hit busy days such as promotions.",
)


def _breakdown_markdown(first_header: str, rows: Sequence[tuple[str, str, Mapping]]) -> str:
    head = (f"| {first_header} | policy | " + " | ".join(c[1] for c in BREAKDOWN_COLUMNS)
            + " |")
    sep = "|---|---|" + "---:|" * len(BREAKDOWN_COLUMNS)
    body = [f"| {_md_escape(a)} | {_md_escape(b)} | "
            + " | ".join(_cell(fmt, m.get(k, math.nan), None) for k, _, fmt in BREAKDOWN_COLUMNS)
            + " |" for a, b, m in rows]
    return "\n".join([head, sep, *body])


def write_report(
    out_dir,
    *,
    title: str,
    comparison_rows: Sequence[dict],
    histories: Mapping[str, Sequence[dict]] | None = None,
    trajectories: tuple | None = None,
    categories: Mapping[str, Mapping] | None = None,
    promotions: Mapping[str, Mapping] | None = None,
    field_test_markdown: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Writes ``out_dir/report.md`` and its PNGs (relative links, next to it).

    Args:
        out_dir: folder (created).
        title: report title.
        comparison_rows: :func:`comparison_table` output.
        histories: algorithm -> per-update dicts; adds the learning curves.
        trajectories: ``(days, series[, title[, row_labels]])``, the arguments of
            :func:`plot_trajectories`; adds the trajectory figure.
        categories: policy -> :func:`per_category_metrics` output; adds the per-category
            table and bar charts of cost per row-day and in-stock rate.
        promotions: policy -> :func:`promotion_window_metrics` output; adds the
            promotion-window table and bar chart.
        field_test_markdown: Markdown of a field test, included as its own section.
        notes: lines listed under the title (data set, seeds, settings, ...).

    Returns:
        The path of ``report.md``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", ""]
    if notes:
        md += [f"* {n}" for n in notes] + [""]
    md += ["## Summary", "", comparison_markdown(comparison_rows), "",
           "## How to read the table", ""]
    for paragraph in _HOW_TO_READ:
        md += [paragraph, ""]

    if histories:
        name = plot_learning_curves(histories, out_dir / "learning_curves.png").name
        md += ["## Learning curves", "",
               "Training-rollout cost per row-day per update (lower is better), with the "
               "mean Lagrange multiplier of the in-stock constraints and the KL to the "
               "pretrained model where the algorithm has them.", "",
               f"![learning curves]({name})", ""]

    if trajectories is not None:
        name = plot_trajectories(*trajectories[:2], out_dir / "trajectories.png",
                                 *trajectories[2:]).name
        md += ["## Example trajectories", "",
               "End-of-day stock (blue), demand (red) and orders placed (green bars) of "
               "example rows under each policy.", "", f"![trajectories]({name})", ""]

    if categories:
        cats: list = []
        for per in categories.values():
            cats += [c for c in per if c not in cats]
        rows = [(str(c), p, per[c]) for c in cats for p, per in categories.items() if c in per]
        cost = plot_category_breakdown(
            {p: {str(c): m["cost_per_row_day"] for c, m in per.items()}
             for p, per in categories.items()},
            out_dir / "category_cost.png", "cost per row-day").name
        stock = plot_category_breakdown(
            {p: {str(c): m["in_stock_rate"] for c, m in per.items()}
             for p, per in categories.items()},
            out_dir / "category_in_stock.png", "in-stock rate").name
        md += ["## Per-category breakdown", "", _breakdown_markdown("category", rows), "",
               f"![cost per row-day by category]({cost})", "",
               f"![in-stock rate by category]({stock})", ""]

    if promotions:
        rows = [(window, p, w[window]) for window in ("promo", "regular")
                for p, w in promotions.items()]
        name = plot_promotion_windows(promotions, out_dir / "promotion_windows.png").name
        md += ["## Promotion windows", "",
               "The metrics on promotion row-days and on the other row-days; a policy "
               "that does not stock up ahead of a promotion loses in-stock and fill rate "
               "inside the window.", "",
               _breakdown_markdown("window", rows), "",
               f"![promotion windows]({name})", ""]

    if field_test_markdown:
        md += ["## Field test", "", field_test_markdown.strip(), ""]

    path = out_dir / "report.md"
    path.write_text("\n".join(md))
    return path
