"""The simulation-augmented OR model: candidate replays, knapsack selection (``selection/``),
the ordering LP (``order_lp/``), the labeller (hindsight labels: a bound) and label sets,
and the deployable OR model run at decision time (``online/``). Imports ``sim``, ``data``,
``policies`` and the validation helpers of the project; never ``train``.
"""

from orpr_jax.labels.dataset import cached_labels, input_hash, load_labels, save_labels
from orpr_jax.labels.labeller import LabelConfig, LabelSet, label_decisions
from orpr_jax.labels.online import (
    OnlineConfig,
    OnlineDecision,
    OnlineORPolicy,
    make_online_policy,
    scenario_demand,
)
from orpr_jax.labels.replay import ReplayResult, replay_candidates
from orpr_jax.labels.selection import (
    Selection,
    SelectionProblem,
    make_problem,
    solve_batched_lp,
    solve_dual,
    solve_milp,
)

__all__ = [
    "LabelConfig",
    "LabelSet",
    "OnlineConfig",
    "OnlineDecision",
    "OnlineORPolicy",
    "ReplayResult",
    "Selection",
    "SelectionProblem",
    "cached_labels",
    "input_hash",
    "label_decisions",
    "load_labels",
    "make_online_policy",
    "make_problem",
    "replay_candidates",
    "save_labels",
    "scenario_demand",
    "solve_batched_lp",
    "solve_dual",
    "solve_milp",
]
