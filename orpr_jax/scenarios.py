"""Named scenarios: ``orpr_jax.make(name, **overrides) -> (env, params)``."""

from __future__ import annotations

import functools
import inspect

import jax
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.sim.demand import negbin_cdf_table, poisson_cdf_table
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import SimConfig, SimParams


def make_lost_sales(
    num_rows: int = 1000,
    lead_time: int = 2,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    lost_sales_cost: float = 9.0,
    *,
    demand: str = "poisson",
    dispersion: float = 10.0,
    backorder: bool = False,
    fixed_order_cost: float = 0.0,
    max_steps_in_episode: int | None = None,
    relaxed: bool = False,
    temperature: float = 1.0,
    history_length: int = 28,
) -> tuple[InventoryEnv, SimParams]:
    """The classic single-stage lost-sales model (Zipkin 2008).

    Stationary demand (Poisson, or negative binomial with ``demand="negbin"``) sampled
    by inverse-CDF lookup, one fixed lead time L for every row, a review every day,
    holding cost h per unit of end-of-period stock and penalty p per lost unit. An order
    placed in period t is sold from period t + L on. Rows start with ``round(mean *
    (L + 1))`` on hand and nothing on order.

    Args:
        num_rows: independent copies simulated in parallel.
        lead_time: L >= 1 (days).
        demand_mean: mean daily demand (> 0).
        holding_cost: h >= 0.
        lost_sales_cost: p >= 0.
        demand: ``"poisson"`` or ``"negbin"``.
        dispersion: negative-binomial shape r (variance mean + mean^2 / r).
        backorder: backlog instead of losing unmet demand (p per unit per day).
        fixed_order_cost: K per order.
        max_steps_in_episode: truncate and auto-reset after this many days.
        relaxed: smooth surrogates for gradients.
        temperature: temperature of the surrogates.
        history_length: sales-window length of the observation.

    Returns:
        ``(env, params)``.
    """
    if isinstance(lead_time, bool) or not isinstance(lead_time, int) or lead_time < 1:
        raise ValueError(f"lead_time={lead_time!r} is not allowed; expected an integer >= 1")
    if not np.isfinite(demand_mean) or demand_mean <= 0:
        raise ValueError(f"demand_mean={demand_mean!r} is not allowed; expected a number > 0")
    if demand not in ("poisson", "negbin"):
        raise ValueError(f"demand={demand!r} is not allowed; use 'poisson' or 'negbin'")
    config = SimConfig(
        num_rows=num_rows,
        max_lead_time=lead_time,
        history_length=history_length,
        lead_time_mode="shared",
        demand_mode="table",
        backorder=backorder,
        max_steps_in_episode=max_steps_in_episode,
        relaxed=relaxed,
    )
    if demand == "poisson":
        cdf = poisson_cdf_table(demand_mean)
    else:
        if not np.isfinite(dispersion) or dispersion <= 0:
            raise ValueError(f"dispersion={dispersion!r} is not allowed; expected a number > 0")
        cdf = negbin_cdf_table(demand_mean, dispersion)
    params = make_params(
        config,
        holding_cost=holding_cost,
        penalty_cost=lost_sales_cost,
        fixed_order_cost=fixed_order_cost,
        lead_time=lead_time,
        demand_cdf=cdf,
        base_demand=demand_mean,
        dispersion=dispersion,
        initial_on_hand=round(demand_mean * (lead_time + 1)),
        temperature=temperature,
    )
    return InventoryEnv(config), params


@functools.lru_cache(maxsize=4)
def jd_synthetic_data(
    seed: int = 0,
    num_skus: int = 1000,
    num_warehouses: int = 5,
    num_categories: int = 12,
    num_days: int = 730,
    demand_model: str = "memory",
) -> InventoryData:
    """The built-in data set (cached per arguments). See :mod:`orpr_jax.data.synthetic`."""
    spec = SyntheticSpec(
        num_skus=num_skus,
        num_warehouses=num_warehouses,
        num_categories=num_categories,
        num_days=num_days,
        demand_model=demand_model,
    )
    return generate(jax.random.key(seed), spec)


