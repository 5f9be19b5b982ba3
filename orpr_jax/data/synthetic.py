"""The built-in JD-like synthetic data set, deterministic from a key.

SKUs belong to categories and are stocked in one or more warehouses (a row is a SKU x
warehouse). Daily demand follows the parametric model of :mod:`orpr_jax.sim.demand`
(negative binomial around a seasonal mean), with:

* demand levels spread log-normally from slow movers (a few units a month, zero-inflated
  and intermittent) to fast movers (hundreds a day);
* a weekly profile and a yearly cycle per category, a trend per row;
* promotions: the two platform-wide festivals (18 June and 11 November, each a window
  of a few days for most categories) and occasional SKU-level promotions, with uplifts
  of 1.3x-4x;
* vendor lead times with means of 1-14 days and a spread per vendor, review periods of
  1-7 days with offsets, case packs and MOQs for fast movers, shared inbound capacity per
  warehouse, and costs proportional to the unit price (holding ~ 90% a year of the price,
  lost-sales penalty = the margin).

The demand trace is drawn around the simulator's own daily mean
(:func:`orpr_jax.sim.demand.mean_demand`), the model its ``negbin`` demand mode samples.
Two demand models (``SyntheticSpec.demand_model``):

* ``'memory'`` (default): that mean times a persistent multiplier
  (:mod:`orpr_jax.data.demand_memory`): AR(1) log-level shocks per SKU (shared by its
  warehouses) plus a small row part, occasional level shifts, launches with a ramp-up and
  discontinuations with a fade (zero demand outside the active window, and no promotion
  there), and a pull-forward dip before and a hangover dip after each promotion;
* ``'iid'``: each day drawn independently around the mean (the generator before the
  memory model; for the same key it gives exactly its arrays).

Both draw every attribute, the calendar and the observation noise from the same stream,
so the two models of one key share rows, costs and promotions (bar the promotions the
memory model clears outside a product's life).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from orpr_jax._validation import check_int
from orpr_jax.data.dataset import InventoryData
from orpr_jax.data.demand_memory import draw_lifecycle, lifecycle_factor, memory_multiplier
from orpr_jax.sim.demand import mean_demand
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import SimConfig

FESTIVALS_DOY = (168, 314)  # 18 June and 11 November (0 = 1 January, 365-day year)
DEMAND_MODELS = ("memory", "iid")

#: Real-valued fields of :class:`SyntheticSpec` -> their allowed closed range.
_FLOAT_RANGES = {
    "ar_phi_low": (0.0, 0.999),
    "ar_phi_high": (0.0, 0.999),
    "ar_log_sd_low": (0.0, 2.0),
    "ar_log_sd_high": (0.0, 2.0),
    "row_log_sd": (0.0, 2.0),
    "level_shift_rate": (0.0, 52.0),
    "level_shift_log_sd": (0.0, 2.0),
    "launch_share": (0.0, 1.0),
    "discontinue_share": (0.0, 1.0),
    "pre_promo_dip": (0.0, 1.0),
    "post_promo_dip": (0.0, 1.0),
}


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Size and shape of the synthetic data set, and the knobs of its demand model.

    Attributes:
        num_skus: SKUs (each stocked in 1..num_warehouses warehouses).
        num_warehouses: warehouses.
        num_categories: categories.
        num_days: days in the panel (default two years: train on the first, test on the
            second).
        start_date: calendar date of day 0.
        max_lead_time: longest vendor lead time (days).
        demand_model: ``'memory'`` (persistent shocks, regimes, life cycles, promotion
            dips) or ``'iid'`` (independent days around the seasonal mean). The fields
            below act under ``'memory'`` only.
        ar_phi_low, ar_phi_high: range of the per-SKU AR(1) persistence phi of the log
            level (uniform; in [0, 0.999]).
        ar_log_sd_low, ar_log_sd_high: range of the per-SKU stationary standard
            deviation of the AR(1) log level (uniform; in [0, 2]).
        row_log_sd: stationary standard deviation of the row-specific AR(1) part (same
            phi as its SKU; in [0, 2]).
        level_shift_rate: mean number of level shifts per row per year (Poisson; in
            [0, 52]).
        level_shift_log_sd: standard deviation of a level shift's log factor (mean
            factor 1; in [0, 2]).
        launch_share: share of SKUs launched inside the panel (zero demand before the
            launch day; in [0, 1]).
        discontinue_share: share of SKUs discontinued inside the panel (zero demand from
            the end day on; in [0, 1]).
        launch_ramp_days: longest ramp-up after a launch (uniform in 0..this; >= 0).
        fade_days: longest fade-out before a discontinuation (uniform in 0..this; >= 0).
        pre_promo_days: days before a promotion with pull-forward (lower) demand (>= 0).
        pre_promo_dip: demand drop on the eve of a promotion, falling linearly to
            ``1 / pre_promo_days`` of it ``pre_promo_days`` days ahead (in [0, 1]).
        post_promo_days: days of post-promotion dip (>= 0).
        post_promo_dip: dip on the first day after a promotion per unit of uplift above
            1 (depth ``min(post_promo_dip * (uplift - 1), 0.9)``), decaying linearly
            over ``post_promo_days`` (in [0, 1]).

    Raises:
        ValueError: a field out of its range (naming the field, the value and the range).
    """

    num_skus: int = 1000
    num_warehouses: int = 5
    num_categories: int = 12
    num_days: int = 730
    start_date: str = "2025-01-01"
    max_lead_time: int = 14
    demand_model: str = "memory"
    ar_phi_low: float = 0.5
    ar_phi_high: float = 0.98
    ar_log_sd_low: float = 0.2
    ar_log_sd_high: float = 0.5
    row_log_sd: float = 0.1
    level_shift_rate: float = 0.5
    level_shift_log_sd: float = 0.3
    launch_share: float = 0.15
    discontinue_share: float = 0.1
    launch_ramp_days: int = 30
    fade_days: int = 30
    pre_promo_days: int = 3
    pre_promo_dip: float = 0.15
    post_promo_days: int = 5
    post_promo_dip: float = 0.2

    def __post_init__(self) -> None:
        for name, low in (
            ("num_skus", 1),
            ("num_warehouses", 1),
            ("num_categories", 1),
            ("num_days", 2),
            ("max_lead_time", 1),
            ("launch_ramp_days", 0),
            ("fade_days", 0),
            ("pre_promo_days", 0),
            ("post_promo_days", 0),
        ):
            check_int(name, getattr(self, name), low)
        if self.demand_model not in DEMAND_MODELS:
            raise ValueError(f"demand_model={self.demand_model!r} is not allowed; use "
                             f"{' or '.join(map(repr, DEMAND_MODELS))}")
        for name, (low, high) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not low <= value <= high):
                raise ValueError(f"{name}={value!r} is not allowed; it must be a number in "
                                 f"[{low:g}, {high:g}]")
        for low_name, high_name in (("ar_phi_low", "ar_phi_high"),
                                    ("ar_log_sd_low", "ar_log_sd_high")):
            if getattr(self, low_name) > getattr(self, high_name):
                raise ValueError(f"{low_name}={getattr(self, low_name)!r} is not allowed; it "
                                 f"must be <= {high_name}={getattr(self, high_name)!r}")


