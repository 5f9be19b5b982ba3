"""``report.md``: the tables, the text and the figures of a run in one Markdown file,
linked by relative paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from orpr_jax.evaluation.report.markdown import (
    _HOW_TO_READ,
    _breakdown_markdown,
    comparison_markdown,
)
from orpr_jax.evaluation.report.plots import (
    plot_category_breakdown,
    plot_learning_curves,
    plot_promotion_windows,
    plot_trajectories,
)

__all__ = ["write_report"]


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
