"""The in-memory data set shared by the synthetic generator and the user-data loader,
and its conversion to an environment.

A data set is a dense daily panel (``[T, R]`` demand and promotion flags) plus a row table
(one row per SKU x warehouse with its lead time, review period, costs and order
constraints). :func:`env_from_data` turns it into ``(env, params)`` that replay the
demand (trace mode) over any window of days.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import SimConfig, SimParams

#: Columns of :attr:`InventoryData.rows`, with their meaning.
ROW_COLUMNS = {
    "row_id": "unique id of the SKU x warehouse row (string)",
    "sku": "SKU id (string)",
    "warehouse": "warehouse id (string)",
    "category": "category id (string)",
    "lead_time_mean": "mean vendor lead time, days (>= 1)",
    "lead_time_std": "standard deviation of the vendor lead time, days (>= 0)",
    "review_period": "days between reviews (integer in [1, 365])",
    "review_offset": "first review day in [0, review_period)",
    "holding_cost": "cost per unit of end-of-day stock per day (>= 0)",
    "penalty_cost": "cost per lost (or backlogged) unit (>= 0)",
    "fixed_order_cost": "cost per order placed (>= 0)",
    "purchase_cost": "cost per unit ordered (>= 0)",
    "moq": "minimum order quantity (>= 0)",
    "case_pack": "case-pack size (>= 1)",
    "max_order": "largest order per review (>= moq)",
}


@dataclasses.dataclass
class InventoryData:
    """A daily panel of SKU-warehouse rows.

    Attributes:
        demand: ``[T, R]`` float daily demand (for user data: observed sales, which are
            censored by stock-outs; the simulator replays them as demand).
        promo: ``[T, R]`` float 0/1 promotion flags (known in advance).
        rows: table with the :data:`ROW_COLUMNS`, one line per row, in panel order.
        start_date: calendar date of day 0.
        capacity: optional ``[W]`` inbound units per day per warehouse, in the order of
            :attr:`warehouses`.
        name: a label for reports.
    """

    demand: np.ndarray
    promo: np.ndarray
    rows: pd.DataFrame
    start_date: pd.Timestamp
    capacity: np.ndarray | None = None
    name: str = "data"

    def __post_init__(self) -> None:
        self.demand = np.asarray(self.demand, dtype=np.float32)
        self.promo = np.asarray(self.promo, dtype=np.float32)
        self.start_date = pd.Timestamp(self.start_date)
        if self.demand.ndim != 2:
            raise ValueError(f"demand has shape {self.demand.shape}; expected [days, rows]")
        if self.promo.shape != self.demand.shape:
            raise ValueError(
                f"promo has shape {self.promo.shape}; expected demand's {self.demand.shape}"
            )
        if len(self.rows) != self.demand.shape[1]:
            raise ValueError(
                f"rows has {len(self.rows)} lines; expected one per demand column "
                f"({self.demand.shape[1]})"
            )
        missing = [c for c in ROW_COLUMNS if c not in self.rows.columns]
        if missing:
            raise ValueError(f"rows is missing column(s) {missing}")
        if not np.all(np.isfinite(self.demand)) or np.any(self.demand < 0):
            bad = self.demand[~np.isfinite(self.demand) | (self.demand < 0)][0]
            raise ValueError(f"demand={bad!r} is not allowed; expected finite values >= 0")
        if np.any((self.promo != 0) & (self.promo != 1)):
            bad = self.promo[(self.promo != 0) & (self.promo != 1)][0]
            raise ValueError(f"promo={bad!r} is not allowed; expected 0 or 1")
        if self.capacity is not None:
            self.capacity = np.asarray(self.capacity, dtype=np.float32)
            n_wh = len(self.warehouses)
            if self.capacity.shape != (n_wh,):
                raise ValueError(
                    f"capacity has shape {self.capacity.shape}; expected ({n_wh},), one per "
                    "warehouse"
                )
            if not np.all(np.isfinite(self.capacity)) or np.any(self.capacity < 0):
                bad = self.capacity[~np.isfinite(self.capacity) | (self.capacity < 0)][0]
                raise ValueError(f"capacity={bad!r} is not allowed; expected finite values >= 0")

    @property
    def num_days(self) -> int:
        return self.demand.shape[0]

    @property
    def num_rows(self) -> int:
        return self.demand.shape[1]

    @property
    def warehouses(self) -> list[str]:
        """Warehouse ids in index order (sorted)."""
        return sorted(self.rows["warehouse"].astype(str).unique())

    @property
    def categories(self) -> list[str]:
        """Category ids in index order (sorted)."""
        return sorted(self.rows["category"].astype(str).unique())

    def warehouse_index(self) -> np.ndarray:
        """``[R]`` int32 warehouse index of each row."""
        lookup = {w: i for i, w in enumerate(self.warehouses)}
        return self.rows["warehouse"].astype(str).map(lookup).to_numpy(np.int32)

    def category_index(self) -> np.ndarray:
        """``[R]`` int32 category index of each row."""
        lookup = {c: i for i, c in enumerate(self.categories)}
        return self.rows["category"].astype(str).map(lookup).to_numpy(np.int32)

    def select_rows(self, index) -> InventoryData:
        """A data set restricted to the rows at positions ``index``."""
        index = np.asarray(index)
        rows = self.rows.iloc[index].reset_index(drop=True)
        capacity = self.capacity
        if capacity is not None:
            old = self.warehouses
            kept = sorted(rows["warehouse"].astype(str).unique())
            capacity = capacity[[old.index(w) for w in kept]]
        return dataclasses.replace(
            self,
            demand=self.demand[:, index],
            promo=self.promo[:, index],
            rows=rows,
            capacity=capacity,
        )


def lead_time_probs_from_moments(mean, std, max_lead_time: int) -> np.ndarray:
    """Discretised, truncated normal lead-time distribution on 1..max_lead_time.

    ``P(L = l)`` is proportional to the normal mass on ``[l - 1/2, l + 1/2)``; a row with
    ``std`` below 0.05 day is a point mass at ``round(mean)``.

    Args:
        mean: ``[R]`` mean lead times (days, in [1, max_lead_time]).
        std: ``[R]`` standard deviations (days, >= 0).
        max_lead_time: largest lead time.

    Returns:
        ``[R, max_lead_time]`` probabilities of L = 1..max_lead_time.
    """
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    ls = np.arange(1, max_lead_time + 1, dtype=np.float64)
    sd = np.maximum(std, 0.05)[:, None]
    hi = stats.norm.cdf((ls[None, :] + 0.5 - mean[:, None]) / sd)
    lo = stats.norm.cdf((ls[None, :] - 0.5 - mean[:, None]) / sd)
    hi[:, -1] = 1.0  # fold the upper tail into max_lead_time
    lo[:, 0] = 0.0  # and the lower tail into 1
    probs = hi - lo
    point = np.clip(np.round(mean), 1, max_lead_time).astype(int)
    det = std < 0.05
    probs[det] = 0.0
    probs[det, point[det] - 1] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def _lead_time_moments(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rows' lead-time mean and std, checked (mean >= 1, std >= 0, finite)."""
    lt_mean = rows["lead_time_mean"].to_numpy(np.float64)
    lt_std = rows["lead_time_std"].to_numpy(np.float64)
    if np.any(~np.isfinite(lt_mean)) or np.any(lt_mean < 1):
        bad = lt_mean[~np.isfinite(lt_mean) | (lt_mean < 1)][0]
        raise ValueError(f"lead_time_mean={bad!r} is not allowed; expected values >= 1")
    if np.any(~np.isfinite(lt_std)) or np.any(lt_std < 0):
        bad = lt_std[~np.isfinite(lt_std) | (lt_std < 0)][0]
        raise ValueError(f"lead_time_std={bad!r} is not allowed; expected values >= 0")
    return lt_mean, lt_std