class SyntheticTruth(NamedTuple):
    """What the generator knows and the data set does not show (for tests and analysis).

    Attributes:
        expected_demand: ``[T, R]`` deterministic expected demand: the seasonal mean
            (weekly, yearly, trend, promotion uplift) times ``1 - zero_prob``, without the
            memory multiplier.
        multiplier: ``[T, R]`` the memory multiplier (ones under ``'iid'``); the day's
            mean is ``expected_demand * multiplier``.
        launch_day: ``[R]`` first active day (0 when active from the start).
        end_day: ``[R]`` first day after the active window (``num_days`` when active to
            the end).
        persistence: ``[R]`` AR(1) phi of the row's SKU (0 under ``'iid'``).
    """

    expected_demand: np.ndarray
    multiplier: np.ndarray
    launch_day: np.ndarray
    end_day: np.ndarray
    persistence: np.ndarray


def generate(key: jax.Array, spec: SyntheticSpec = SyntheticSpec()) -> InventoryData:
    """Generates the JD-like data set.

    Args:
        key: PRNG key; the same key and spec give the same data set.
        spec: sizes and demand model.

    Returns:
        An :class:`InventoryData` with ``[spec.num_days, R]`` demand and promotions and the
        row table (R is about ``num_skus x (1 + 0.4 (num_warehouses - 1))``).
    """
    return generate_with_truth(key, spec)[0]