def jd_period(data: InventoryData, period: str, history_length: int = 28) -> tuple[int, int]:
    """``(start, num_days)`` of the ``"train"`` (first half after the history window),
    ``"test"`` (second half) or ``"all"`` period of a panel."""
    t = data.num_days
    half = t // 2
    if period == "train":
        return history_length, half - history_length
    if period == "test":
        return half, t - half
    if period == "all":
        return history_length, t - history_length
    raise ValueError(f"period={period!r} is not allowed; use 'train', 'test' or 'all'")


def make_jd_synthetic(
    num_skus: int = 1000,
    num_warehouses: int = 5,
    num_categories: int = 12,
    num_days: int = 730,
    *,
    seed: int = 0,
    period: str = "test",
    stochastic_lead_time: bool = True,
    backorder: bool = False,
    history_length: int = 28,
    relaxed: bool = False,
    demand_model: str = "memory",
) -> tuple[InventoryEnv, SimParams]:
    """The built-in JD-like data set, replayed over its ``period``.

    Args:
        num_skus, num_warehouses, num_categories, num_days: data set size (the default
            has about 2,600 rows over two years).
        seed: data-set seed.
        period: ``"train"`` (first year), ``"test"`` (second year) or ``"all"``.
        stochastic_lead_time: draw vendor lead times per order (else the mean, fixed).
        backorder: backlog unmet demand.
        history_length: sales-window length of the observation.
        relaxed: smooth surrogates for gradients.
        demand_model: ``"memory"`` (persistent shocks, level shifts, launches and
            discontinuations, promotion dips; the default) or ``"iid"`` (independent days
            around the seasonal mean).

    Returns:
        ``(env, params)`` in trace mode.
    """
    data = jd_synthetic_data(seed, num_skus, num_warehouses, num_categories, num_days,
                             demand_model)
    start, days = jd_period(data, period, history_length)
    return env_from_data(
        data,
        start=start,
        num_days=days,
        history_length=history_length,
        stochastic_lead_time=stochastic_lead_time,
        backorder=backorder,
        relaxed=relaxed,
    )


def jd_labels(
    period: str = "train",
    label_config=None,
    *,
    cache_dir: str | None = "runs/labels",
    seed: int = 0,
    num_skus: int = 1000,
    progress=None,
):
    """OR labels of the built-in data set in one call (cached under ``cache_dir``).

    Args:
        period: ``"train"``, ``"test"`` or ``"all"`` of :func:`make_jd_synthetic`.
        label_config: a :class:`orpr_jax.labels.LabelConfig` (default settings if None).
        cache_dir: folder of the label cache; None labels without caching.
        seed: data-set and labelling seed.
        num_skus: data-set size.
        progress: ``progress(done, total)`` callback per decision date.

    Returns:
        ``(env, params, labels)``.
    """
    from orpr_jax.labels import LabelConfig, cached_labels, label_decisions

    env, params = make_jd_synthetic(num_skus=num_skus, seed=seed, period=period)
    lc = label_config or LabelConfig()
    key = jax.random.key(seed)
    if cache_dir is None:
        return env, params, label_decisions(env, params, key, lc, progress=progress)
    labels, _ = cached_labels(env, params, key, lc, cache_dir, progress=progress)
    return env, params, labels


SCENARIOS = {"lost_sales": make_lost_sales, "jd_synthetic": make_jd_synthetic}


def make(name: str, **overrides) -> tuple[InventoryEnv, SimParams]:
    """Builds a named scenario.

    Args:
        name: ``"lost_sales"`` (classic single-stage lost-sales model, see
            :func:`make_lost_sales`) or ``"jd_synthetic"`` (the built-in JD-like data set,
            see :func:`make_jd_synthetic`).
        **overrides: keyword arguments of the scenario's builder.

    Returns:
        ``(env, params)``.

    Raises:
        ValueError: an unknown name or override, or an invalid value.
    """
    if name not in SCENARIOS:
        raise ValueError(f"name={name!r} is not allowed; known scenarios: {sorted(SCENARIOS)}")
    builder = SCENARIOS[name]
    allowed = set(inspect.signature(builder).parameters)
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(
            f"unknown override(s) {sorted(unknown)} for {name!r}; allowed: {sorted(allowed)}"
        )
    return builder(**overrides)