def env_from_data(
    data: InventoryData,
    *,
    start: int = 0,
    num_days: int | None = None,
    history_length: int = 28,
    promo_lookahead: int | None = None,
    max_lead_time: int | None = None,
    stochastic_lead_time: bool = True,
    backorder: bool = False,
    relaxed: bool = False,
    initial_days_of_cover: float | np.ndarray | None = None,
) -> tuple[InventoryEnv, SimParams]:
    """Builds an env that replays ``data`` from day ``start``.

    The ``history_length`` days before ``start`` seed the sales window (so ``start``
    must be at least ``history_length``, or the window is padded with the first days).
    The initial stock covers ``initial_days_of_cover`` days of the recent mean demand
    (default: the row's mean lead time + review period).

    Args:
        data: the data set.
        start: first simulated day (index into the panel).
        num_days: days replayed (default: to the end of the panel).
        history_length: sales-window length H of the observation.
        promo_lookahead: promotion look-ahead P of the observation (default: the longest
            mean lead time plus the longest review period of the rows, at least 7, so an
            order placed today sees every promotion it can still serve).
        max_lead_time: ring size - 1 (default: the largest lead time the rows can draw).
        stochastic_lead_time: draw L per order from the row's (mean, std); otherwise use
            the rounded mean as a fixed per-row L.
        backorder: backlog unmet demand instead of losing it.
        relaxed: smooth surrogates for gradients.
        initial_days_of_cover: scalar or ``[R]`` days of cover on hand at day 0.

    Returns:
        ``(env, params)``.

    Raises:
        ValueError: a window outside the panel or invalid row attributes.
    """
    t_total = data.num_days
    if not 0 <= start < t_total:
        raise ValueError(f"start={start} is not allowed; expected an integer in [0, {t_total})")
    if num_days is None:
        num_days = t_total - start
    if not 1 <= num_days <= t_total - start:
        raise ValueError(
            f"num_days={num_days} is not allowed; expected an integer in [1, {t_total - start}]"
        )
    rows = data.rows
    lt_mean, lt_std = _lead_time_moments(rows)
    if max_lead_time is None:
        spread = np.where(lt_std >= 0.05, 3.0 * lt_std, 0.0) if stochastic_lead_time else 0.0
        max_lead_time = int(np.ceil(np.max(np.round(lt_mean) + spread)))
    review = rows["review_period"].to_numpy()
    if promo_lookahead is None:
        promo_lookahead = max(7, int(np.ceil(np.max(lt_mean))) + int(np.max(review)))
    warehouses = data.warehouse_index()
    num_wh = len(data.warehouses)
    flags = {
        "use_review": bool(np.any(review > 1)),
        "use_case_pack": bool(np.any(rows["case_pack"].to_numpy() > 1)),
        "use_moq": bool(np.any(rows["moq"].to_numpy() > 0)),
        "use_max_order": bool(np.any(np.isfinite(rows["max_order"].to_numpy()))),
        "use_capacity": data.capacity is not None,
        "use_promotions": bool(np.any(data.promo > 0)),
    }
    config = SimConfig(
        num_rows=data.num_rows,
        num_warehouses=num_wh,
        max_lead_time=max_lead_time,
        history_length=history_length,
        promo_lookahead=promo_lookahead,
        lead_time_mode="stochastic" if stochastic_lead_time else "per_row",
        demand_mode="trace",
        backorder=backorder,
        relaxed=relaxed,
        **flags,
    )
    lo = start - history_length
    idx = np.clip(np.arange(lo, start), 0, t_total - 1)
    history = data.demand[idx] if start > 0 else np.repeat(data.demand[:1], history_length, 0)
    recent = history.mean(axis=0)
    cover = (
        np.round(lt_mean) + review if initial_days_of_cover is None else initial_days_of_cover
    )
    start_date = data.start_date + pd.Timedelta(days=start)
    max_order = rows["max_order"].to_numpy(np.float64)
    fields = dict(
        holding_cost=rows["holding_cost"].to_numpy(),
        penalty_cost=rows["penalty_cost"].to_numpy(),
        fixed_order_cost=rows["fixed_order_cost"].to_numpy(),
        purchase_cost=rows["purchase_cost"].to_numpy(),
        review_period=review,
        review_offset=rows["review_offset"].to_numpy(),
        lead_time=np.clip(np.round(lt_mean), 1, max_lead_time),
        moq=rows["moq"].to_numpy(),
        case_pack=rows["case_pack"].to_numpy(),
        max_order=np.where(np.isfinite(max_order), max_order, 1e9),
        warehouse=warehouses,
        category=data.category_index(),
        initial_on_hand=np.round(recent * cover),
        initial_sales_history=history,
        demand_trace=data.demand[start : start + num_days],
        promo_calendar=(
            data.promo[start : start + num_days] if flags["use_promotions"] else 0.0
        ),
        base_demand=recent,
        start_day_of_year=int(start_date.day_of_year - 1) % 365,
        start_day_of_week=int(start_date.day_of_week),
    )
    if stochastic_lead_time:
        fields["lead_time_probs"] = lead_time_probs_from_moments(lt_mean, lt_std, max_lead_time)
    if data.capacity is not None:
        fields["capacity"] = data.capacity
    params = make_params(config, **fields)
    return InventoryEnv(config), params