def generate_with_truth(key: jax.Array, spec: SyntheticSpec = SyntheticSpec()
                        ) -> tuple[InventoryData, SyntheticTruth]:
    """:func:`generate`, and the generator's :class:`SyntheticTruth` of the same draw."""
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_sku, n_wh, n_cat = spec.num_skus, spec.num_warehouses, spec.num_categories

    # --- SKUs: category, level, price, vendor lead time, pack sizes -----------------
    sku_cat = rng.integers(0, n_cat, n_sku)
    sku_level = np.exp(rng.normal(np.log(1.5), 1.6, n_sku))  # units/day over all warehouses
    sku_level = np.clip(sku_level, 0.03, 400.0)
    price = np.exp(rng.normal(np.log(40.0), 0.8, n_sku))
    margin = rng.uniform(0.1, 0.3, n_sku)
    lt_choices = np.arange(1, min(14, spec.max_lead_time) + 1)
    lt_weights = np.exp(-0.5 * ((lt_choices - 4.0) / 3.0) ** 2)
    sku_lt = rng.choice(lt_choices, n_sku, p=lt_weights / lt_weights.sum()).astype(float)
    sku_lt_cv = rng.uniform(0.0, 0.3, n_sku) * (rng.random(n_sku) < 0.7)
    pack_choices = np.array([1, 2, 4, 6, 12, 24])

    # --- rows: each SKU in a subset of warehouses, demand split by a Dirichlet -------
    rows = []
    for s in range(n_sku):
        k = 1 + rng.binomial(n_wh - 1, 0.4) if n_wh > 1 else 1
        whs = np.sort(rng.choice(n_wh, k, replace=False))
        share = rng.dirichlet(np.full(k, 2.0))
        for w, sh in zip(whs, share, strict=True):
            rows.append((s, int(w), float(sh)))
    sku_idx = np.array([r[0] for r in rows])
    wh_idx = np.array([r[1] for r in rows])
    level = sku_level[sku_idx] * np.array([r[2] for r in rows])
    n_rows = len(rows)

    slow = level < 0.5
    zero_prob = np.where(slow, rng.uniform(0.3, 0.7, n_rows), 0.0)
    base = level / (1.0 - zero_prob)  # keep the mean demand at `level`
    dispersion = rng.uniform(2.0, 20.0, n_rows)
    trend = rng.normal(0.05, 0.1, n_rows)

    cat_week_amp = rng.uniform(0.0, 0.3, n_cat)
    cat_week_peak = rng.integers(0, 7, n_cat)
    dows = np.arange(7)
    weekly_cat = 1.0 + cat_week_amp[:, None] * np.cos(
        2 * np.pi * (dows[None, :] - cat_week_peak[:, None]) / 7
    )
    weekly_cat /= weekly_cat.mean(axis=1, keepdims=True)
    cat_year_amp = rng.uniform(0.0, 0.3, n_cat)
    cat_year_phase = rng.uniform(0, 365, n_cat)
    row_cat = sku_cat[sku_idx]

    # --- promotions ----------------------------------------------------------------
    start = pd.Timestamp(spec.start_date)
    doy0 = (start.day_of_year - 1) % 365
    doy = (doy0 + np.arange(spec.num_days)) % 365
    promo = _promotions(rng, spec, doy, row_cat, sku_idx)
    uplift = rng.uniform(1.3, 4.0, n_rows)

    # --- vendor, review and order constraints --------------------------------------
    lt_mean = sku_lt[sku_idx]
    lt_std = np.round(sku_lt_cv[sku_idx] * lt_mean, 2)
    review = rng.choice(np.arange(1, 8), n_rows, p=[0.35, 0.15, 0.15, 0.05, 0.05, 0.05, 0.2])
    offset = (rng.random(n_rows) * review).astype(int)
    fast = level >= 5.0
    pack = np.where(fast, rng.choice(pack_choices, n_rows), 1)
    pack = np.where(pack > np.maximum(level * 3, 1), 1, pack)  # at most ~3 days of demand
    moq = np.where(fast & (rng.random(n_rows) < 0.5), pack * rng.integers(1, 4, n_rows), 0)
    unit_price = price[sku_idx]
    holding = unit_price * 0.9 / 365.0
    penalty = unit_price * margin[sku_idx]

    wh_mean = np.bincount(wh_idx, weights=level, minlength=n_wh)
    capacity = np.ceil(np.maximum(wh_mean, 1.0) * 2.5)
    # InventoryData orders warehouses by sorted id and knows only those with rows.
    capacity = capacity[sorted(set(wh_idx.tolist()), key=lambda w: f"W{w}")]

    # --- demand around the simulator's own daily mean --------------------------------
    mean_kw = dict(
        base_demand=base,
        dispersion=dispersion,
        weekly=weekly_cat[row_cat],
        yearly_amplitude=cat_year_amp[row_cat],
        yearly_phase=cat_year_phase[row_cat],
        trend=trend,
        zero_prob=zero_prob,
        promo_uplift=uplift,
        start_day_of_year=doy0,
        start_day_of_week=int(start.day_of_week),
    )
    demand, promo, truth = _demand(rng, seed, spec, sku_idx, promo, mean_kw)

    table = _row_table(rows, sku_idx, wh_idx, row_cat, lt_mean, lt_std, review, offset,
                       holding, penalty, moq, pack, level, uplift, truth)
    data = InventoryData(
        demand=demand,
        promo=promo,
        rows=table,
        start_date=start,
        capacity=capacity,
        name="jd_synthetic",
    )
    return data, truth


