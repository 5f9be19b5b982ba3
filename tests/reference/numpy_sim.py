"""Independent NumPy reference of the inventory simulator (plain loops, float64).

Written from the day conventions of the specification, not from ``orpr_jax.sim.dynamics``,
so the parity tests compare two independent implementations. Clarity over speed: the
loops run over days and rows one at a time.

Conventions (row i, day t; the state at the start of a day is post-arrival):

* review day iff review is off or ``(t - offset_i) mod period_i == 0``;
* order pipeline for a request x: non-finite -> 0, ``max(x, 0)``, 0 off review days,
  round half to even, case pack (round up; the MOQ becomes a whole number of packs),
  MOQ raise for orders >= 1, max order cap (whole packs), then warehouse capacity
  (scale by ``min(1, capacity / total)`` in float32, floor to units or packs, drop
  orders below the MOQ);
* an order with lead time L is due at the start of day t + L;
* demand: outstanding = backlog + d, sales = min(on hand, outstanding), unmet = the rest
  (lost, or the new backlog in backorder mode); filled = min(max(on hand - backlog, 0), d);
  in stock iff on hand - backlog > 0;
* costs: h * end-of-day on hand + p * unmet + K * 1[order > 0.5] + c * order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

OUTCOME_FIELDS = (
    "demand",
    "sales",
    "filled",
    "unmet",
    "order",
    "order_placed",
    "arrivals",
    "on_hand_end",
    "in_stock",
    "holding_cost",
    "penalty_cost",
    "ordering_cost",
    "purchase_cost",
    "cost",
)

_CONFIG_DEFAULTS = {
    "num_warehouses": 1,
    "max_lead_time": 14,
    "lead_time_mode": "per_row",
    "backorder": False,
    "use_review": False,
    "use_case_pack": False,
    "use_moq": False,
    "use_max_order": False,
    "use_capacity": False,
}


def _cfg(cfg: Any, name: str):
    """Reads a config entry from a SimConfig-like object or a mapping."""
    if isinstance(cfg, Mapping):
        if name in cfg:
            return cfg[name]
        return _CONFIG_DEFAULTS[name]
    return getattr(cfg, name)


def params_to_numpy(params: Any) -> dict[str, np.ndarray]:
    """A dict of float64 / int64 NumPy arrays from a SimParams (or a mapping)."""
    if isinstance(params, Mapping):
        items = params.items()
    else:
        items = ((f.name, getattr(params, f.name)) for f in dataclasses.fields(params))
    out = {}
    for name, value in items:
        arr = np.asarray(value)
        if np.issubdtype(arr.dtype, np.integer):
            out[name] = arr.astype(np.int64)
        else:
            out[name] = arr.astype(np.float64)
    return out


def base_stock_policy(level) -> Callable:
    """Reference base-stock policy: order ``max(0, level - inventory position)``."""
    level = np.asarray(level, dtype=np.float64)

    def policy(day, on_hand, backlog, pipeline_total, **_):
        position = on_hand - backlog + pipeline_total
        return np.maximum(level - position, 0.0)

    return policy


def is_review_day(cfg, p, t: int, i: int) -> bool:
    """True when day ``t`` is a review day of row ``i``."""
    if not _cfg(cfg, "use_review"):
        return True
    period = int(p["review_period"][i])
    offset = int(p["review_offset"][i])
    return (t - offset) % period == 0  # Python's % is non-negative for period > 0


def constrain_orders(cfg, p, requests, t: int) -> np.ndarray:
    """The order actually placed by each row on day ``t`` for the ``requests`` ``[R]``."""
    num_rows = len(requests)
    use_cp = bool(_cfg(cfg, "use_case_pack"))
    use_moq = bool(_cfg(cfg, "use_moq"))
    q = np.zeros(num_rows)
    moq_eff = np.zeros(num_rows)
    for i in range(num_rows):
        x = float(requests[i])
        # 1. non-finite -> 0; negative -> 0; off review days -> 0.
        if not math.isfinite(x):
            x = 0.0
        x = max(x, 0.0)
        if not is_review_day(cfg, p, t, i):
            x = 0.0
        # 2. whole units, round half to even.
        x = float(np.round(x))
        # 3. case pack: round up to whole packs; the MOQ becomes whole packs too.
        moq = float(p["moq"][i])
        if use_cp:
            cp = float(p["case_pack"][i])
            x = cp * math.ceil(x / cp)
            moq = cp * math.ceil(moq / cp)
        moq_eff[i] = moq
        # 4. MOQ: a placed order (at least one unit) is raised to the MOQ.
        if use_moq and x >= 1.0 and x < moq:
            x = moq
        # 5. max order: capped at the largest whole number of packs <= max_order.
        if _cfg(cfg, "use_max_order"):
            cap = float(p["max_order"][i])
            if use_cp:
                cp = float(p["case_pack"][i])
                cap = cp * math.floor(cap / cp)
            x = min(x, cap)
        q[i] = x
    # 6. shared warehouse inbound capacity (float32 arithmetic, as on the device).
    if _cfg(cfg, "use_capacity"):
        num_w = int(_cfg(cfg, "num_warehouses"))
        warehouse = p["warehouse"]
        totals = [0.0] * num_w
        for i in range(num_rows):
            totals[int(warehouse[i])] += q[i]
        scales = []
        for w in range(num_w):
            total = totals[w] if totals[w] > 0 else 1.0
            ratio = np.float32(p["capacity"][w]) / np.float32(total)
            scales.append(min(np.float32(1.0), ratio))
        for i in range(num_rows):
            scaled = np.float32(q[i]) * np.float32(scales[int(warehouse[i])])
            if use_cp:
                cp = np.float32(p["case_pack"][i])
                scaled = cp * np.floor(np.float32(scaled / cp))
            else:
                scaled = np.floor(scaled)
            x = float(scaled)
            if use_moq and not (x - moq_eff[i] + 0.5 > 0):
                x = 0.0
            q[i] = x
    return q


def _lead_times(cfg, p, lead, num_days: int, num_rows: int) -> np.ndarray:
    """``[T, R]`` int lead times of the orders placed each day."""
    if lead is None:
        if _cfg(cfg, "lead_time_mode") == "stochastic":
            raise ValueError("stochastic lead times must be given as lead[T, R]")
        fixed = np.broadcast_to(np.asarray(p["lead_time"]).reshape(-1), (num_rows,))
        lead = np.broadcast_to(fixed, (num_days, num_rows))
    lead = np.asarray(lead)
    if lead.ndim == 1:  # shared mode: one lead time per day
        lead = np.broadcast_to(lead[:, None], (num_days, num_rows))
    lead = np.broadcast_to(lead, (num_days, num_rows)).astype(np.int64)
    max_lead = int(_cfg(cfg, "max_lead_time"))
    if lead.min() < 1 or lead.max() > max_lead:
        raise ValueError(f"lead times must lie in [1, {max_lead}]")
    return lead


def simulate(
    cfg,
    p,
    demand,
    lead=None,
    requests=None,
    policy: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Simulates ``T`` days for ``R`` rows.

    Args:
        cfg: a SimConfig or a mapping with the same entries (switches, ``max_lead_time``,
            ``num_warehouses``, ``lead_time_mode``).
        p: a SimParams or a mapping of its fields (see :func:`params_to_numpy`).
        demand: ``[T, R]`` exogenous demand.
        lead: ``[T, R]`` (or ``[T]``) integer lead times of each day's order; ``None``
            uses the fixed ``p["lead_time"]``.
        requests: ``[T, R]`` raw order requests (any real, NaN included).
        policy: alternatively ``policy(day, on_hand, backlog, pipeline_total) -> [R]``
            called on the post-arrival state of each day.

    Returns:
        A dict with each outcome field as ``[T, R]``; ``on_hand_start``, ``backlog_start``,
        ``pipeline_total_start`` and ``inventory_position`` (``[T, R]``, start of each
        day); and the final state ``on_hand``, ``backlog``, ``pipeline_total`` (``[R]``)
        and ``pipeline`` (``[R, max_lead_time]``, units due in 1..max_lead_time days).
    """
    if (requests is None) == (policy is None):
        raise ValueError("give exactly one of requests and policy")
    p = params_to_numpy(p)
    demand = np.asarray(demand, dtype=np.float64)
    num_days, num_rows = demand.shape
    max_lead = int(_cfg(cfg, "max_lead_time"))
    backorder = bool(_cfg(cfg, "backorder"))
    lead = _lead_times(cfg, p, lead, num_days, num_rows)
    if requests is not None:
        requests = np.asarray(requests, dtype=np.float64)

    h = np.broadcast_to(p["holding_cost"], (num_rows,))
    pen = np.broadcast_to(p["penalty_cost"], (num_rows,))
    fixed_cost = np.broadcast_to(p["fixed_order_cost"], (num_rows,))
    unit_cost = np.broadcast_to(p["purchase_cost"], (num_rows,))

    # due[d, i]: units of row i due at the start of absolute day d.
    due = np.zeros((num_days + max_lead + 1, num_rows))
    init_pipe = p["initial_pipeline"]
    for k in range(max_lead + 1):
        due[k] += init_pipe[k]

    out = {name: np.zeros((num_days, num_rows)) for name in OUTCOME_FIELDS}
    for name in ("on_hand_start", "backlog_start", "pipeline_total_start", "inventory_position"):
        out[name] = np.zeros((num_days, num_rows))

    on_hand = np.array(p["initial_on_hand"], dtype=np.float64) + due[0]
    backlog = np.zeros(num_rows)
    arrivals_today = due[0].copy()
    due[0] = 0.0

    for t in range(num_days):
        pipeline_total = due[t + 1 :].sum(axis=0)
        out["on_hand_start"][t] = on_hand
        out["backlog_start"][t] = backlog
        out["pipeline_total_start"][t] = pipeline_total
        out["inventory_position"][t] = on_hand - backlog + pipeline_total

        if policy is not None:
            req = np.asarray(
                policy(t, on_hand.copy(), backlog.copy(), pipeline_total.copy()),
                dtype=np.float64,
            )
            req = np.broadcast_to(req, (num_rows,))
        else:
            req = requests[t]
        q = constrain_orders(cfg, p, req, t)

        new_on_hand = np.zeros(num_rows)
        new_backlog = np.zeros(num_rows)
        for i in range(num_rows):
            d = demand[t, i]
            outstanding = backlog[i] + d
            sales = min(on_hand[i], outstanding)
            unmet = outstanding - sales
            end = on_hand[i] - sales
            net = on_hand[i] - backlog[i]
            placed = 1.0 if q[i] > 0.5 else 0.0
            holding = h[i] * end
            penalty = pen[i] * unmet
            ordering = fixed_cost[i] * placed
            purchase = unit_cost[i] * q[i]
            row = {
                "demand": d,
                "sales": sales,
                "filled": min(max(net, 0.0), d),
                "unmet": unmet,
                "order": q[i],
                "order_placed": placed,
                "arrivals": arrivals_today[i],
                "on_hand_end": end,
                "in_stock": 1.0 if net > 0 else 0.0,
                "holding_cost": holding,
                "penalty_cost": penalty,
                "ordering_cost": ordering,
                "purchase_cost": purchase,
                "cost": holding + penalty + ordering + purchase,
            }
            for name, value in row.items():
                out[name][t, i] = value
            # Today's order is due at the start of day t + L.
            due[t + int(lead[t, i]), i] += q[i]
            new_on_hand[i] = end
            new_backlog[i] = unmet if backorder else 0.0

        # Day t + 1 starts: its arrivals go on hand.
        arrivals_today = due[t + 1].copy()
        due[t + 1] = 0.0
        on_hand = new_on_hand + arrivals_today
        backlog = new_backlog

    out["on_hand"] = on_hand
    out["backlog"] = backlog
    out["pipeline_total"] = due[num_days + 1 :].sum(axis=0)
    pipeline = np.zeros((num_rows, max_lead))
    for k in range(1, max_lead + 1):
        pipeline[:, k - 1] = due[num_days + k]
    out["pipeline"] = pipeline
    return out


