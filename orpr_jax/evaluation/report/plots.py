"""The report's figures: each builds a matplotlib Figure on an Agg canvas (no pyplot, no
global backend) and saves it as a PNG."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_category_breakdown",
    "plot_learning_curves",
    "plot_promotion_windows",
    "plot_trajectories",
]

#: Axis labels of known metric keys (others: the key with spaces).
_LABELS = {
    "cost_per_row_day": "cost per row-day",
    "lagrange_mean": "mean Lagrange multiplier",
    "kl_ref": "KL to pretrained",
    "in_stock_rate": "in-stock rate",
    "fill_rate": "fill rate",
}


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
