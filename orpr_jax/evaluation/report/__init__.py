"""The paper-style report of a run: seed-aggregated comparison table, breakdowns and plots.

Everything here runs on the host after the simulation: metrics come out of ``rollout`` /
``evaluate`` as arrays, and this package turns them into tables (Markdown), PNG figures
(matplotlib, Agg canvas, no pyplot state) and one ``report.md`` that links them by
relative paths, so a run folder can be moved or browsed on GitHub as is.

* :func:`comparison_table` (:mod:`.comparison`) / :func:`comparison_markdown`
  (:mod:`.markdown`): per policy, the mean over seeds and a 95% t-interval of each metric,
  and the change of total cost against a baseline.
* :func:`per_category_metrics`, :func:`promotion_window_metrics` (:mod:`.subsets`): the
  paper's metrics over subsets of row-days of a ``[T, R]``
  :class:`~orpr_jax.sim.types.DayOutcome`.
* :func:`plot_learning_curves`, :func:`plot_trajectories`,
  :func:`plot_category_breakdown`, :func:`plot_promotion_windows` (:mod:`.plots`): one PNG
  each.
* :func:`write_report` (:mod:`.document`): all of the above in ``report.md``.

The package imports ``sim`` only (never ``train``, ``labels``, ``pipeline`` or
``studies``).
"""

from orpr_jax.evaluation.report.comparison import (
    REPORT_METRICS,
    comparison_table,
    policy_family,
    t_interval,
)
from orpr_jax.evaluation.report.document import write_report
from orpr_jax.evaluation.report.markdown import BREAKDOWN_COLUMNS, comparison_markdown
from orpr_jax.evaluation.report.plots import (
    plot_category_breakdown,
    plot_learning_curves,
    plot_promotion_windows,
    plot_trajectories,
)
from orpr_jax.evaluation.report.subsets import (
    per_category_metrics,
    promotion_window_metrics,
    trajectory_series,
)

__all__ = [
    "BREAKDOWN_COLUMNS",
    "REPORT_METRICS",
    "comparison_markdown",
    "comparison_table",
    "per_category_metrics",
    "plot_category_breakdown",
    "plot_learning_curves",
    "plot_promotion_windows",
    "plot_trajectories",
    "policy_family",
    "promotion_window_metrics",
    "t_interval",
    "trajectory_series",
    "write_report",
]
