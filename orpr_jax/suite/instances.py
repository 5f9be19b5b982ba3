"""The instance grid of the classic lost-sales benchmark.

Zipkin (2008a) and the papers that followed (Xin 2021; Temizoz et al. 2025): one item,
demand with mean 5 per day, Poisson or geometric on {0, 1, 2, ...}, holding cost h = 1
per unit left at the end of a day, lost-sales penalty p in {4, 9, 19, 39}, an order
placed on day t sold from day t + L on, L in {1, 2, 3, 4, 6, 8, 10}: 2 x 4 x 7 = 56
instances. In the simulator geometric demand is the negative binomial with shape 1
(``orpr_jax.make("lost_sales", demand="negbin", dispersion=1.0)``), whose law is
``P(d = k) = (1 - q) q^k`` with ``q = mu / (1 + mu) = 5 / 6``.

References:
    Zipkin, P. (2008a). Old and new methods for lost-sales inventory systems. Operations
    Research 56(5), 1256-1263.
"""

from __future__ import annotations

import dataclasses

from orpr_jax.scenarios import make_lost_sales
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimParams

DEMANDS = ("poisson", "geometric")
PENALTIES = (4.0, 9.0, 19.0, 39.0)
LEAD_TIMES = (1, 2, 3, 4, 6, 8, 10)
#: Lead times with an exact reference (value iteration); above them, published costs.
EXACT_LEAD_TIMES = (1, 2, 3, 4)
DEMAND_MEAN = 5.0
HOLDING_COST = 1.0


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance of the grid (use :func:`instance` to build a checked one).

    Attributes:
        demand: ``"poisson"`` or ``"geometric"``.
        lost_sales_cost: p.
        lead_time: L (days).
        demand_mean: mu (5 in the grid).
        holding_cost: h (1 in the grid).
    """

    demand: str
    lost_sales_cost: float
    lead_time: int
    demand_mean: float = DEMAND_MEAN
    holding_cost: float = HOLDING_COST

    @property
    def exact(self) -> bool:
        """True when the lead time is small enough for the exact chain (L <= 4)."""
        return self.lead_time in EXACT_LEAD_TIMES

    @property
    def name(self) -> str:
        return f"{self.demand}-p{self.lost_sales_cost:g}-L{self.lead_time}"

    def make(self, num_rows: int) -> tuple[InventoryEnv, SimParams]:
        """The simulator's ``(env, params)`` of this instance with ``num_rows`` rows."""
        extra = {"demand": "negbin", "dispersion": 1.0} if self.demand == "geometric" else {}
        return make_lost_sales(num_rows, lead_time=self.lead_time,
                               demand_mean=self.demand_mean, holding_cost=self.holding_cost,
                               lost_sales_cost=self.lost_sales_cost, **extra)


def instance(demand: str, lost_sales_cost: float, lead_time: int) -> Instance:
    """The suite's instance ``(demand, p, L)``.

    Raises:
        ValueError: a demand, penalty or lead time outside the suite (named).
    """
    if demand not in DEMANDS:
        raise ValueError(f"demand={demand!r} is not in the suite; use one of {DEMANDS}")
    if (isinstance(lost_sales_cost, bool) or not isinstance(lost_sales_cost, (int, float))
            or float(lost_sales_cost) not in PENALTIES):
        raise ValueError(f"lost_sales_cost={lost_sales_cost!r} is not in the suite; use one "
                         f"of {PENALTIES}")
    if isinstance(lead_time, bool) or not isinstance(lead_time, int) or lead_time not in LEAD_TIMES:
        raise ValueError(f"lead_time={lead_time!r} is not in the suite; use one of {LEAD_TIMES}")
    return Instance(demand, float(lost_sales_cost), lead_time)


def instances(demands=DEMANDS, penalties=PENALTIES, lead_times=LEAD_TIMES) -> list[Instance]:
    """The grid (default all 56 instances), demand-major, then p, then L; each checked."""
    return [instance(d, p, lt) for d in demands for p in penalties for lt in lead_times]