def _demand(rng: np.random.Generator, seed: int, spec: SyntheticSpec, sku_idx: np.ndarray,
            promo: np.ndarray, mean_kw: dict) -> tuple[np.ndarray, np.ndarray, SyntheticTruth]:
    """``[T, R]`` demand, the promotion calendar it was drawn with, and the truth.

    The memory model draws its own parts from a second stream (``[seed, 1]``), so the
    main stream, hence every attribute and the observation noise, is the same under both
    models.
    """
    n_rows, num_days = len(sku_idx), spec.num_days
    config = SimConfig(
        num_rows=n_rows,
        num_warehouses=spec.num_warehouses,
        max_lead_time=spec.max_lead_time,
        demand_mode="negbin",
        use_promotions=True,
    )
    memory = spec.demand_model == "memory"
    if memory:
        mem_rng = np.random.default_rng([seed, 1])
        life = draw_lifecycle(mem_rng, spec, num_days)
        life_factor = lifecycle_factor(life, num_days)
        # No promotion for a product not on sale.
        promo = promo * (life_factor[:, sku_idx] > 0)
    params = make_params(config, promo_calendar=promo, **mean_kw)
    lam = _seasonal_mean(config, params, num_days)
    zero_prob = np.asarray(params.zero_prob, np.float64)
    if memory:
        mult, phi = memory_multiplier(mem_rng, spec, sku_idx, promo, mean_kw["promo_uplift"],
                                      life_factor)
        truth = SyntheticTruth(lam * (1.0 - zero_prob), mult, life.launch[sku_idx],
                               life.end[sku_idx], phi[sku_idx])
        lam = lam * mult
    else:
        truth = SyntheticTruth(lam * (1.0 - zero_prob), np.ones_like(lam),
                               np.zeros(n_rows, int), np.full(n_rows, num_days),
                               np.zeros(n_rows))
    demand = _sample_trace(rng, lam, np.asarray(params.dispersion, np.float64), zero_prob)
    return demand, promo, truth


