"""Host replay of order plans: the batch's derived arrays, lost sales, costs, checks.

:func:`_host` turns validated inputs into float64 arrays in original units (padding rows
neutralised, order bounds and scales derived); :func:`plan_costs` replays a plan with lost
sales in every scenario; :func:`_violation` and :func:`_finish` check and clip an LP
solution.

The lost-sales linearisation of the LP (:mod:`orpr_jax.labels.order_lp.formulation`) is
exact for costs: for any fixed plan ``q`` with ``h >= 0`` and ``p > 0`` the cheapest
``(I, l)`` is the lost-sales recursion (losing a unit more than necessary costs ``p`` and
can save at most ``p`` later), so the LP value is the SAA cost of its own plan replayed
through the simulator (:func:`plan_costs`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from orpr_jax.labels.order_lp.inputs import (
    OrderLPInputs,
    _as_float,
    _check_shape,
    _check_values,
    _validated,
)

__all__ = ["plan_costs"]


class _Host(NamedTuple):
    """Float64 arrays of a validated batch in original units, padding rows neutralised."""

    supply: np.ndarray  # [B, N, H] on hand (day 0) + arrivals
    demand: np.ndarray  # [B, S, N, H]
    lead: np.ndarray  # [B, N] int64 in [1, H]
    upper: np.ndarray  # [B, N, H] order bound (0 off review days / inactive rows)
    cap: np.ndarray  # [B, H] finite capacity
    h: np.ndarray  # [B, N]
    p: np.ndarray  # [B, N] > 0
    c: np.ndarray  # [B, N]
    active: np.ndarray  # [B, N] bool
    qscale: np.ndarray  # [B] > 0, largest supply or demand
    cscale: np.ndarray  # [B] > 0, largest cost of an active row


def _host(inputs: OrderLPInputs) -> _Host:
    x = _validated(inputs)
    if not x.batched:
        x = jax.tree.map(lambda a: a[None], x)
    act = x.active
    a3 = act[..., None]
    supply = np.where(a3, x.arrivals, 0.0)
    supply[..., 0] += np.where(act, x.on_hand, 0.0)
    demand = np.where(act[:, None, :, None], x.demand, 0.0)
    horizon_demand = demand.sum(axis=-1).max(axis=1)  # [B, N]
    # An order arriving at or after day H is dropped: fix it to 0 (else free when c = 0).
    arrives = np.arange(x.demand.shape[-1]) + x.lead_time[..., None] < x.demand.shape[-1]
    upper = np.where(a3 & arrives, x.review_mask, 0.0) * np.minimum(
        np.where(act, x.max_order, 0.0), horizon_demand)[..., None]
    cap = np.minimum(x.capacity, upper.sum(axis=1))
    qscale = np.maximum(supply.max(axis=(1, 2)), demand.max(axis=(1, 2, 3)))
    qscale = np.where(qscale > 0, qscale, 1.0)
    costs = np.where(a3, np.stack([x.holding_cost, x.penalty_cost, x.purchase_cost], -1), 0.0)
    cscale = costs.max(axis=(1, 2))
    cscale = np.where(cscale > 0, cscale, 1.0)
    # Padding rows get positive h and p (scaled 1) so their I = l = 0 is the unique optimum.
    pad_cost = np.where(act, 0.0, cscale[:, None])
    return _Host(
        supply=supply, demand=demand, lead=np.where(act, x.lead_time, 1), upper=upper,
        cap=cap, h=np.where(act, x.holding_cost, 0.0) + pad_cost,
        p=np.where(act, x.penalty_cost, 0.0) + pad_cost,
        c=np.where(act, x.purchase_cost, 0.0), active=act, qscale=qscale, cscale=cscale,
    )


def _arrivals_of(orders: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """``[..., N, H]`` arrivals of ``orders [..., N, H]`` after ``lead [..., N]`` days."""
    h = orders.shape[-1]
    t = np.arange(h)
    src = t - lead[..., None]
    idx = np.clip(src, 0, h - 1)
    return np.where(src >= 0, np.take_along_axis(orders, idx, axis=-1), 0.0)


def _inflow(hb: _Host, orders: np.ndarray) -> np.ndarray:
    """``[B, 1, N, H]`` units coming in on each day: supply plus arrivals of ``orders``."""
    return hb.supply[:, None] + _arrivals_of(orders, hb.lead)[:, None]


def _previous_stock(inv: np.ndarray) -> np.ndarray:
    """``[..., H]`` end stock of the day before (``I_{t-1}``, 0 before day 0)."""
    return np.concatenate([np.zeros_like(inv[..., :1]), inv[..., :-1]], axis=-1)


def _lost_sales(hb: _Host, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lost-sales recursion: ``([B, S, N, H] end stock, [B, S, N, H] lost units)``."""
    avail_in = _inflow(hb, orders)
    stock = np.zeros(hb.demand.shape[:-1])
    ends, losts = np.zeros_like(hb.demand), np.zeros_like(hb.demand)
    for t in range(hb.demand.shape[-1]):
        avail = stock + avail_in[..., t]
        sales = np.minimum(avail, hb.demand[..., t])
        losts[..., t] = hb.demand[..., t] - sales
        stock = avail - sales
        ends[..., t] = stock
    return ends, losts


