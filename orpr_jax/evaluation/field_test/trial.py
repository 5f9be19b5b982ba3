"""The simulated trial of the field test: treatment assignment, one simulation with a
per-row switch to the new policy, the per-row, per-period panels of the field metrics,
and their analysis per metric (:mod:`~orpr_jax.evaluation.field_test.did`,
:mod:`~orpr_jax.evaluation.field_test.matching`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.evaluation.field_test._arrays import _row_mean
from orpr_jax.evaluation.field_test._checks import _check_design, _check_held_out
from orpr_jax.evaluation.field_test.did import DiDResult, did_estimate
from orpr_jax.evaluation.field_test.matching import MatchedResult, propensity_matched_effect
from orpr_jax.evaluation.field_test.ratio import matched_ratio_effect, ratio_did_estimate
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.rollout import Policy, rollout
from orpr_jax.sim.types import DayOutcome, Observation, SimParams

__all__ = [
    "COVARIATES",
    "METRICS",
    "UNITS",
    "FieldTestResult",
    "MetricResult",
    "Mixed",
    "field_panels",
    "run_field_test",
]

#: Field metrics of the per-row, per-period panels, in report order.
METRICS = ("turnover_days", "in_stock_rate", "holding_cost", "total_cost")

#: The unit of each metric's levels and effects (costs are per row-day: a period's sum
#: divided by its days, so a weekly panel's cell is the week's mean daily cost).
UNITS = {
    "turnover_days": "days (sum of on-hand / sum of sales per treatment x period cell)",
    "in_stock_rate": "share of row-days in stock",
    "holding_cost": "cost per row-day",
    "total_cost": "cost per row-day",
}

#: Row-level pre-period covariates used for the propensity score in :func:`run_field_test`.
COVARIATES = (
    "log1p_turnover_days",
    "in_stock_rate",
    "log1p_demand",
    "log1p_holding_cost",
    "lead_time_mean",
    "review_period",
)


@struct.dataclass
class Mixed:
    """Plays ``new`` on treated rows from ``switch_day`` on and ``old`` everywhere else.

    Both policies are called on the full observation with the same key, and the orders
    are selected per row, so each policy sees exactly what it would see alone; before
    ``switch_day`` the orders are those of ``old`` on every row.

    Attributes:
        treated_mask: ``[R]`` bool, True for treated rows.
        new: the new policy pytree, ``new(obs, key) -> [R]``.
        old: the incumbent policy pytree, ``old(obs, key) -> [R]``.
        switch_day: ``[]`` int32 first day (``obs.t``, days since reset) of the new policy.
    """

    treated_mask: jax.Array
    new: Any
    old: Any
    switch_day: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        q_old = self.old(obs, key)
        q_new = self.new(obs, key).astype(q_old.dtype)
        on_new = self.treated_mask & (obs.t >= self.switch_day)
        return jnp.where(on_new, q_new, q_old)


def field_panels(
    outcomes: DayOutcome, first_day: int, num_periods: int, period_days: int
) -> dict[str, np.ndarray]:
    """Per-row, per-period panels of the field metrics from a ``[T, R]`` trajectory.

    Period p covers days ``first_day + p * period_days`` to ``first_day + (p + 1) *
    period_days - 1`` of ``outcomes``. Costs are per row-day (:data:`UNITS`), whatever
    ``period_days`` is.

    Args:
        outcomes: :class:`~orpr_jax.sim.types.DayOutcome` with ``[T, R]`` leaves.
        first_day: first day of period 0 (index into T).
        num_periods: periods P.
        period_days: days per period.

    Returns:
        ``{name: [R, P] float64}``: for :data:`METRICS`, ``turnover_days`` (the row's
        sum of end-of-day stock / sum of sales, NaN for a period without sales; shown,
        not estimated on: the estimators use the sums), ``in_stock_rate`` (share of
        days in stock), ``holding_cost`` and ``total_cost`` (the period's sum / its
        days: per row-day); and ``on_hand`` and ``sales``, the period's sums of
        end-of-day stock and of units sold (turnover's numerator and denominator).
    """
    last = first_day + num_periods * period_days

    def sums(leaf):
        arr = np.asarray(leaf, np.float64)[first_day:last]
        return arr.reshape(num_periods, period_days, -1).sum(axis=1).T

    on_hand, sales = sums(outcomes.on_hand_end), sums(outcomes.sales)
    turnover = np.full(on_hand.shape, np.nan)
    np.divide(on_hand, sales, out=turnover, where=sales > 0)
    return {
        "turnover_days": turnover,
        "in_stock_rate": sums(outcomes.in_stock) / period_days,
        "holding_cost": sums(outcomes.holding_cost) / period_days,
        "total_cost": sums(outcomes.cost) / period_days,
        "on_hand": on_hand,
        "sales": sales,
    }


@dataclasses.dataclass(frozen=True)
class MetricResult:
    """One field metric of a field test.

    Attributes:
        name: the metric (one of :data:`METRICS`).
        unit: the unit of its levels and effects (:data:`UNITS`).
        did: the difference-in-differences estimate.
        matched: the propensity-matched ATT on the pre-to-post change of the row means
            (for ``turnover_days``: of the matched cells' ratios of sums).
        treated_pre, treated_post, control_pre, control_post: each group and phase's
            mean of the panel cells (for ``turnover_days``: sum of on-hand / sum of sales
            over the cell's rows and periods).
        panel: ``[R, P]`` the metric per row and period (NaN = undefined cell).
    """

    name: str
    unit: str
    did: DiDResult
    matched: MatchedResult | None
    treated_pre: float
    treated_post: float
    control_pre: float
    control_post: float
    panel: np.ndarray


@dataclasses.dataclass(frozen=True)
class FieldTestResult:
    """Outcome of :func:`run_field_test`.

    Attributes:
        metrics: ``{name: MetricResult}`` for :data:`METRICS`, in that order.
        treated: ``[R]`` bool assignment.
        post: ``[P]`` bool, True for post-switch periods.
        covariates: ``[R, F]`` pre-period row covariates used for the propensity score.
        covariate_names: their names (:data:`COVARIATES`).
        row_ids: ``[R]`` row ids of the data set.
        treatment: ``"random"`` or ``"rule"``.
        treated_fraction: realised share of treated rows.
        start: first simulated day of the data panel.
        warmup_days, pre_days, post_days, period_days: the design.
        switch_day: simulated day (since reset) on which treated rows switch.
    """

    metrics: dict[str, MetricResult]
    treated: np.ndarray
    post: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    row_ids: np.ndarray
    treatment: str
    treated_fraction: float
    start: int
    warmup_days: int
    pre_days: int
    post_days: int
    period_days: int
    switch_day: int


def _pre_covariates(outcomes: DayOutcome, data: InventoryData, lo: int, hi: int) -> np.ndarray:
    """``[R, F]`` row covariates (:data:`COVARIATES`) over days ``lo..hi-1``."""

    def total(leaf):
        return np.asarray(leaf, np.float64)[lo:hi].sum(axis=0)

    days = hi - lo
    on_hand, sales = total(outcomes.on_hand_end), total(outcomes.sales)
    return np.stack(
        [
            np.log1p(on_hand / np.maximum(sales, 1.0)),
            total(outcomes.in_stock) / days,
            np.log1p(total(outcomes.demand) / days),
            np.log1p(total(outcomes.holding_cost) / days),
            data.rows["lead_time_mean"].to_numpy(np.float64),
            data.rows["review_period"].to_numpy(np.float64),
        ],
        axis=1,
    )


def _new_policy(policy_factory, env: InventoryEnv, params: SimParams):
    """The new policy: ``policy_factory`` itself when it is a policy pytree, else
    ``policy_factory(env, params)``; raises ValueError when that is not callable."""
    if dataclasses.is_dataclass(policy_factory) and not isinstance(policy_factory, type):
        new = policy_factory  # a policy pytree passed directly
    else:
        new = policy_factory(env, params)
    if not callable(new):
        raise ValueError(f"policy_factory returned {type(new).__name__}; expected a policy "
                         "callable as policy(obs, key) -> [R] orders")
    return new


def _simulator(env: InventoryEnv, params: SimParams, new: Policy, incumbent: Policy,
               key: jax.Array, switch_day: int, total_days: int
               ) -> Callable[[np.ndarray], DayOutcome]:
    """``simulate(mask) -> outcomes``: one ``rollout`` of :class:`Mixed` over ``total_days``
    with the rows of ``mask`` treated, outcomes on the host."""

    def simulate(mask: np.ndarray) -> DayOutcome:
        policy = Mixed(
            treated_mask=jnp.asarray(mask, jnp.bool_),
            new=new,
            old=incumbent,
            switch_day=jnp.asarray(switch_day, jnp.int32),
        )
        _, outcomes, _ = rollout(env, params, policy, key, total_days)
        return jax.device_get(outcomes)

    return simulate


def _assign(treatment: str, simulate: Callable[[np.ndarray], DayOutcome], data: InventoryData,
            num_treated: int, rng: np.random.Generator, rule_noise: float, warmup_days: int,
            switch_day: int) -> tuple[np.ndarray, DayOutcome]:
    """``(treated [R] bool, outcomes)``: the assignment (see :func:`run_field_test`) and
    the simulation ``simulate(treated)`` of the field test under it."""
    num_rows = data.num_rows
    if treatment == "random":
        treated = np.zeros(num_rows, bool)
        treated[rng.permutation(num_rows)[:num_treated]] = True
        outcomes = simulate(treated)
    else:
        before = simulate(np.zeros(num_rows, bool))
        cov = _pre_covariates(before, data, warmup_days, switch_day)
        turnover = cov[:, 0]
        sd = turnover.std()
        z = (turnover - turnover.mean()) / (sd if sd > 0 else 1.0)
        score = z + rule_noise * rng.standard_normal(num_rows)
        treated = np.zeros(num_rows, bool)
        treated[np.argsort(-score, kind="stable")[:num_treated]] = True
        outcomes = simulate(treated)
    return treated, outcomes


def _analyse(panels: dict[str, np.ndarray], treated: np.ndarray, post: np.ndarray,
             covariates: np.ndarray, cluster: str, caliper: float) -> dict[str, MetricResult]:
    """``{name: MetricResult}`` for :data:`METRICS`: the DiD of each panel and the matched
    ATT on the change of its row means."""
    results = {}
    for name in METRICS:
        panel = panels[name]
        if name == "turnover_days":  # ratio of sums: rows without sales still count
            parts = panels["on_hand"], panels["sales"]
            did = ratio_did_estimate(*parts, treated, post, cluster=cluster)
            match = lambda: matched_ratio_effect(*parts, covariates, treated, post,  # noqa: E731
                                                 caliper=caliper)
        else:
            did = did_estimate(panel, treated, post, cluster=cluster)
            match = lambda: propensity_matched_effect(  # noqa: E731
                panel[:, ~post], _row_mean(panel[:, post]), covariates, treated,
                caliper=caliper)
        # The matched estimate needs a control near each treated row; on few rows there
        # may be none. The DiD does not depend on it, so it is reported without it.
        try:
            matched = match()
        except ValueError:
            matched = None
        results[name] = MetricResult(
            name=name,
            unit=UNITS[name],
            did=did,
            matched=matched,
            treated_pre=did.treated_pre,
            treated_post=did.treated_post,
            control_pre=did.control_pre,
            control_post=did.control_post,
            panel=panel,
        )
    return results


def run_field_test(
    data: InventoryData,
    policy_factory: Callable[[InventoryEnv, SimParams], Policy],
    incumbent: Policy,
    key: jax.Array,
    *,
    train_row_ids,
    treatment: str = "random",
    treated_fraction: float = 0.5,
    pre_days: int = 56,
    post_days: int = 56,
    start: int = 28,
    period_days: int = 7,
    warmup_days: int = 28,
    seed: int = 0,
    rule_noise: float = 1.0,
    caliper: float = 0.2,
    cluster: str = "row",
    stochastic_lead_time: bool = True,
) -> FieldTestResult:
    """Simulates the paper's field test and analyses it per field metric.

    The data panel is replayed from day ``start`` for ``warmup_days + pre_days +
    post_days`` days in one :func:`~orpr_jax.sim.rollout.rollout` of :class:`Mixed`:
    all rows play ``incumbent`` until ``switch_day = warmup_days + pre_days``, then the
    treated rows play the new policy. The warm-up is discarded; the pre and post windows
    are cut into periods of ``period_days`` days (:func:`field_panels`) and each metric's
    ``[R, P]`` panel goes through :func:`did_estimate` and
    :func:`propensity_matched_effect` (pre-period covariates :data:`COVARIATES`; outcome
    the row's post-period mean minus its pre-period mean). Turnover days is a ratio of
    sums per treatment x phase cell instead (:func:`~.ratio.ratio_did_estimate`,
    :func:`~.ratio.matched_ratio_effect`), so a row the new policy starves of stock (no
    sales after the switch) still counts. Units: :data:`UNITS` (costs per row-day).

    Assignment (``round(treated_fraction * R)`` rows, seeded by ``seed``):

    * ``"random"``: a uniformly random set of rows.
    * ``"rule"``: a manager-style choice: the rows with the highest ``z(log(1 +
      pre-period turnover days)) + rule_noise * N(0, 1)``, turnover days over the whole
      pre window (sales floored at one unit). Selection is on an observed pre-period
      outcome, so the DiD can be biased by mean reversion while the propensity match on
      the covariates (which include that turnover) is not; ``rule_noise > 0`` keeps the
      propensity away from 0 and 1 so matches exist. The pre window does not depend on the
      assignment (nobody has switched yet), so it is read from a first run with no row
      treated, whose program and random numbers the real run reuses.

    Only held-out rows may be field-tested: a policy measured on rows it was trained on
    looks better than it is, so ``data`` must hold none of ``train_row_ids``.

    Args:
        data: the held-out rows' data set (:class:`~orpr_jax.data.dataset.InventoryData`).
        policy_factory: ``policy_factory(env, params) -> policy``, building the new policy
            for the field-test env (e.g. ``lambda env, params: base_stock(20.0)``); a
            policy pytree (a dataclass instance such as ``BaseStock`` or
            ``FoundationPolicy``) is used as is.
        incumbent: the incumbent policy pytree, ``incumbent(obs, key) -> [R]``.
        key: PRNG key of the simulation (demand is replayed; lead times and stochastic
            policies draw from it).
        train_row_ids: (required) the row ids the new policy, the incumbent or anything
            they were built from were trained or tuned on; none may be a row of ``data``
            (an empty collection states that nothing was trained on these data).
        treatment: ``"random"`` or ``"rule"``.
        treated_fraction: share of treated rows, in (0, 1).
        pre_days: days before the switch analysed (a multiple of ``period_days``, at least
            two periods so the pre-trend can be checked).
        post_days: days after the switch analysed (a positive multiple of ``period_days``).
        start: first simulated day of the data panel (>= 0; the days before it seed the
            sales history).
        period_days: days per panel period (>= 1; 7 for weekly panels).
        warmup_days: days simulated before the pre window and discarded (>= 0).
        seed: seed of the assignment.
        rule_noise: noise of the ``"rule"`` score, in standard deviations (>= 0).
        caliper: matching caliper in standard deviations of the logit propensity.
        cluster: standard errors of the DiD, ``"row"`` or ``"none"``.
        stochastic_lead_time: draw lead times per order (see
            :func:`~orpr_jax.data.dataset.env_from_data`).

    Returns:
        A :class:`FieldTestResult`.

    Raises:
        ValueError: if ``data`` holds a row of ``train_row_ids`` (or that is not a
            collection of ids), ``treatment``, ``treated_fraction`` (or the treated count it
            implies), ``period_days``, ``pre_days``, ``post_days``, ``warmup_days``,
            ``start``, ``rule_noise``, ``caliper`` or ``cluster`` is out of range, the
            window does not fit the data panel, or ``policy_factory`` returns something
            that is not callable.
    """
    _check_held_out(data, train_row_ids)
    num_treated = _check_design(
        data, treatment=treatment, treated_fraction=treated_fraction, pre_days=pre_days,
        post_days=post_days, start=start, period_days=period_days,
        warmup_days=warmup_days, seed=seed, rule_noise=rule_noise, caliper=caliper,
        cluster=cluster)
    num_rows = data.num_rows
    total_days = warmup_days + pre_days + post_days

    env, params = env_from_data(data, start=start, num_days=total_days,
                                stochastic_lead_time=stochastic_lead_time)
    new = _new_policy(policy_factory, env, params)
    switch_day = warmup_days + pre_days
    rng = np.random.default_rng(seed)

    simulate = _simulator(env, params, new, incumbent, key, switch_day, total_days)
    treated, outcomes = _assign(treatment, simulate, data, num_treated, rng, rule_noise,
                                warmup_days, switch_day)

    covariates = _pre_covariates(outcomes, data, warmup_days, switch_day)
    n_pre, n_post = pre_days // period_days, post_days // period_days
    panels = field_panels(outcomes, warmup_days, n_pre + n_post, period_days)
    post = np.arange(n_pre + n_post) >= n_pre
    results = _analyse(panels, treated, post, covariates, cluster, caliper)
    return FieldTestResult(
        metrics=results, treated=treated, post=post, covariates=covariates,
        covariate_names=COVARIATES, row_ids=data.rows["row_id"].to_numpy(),
        treatment=treatment, treated_fraction=num_treated / num_rows, start=start,
        warmup_days=warmup_days, pre_days=pre_days, post_days=post_days,
        period_days=period_days, switch_day=switch_day,
    )