def simulate_lost_sales_poisson(
    level: float,
    mean: float,
    L: int,
    h: float,
    p: float,
    days: int,
    rows: int,
    seed: int,
    warmup: int = 50,
    initial_on_hand: float = 0.0,
) -> dict[str, Any]:
    """Classic lost-sales model under base-stock with its own Poisson demand.

    Each day: order ``max(0, level - on hand - on order)`` (due at the start of day t+L),
    then Poisson(mean) demand, lost when short; cost ``h * end stock + p * lost units``.
    Rows are independent replications (vectorised over rows, a loop over days).

    Returns:
        ``{"cost_per_row_day": float, "per_row": [rows] cost per day of each row}`` over
        days ``warmup..days``.
    """
    rng = np.random.default_rng(seed)
    ring = np.zeros((L + 1, rows))  # slot (t + L) mod (L + 1): units due on day t + L
    on_hand = np.full(rows, float(initial_on_hand))
    cost = np.zeros(rows)
    for t in range(days):
        on_order = ring.sum(axis=0)
        q = np.maximum(level - on_hand - on_order, 0.0)
        ring[(t + L) % (L + 1)] += q
        d = rng.poisson(mean, size=rows)
        sales = np.minimum(on_hand, d)
        lost = d - sales
        on_hand = on_hand - sales
        if t >= warmup:
            cost += h * on_hand + p * lost
        slot = (t + 1) % (L + 1)
        on_hand = on_hand + ring[slot]
        ring[slot] = 0.0
    per_row = cost / (days - warmup)
    return {"cost_per_row_day": float(per_row.mean()), "per_row": per_row}
