"""A simulated field test: a new policy on treated rows against the incumbent on control
rows, analysed by difference-in-differences and propensity-score matching.

The ORPR paper validates its policy in a field experiment: a set of SKU x warehouse rows
switches to the new policy while the others stay on the incumbent rule, and the effect
on the field metrics (turnover days, in-stock rate, holding cost) is the
difference-in-differences (DiD) of treated against control rows before and after the
switch. :func:`run_field_test` replays that design in the simulator, on held-out rows
only (it refuses rows listed in its required ``train_row_ids``):

1. one simulation of ``warmup_days + pre_days + post_days`` days in which every row plays
   the incumbent until the switch day and the treated rows play the new policy from then
   on (:class:`Mixed`, a per-row switch inside one ``rollout``);
2. per-row, per-period (weekly by default) panels of the field metrics
   (:func:`field_panels`), costs per row-day (:data:`UNITS`);
3. per metric: the two-way fixed-effects DiD with row-clustered standard errors and a
   pre-trend check (:func:`did_estimate`), and a propensity-score matched ATT on the
   pre-to-post change (:func:`propensity_matched_effect`); turnover days, a ratio, is
   instead one ratio of sums (on-hand over sales) per treatment x phase cell, so rows
   without sales are not dropped, with delta-method row-clustered standard errors
   (:func:`ratio_did_estimate`, :func:`matched_ratio_effect`);
4. a report table (:func:`field_test_table`, :func:`field_test_markdown`).

Treatment is assigned at random (``treatment="random"``), or the way a manager would
pick rows (``treatment="rule"``): preferentially the rows with the highest pre-period
turnover days. The second design is selected on a (noisy) pre-period outcome, so the
plain DiD suffers from mean reversion; the pre-trend check and the match on pre-period
covariates are the diagnostics and the remedy for that.

The estimators are plain NumPy/SciPy on host arrays and know nothing of the simulator.

Modules: :mod:`.trial` (assignment, simulation, panels, the per-metric analysis),
:mod:`._checks` (its input checks), :mod:`.did` (difference-in-differences, standard
errors, pre-trend check), :mod:`.ratio` (the same for a ratio of sums),
:mod:`.matching` (propensity-score matching) and :mod:`.markdown` (the write-up).
The package imports ``sim`` and ``data`` only (never ``train``, ``labels``,
``pipeline`` or ``studies``).

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory management, arXiv 2512.19001
        (the field experiment and its DiD analysis).
    Bertrand, M., Duflo, E., Mullainathan, S. (2004). How much should we trust
        differences-in-differences estimates? QJE 119(1), 249-275.
    Cameron, A. C., Miller, D. L. (2015). A practitioner's guide to cluster-robust
        inference. Journal of Human Resources 50(2), 317-372.
    Abadie, A., Imbens, G. W. (2006). Large sample properties of matching estimators for
        average treatment effects. Econometrica 74(1), 235-267.
    Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when
        estimating differences in means and differences in proportions in observational
        studies. Pharmaceutical Statistics 10(2), 150-161.
"""

from orpr_jax.evaluation.field_test.did import DiDResult, did_estimate
from orpr_jax.evaluation.field_test.markdown import field_test_markdown, field_test_table
from orpr_jax.evaluation.field_test.matching import MatchedResult, propensity_matched_effect
from orpr_jax.evaluation.field_test.ratio import matched_ratio_effect, ratio_did_estimate
from orpr_jax.evaluation.field_test.trial import (
    COVARIATES,
    METRICS,
    UNITS,
    FieldTestResult,
    MetricResult,
    Mixed,
    field_panels,
    run_field_test,
)

__all__ = [
    "COVARIATES",
    "METRICS",
    "UNITS",
    "DiDResult",
    "FieldTestResult",
    "MatchedResult",
    "MetricResult",
    "Mixed",
    "did_estimate",
    "field_panels",
    "field_test_markdown",
    "field_test_table",
    "matched_ratio_effect",
    "propensity_matched_effect",
    "ratio_did_estimate",
    "run_field_test",
]