def _cost(hb: _Host, orders: np.ndarray, end: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """``[B, S]`` cost per scenario of active rows."""
    act = hb.active
    h = np.where(act, hb.h, 0.0)[:, None, :, None]
    p = np.where(act, hb.p, 0.0)[:, None, :, None]
    buy = (np.where(act, hb.c, 0.0)[..., None] * orders).sum(axis=(1, 2))
    return (h * end + p * lost).sum(axis=(2, 3)) + buy[:, None]


def plan_costs(inputs: OrderLPInputs, orders: Any) -> np.ndarray:
    """Exact SAA cost of an order plan, replayed with lost sales in every scenario.

    Orders of inactive rows are ignored; ``orders[i, t]`` arrives on day
    ``t + lead_time[i]`` if that is inside the horizon. The cost of each day is
    ``h * end-of-day stock + p * lost units + c * ordered units`` as in the simulator.

    Args:
        inputs: one problem or a batch.
        orders: ``[N, H]`` (or ``[B, N, H]``) plan, finite and >= 0.

    Returns:
        ``[S]`` (or ``[B, S]``) total cost over the horizon per scenario; the LP objective
        of an optimal plan is their mean.

    Raises:
        ValueError: invalid inputs, or orders of the wrong shape, non-finite or negative.
    """
    hb = _host(inputs)
    b, n, h, _ = inputs.shape
    q = _as_float("orders", orders)
    expected = (b, n, h) if inputs.batched else (n, h)
    _check_shape("orders", q, expected, "[B, N, H]" if inputs.batched else "[N, H]")
    _check_values("orders", q)
    q = np.where(hb.active[..., None], q.reshape(b, n, h), 0.0)
    cost = _cost(hb, q, *_lost_sales(hb, q))
    return cost if inputs.batched else cost[0]


def _violation(hb: _Host, q: np.ndarray, inv: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """``[B]`` largest constraint violation of a solution, relative to ``qscale``."""
    arr = _inflow(hb, q)
    prev = _previous_stock(inv)
    balance = np.abs(inv - prev - arr + hb.demand - lost).max(axis=(1, 2, 3))
    neg = np.maximum(0.0, -np.minimum(np.minimum(inv, lost).min(axis=(1, 2, 3)),
                                      q.min(axis=(1, 2))))
    over = np.maximum(0.0, (q - hb.upper).max(axis=(1, 2)))
    cap = np.maximum(0.0, (q.sum(axis=1) - hb.cap).max(axis=1))
    worst = np.maximum.reduce([balance, neg, over, cap])
    ok = np.isfinite(q).all(axis=(1, 2)) & np.isfinite(inv).all(axis=(1, 2, 3)) & np.isfinite(
        lost).all(axis=(1, 2, 3))
    return np.where(ok, worst / hb.qscale, np.inf)


def _finish(hb: _Host, q: np.ndarray, inv: np.ndarray, lost: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Clips a checked solution to its bounds; returns ``(orders, objective)``."""
    q = np.clip(q, 0.0, hb.upper)
    inv, lost = np.maximum(inv, 0.0), np.maximum(lost, 0.0)
    return q, _cost(hb, q, inv, lost).mean(axis=1)


def _lost_of(hb: _Host, q: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """``[B, S, N, H]`` lost units implied by a solution: ``I_t - I_{t-1} - b - a + d``."""
    prev = _previous_stock(inv)
    return inv - prev - hb.supply[:, None] - _arrivals_of(q, hb.lead)[:, None] + hb.demand


def _take(hb: _Host, idx: np.ndarray) -> _Host:
    """The problems ``idx`` of a batch."""
    return _Host(*(a[idx] for a in hb))