def _promotions(rng: np.random.Generator, spec: SyntheticSpec, doy: np.ndarray,
                row_cat: np.ndarray, sku_idx: np.ndarray) -> np.ndarray:
    """``[T, R]`` promotion calendar: festivals a category joins, and SKU-level events."""
    n_rows, n_sku, n_cat = len(sku_idx), spec.num_skus, spec.num_categories
    promo = np.zeros((spec.num_days, n_rows), np.float32)
    for fest in FESTIVALS_DOY:
        joins = rng.random(n_cat) < 0.75
        length = rng.integers(3, 8, n_cat)
        for c in np.flatnonzero(joins):
            days = np.flatnonzero(((doy - (fest - length[c] + 1)) % 365) < length[c])
            promo[np.ix_(days, np.flatnonzero(row_cat == c))] = 1.0
    sku_promos = rng.poisson(2.0 * spec.num_days / 365, n_sku)
    # Rows are laid out SKU by SKU, so a SKU's rows are one contiguous block.
    bounds = np.searchsorted(sku_idx, np.arange(n_sku + 1))
    for s in np.flatnonzero(sku_promos):
        for _ in range(sku_promos[s]):
            t0 = rng.integers(0, spec.num_days)
            promo[t0 : t0 + rng.integers(2, 6), bounds[s] : bounds[s + 1]] = 1.0
    return promo


def _row_table(rows, sku_idx, wh_idx, row_cat, lt_mean, lt_std, review, offset, holding,
               penalty, moq, pack, level, uplift, truth) -> pd.DataFrame:
    """The row table of the documented data format (plus the generator's truth)."""
    return pd.DataFrame(
        {
            "row_id": [f"S{s:05d}-W{w}" for s, w, _ in rows],
            "sku": [f"S{s:05d}" for s in sku_idx],
            "warehouse": [f"W{w}" for w in wh_idx],
            "category": [f"C{c:02d}" for c in row_cat],
            "lead_time_mean": lt_mean,
            "lead_time_std": lt_std,
            "review_period": review.astype(int),
            "review_offset": offset,
            "holding_cost": holding,
            "penalty_cost": penalty,
            "fixed_order_cost": 0.0,
            "purchase_cost": 0.0,
            "moq": moq.astype(float),
            "case_pack": pack.astype(float),
            "max_order": np.inf,
            # Generator truth, for analysis (not needed by the simulator).
            "mean_demand": level,
            "promo_uplift": uplift,
            "launch_day": truth.launch_day.astype(int),
            "end_day": truth.end_day.astype(int),
            "demand_persistence": truth.persistence,
        }
    )


def _seasonal_mean(config: SimConfig, params, num_days: int) -> np.ndarray:
    """``[T, R]`` float64 daily mean of :func:`orpr_jax.sim.demand.mean_demand` (the model
    the ``negbin`` demand mode samples from), before zero-inflation."""
    ts = jnp.arange(num_days, dtype=jnp.int32)
    lam = jax.jit(jax.vmap(lambda t: mean_demand(config, params, t)))(ts)
    return np.asarray(lam, np.float64)


def _sample_trace(rng: np.random.Generator, lam: np.ndarray, dispersion: np.ndarray,
                  zero_prob: np.ndarray) -> np.ndarray:
    """``[T, R]`` zero-inflated negative-binomial demand with mean ``lam`` (before
    zero-inflation), shape ``dispersion`` and zero probability ``zero_prob`` (``[R]``).

    The draws use NumPy's generator, several times faster on a CPU than
    ``jax.random.gamma`` + ``jax.random.poisson`` for tens of millions of draws.
    """
    lam = lam * rng.gamma(dispersion, 1.0 / dispersion, size=lam.shape)
    demand = rng.poisson(lam).astype(np.float32)
    keep = rng.random(lam.shape) >= zero_prob
    return np.where(keep, demand, np.float32(0.0))
