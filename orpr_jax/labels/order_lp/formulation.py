"""Order-quantity labels from a sample-average-approximation (SAA) ordering LP: the model.

A second OR model beside the inventory-days labeller (:mod:`orpr_jax.labels.labeller`):
for the ``N`` rows of one warehouse (padded with inactive rows to a fixed ``N``, so one
canonicalised problem serves every warehouse and date) it plans orders over the next
``H`` days against ``S`` demand scenarios. The first day's order of each row is the label;
the other days are the plan.

Per problem, with rows ``i < N``, days ``t < H`` (``t = 0`` is today) and scenarios
``s < S``:

.. math::

    \\min_{q, a, I, l}\\; \\frac{1}{S} \\sum_{s,i,t} \\left(h_i I_{sit} + p_i l_{sit}\\right)
        + \\sum_{i,t} c_i q_{it}

    \\text{s.t.}\\quad I_{sit} = I_{si,t-1} + b_{it} + a_{it} - d_{sit} + l_{sit},
    \\quad I_{si,-1} = 0,

    a_{it} = q_{i,t-L_i} \\;(0 \\text{ for } t < L_i),\\quad
    0 \\le q_{it} \\le u_{it},\\quad \\sum_i q_{it} \\le \\mathrm{cap}_t,\\quad I, l \\ge 0,

with the simulator's day conventions (:mod:`orpr_jax.sim.dynamics`): the state at the
start of a day is post-arrival, so ``b[i, 0]`` is today's on-hand stock (plus
``arrivals[i, 0]``, normally 0) and ``b[i, t]`` for ``t >= 1`` the pipeline units due on
day ``t``; an order placed on day ``t`` is sold from day ``t + L_i`` on (orders arriving
at or after ``H`` are dropped, so the LP places none); ``I`` is end-of-day stock and ``l``
lost units. ``u[i, t] = review_mask[i, t] * 1[t + L_i < H] * min(max_order_i,
max_s sum_t d[s, i, t])``: the mask forces orders to 0 on non-review days and on days whose
orders would arrive after the horizon, and the demand bound (never binding at an optimum,
as no order can sell more than the whole horizon's demand) keeps the LP bounded and well
scaled. Case packs and MOQs are relaxed (continuous ``q``); fixed order costs are
not modelled; the LP value is the exact SAA cost of its plan
(:mod:`orpr_jax.labels.order_lp.plan`).

DPP encoding. Every number is a ``cvxpy.Parameter``; the per-row lead time enters as a
one-hot parameter ``lead[i, k-1] = 1[L_i = k]`` and ``a = sum_k lead[:, k-1] * (q Z_k)``
with constant shift matrices ``Z_k`` (a parameter times an affine expression, which is
DPP); lost units are eliminated through the stock balance (see :func:`_formulate`).

This module writes the cvxpy problem: :func:`_formulate` builds it with Parameters (the
DPP template of :class:`~orpr_jax.labels.order_lp.lp.OrderLP`) or with NumPy constants
(a fresh problem), and :func:`_values` gives a batch's parameter values.

References:
    Shapiro, A., Dentcheva, D. and Ruszczynski, A. "Lectures on Stochastic Programming",
    SIAM, 2009 (sample average approximation).
    Agrawal, A. et al. "Differentiable convex optimization layers." NeurIPS 2019
    (disciplined parametrized programming, cvxpylayers).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import cvxpy as cp
import numpy as np
import scipy.sparse as sps

from orpr_jax.labels.order_lp.plan import _Host

_PARAMETER_NAMES = ("supply", "demand", "lead", "upper", "cap", "h", "p", "c")
"""Keys of the LP's data in layer order (see :func:`_formulate` and :func:`_values`)."""


class _Template(NamedTuple):
    problem: cp.Problem
    parameters: tuple[Any, ...]  # supply, demand, lead, upper, cap, h, p, c
    q: cp.Variable  # [N, H]
    inv: cp.Variable  # [S*N, H], row s*N + i


@functools.lru_cache(maxsize=None)
def _shift(h: int, k: int) -> sps.csc_matrix:
    """``[H, H]`` constant with ``(x @ Z)[:, t] = x[:, t - k]`` (0 for ``t < k``)."""
    return sps.eye(h, h, k, format="csc")


def _formulate(n: int, h: int, s: int, k_max: int, values: dict[str, np.ndarray] | None
               ) -> _Template:
    """The LP with Parameters (``values=None``) or with NumPy constants.

    Lost units are eliminated (a third fewer variables, ~1.4x faster Clarabel solves):
    ``l = net - b + d`` with ``net = I_t - I_{t-1} - a_t``, so ``l >= 0`` reads
    ``net >= b - d`` and ``p l`` enters the objective as ``p net`` (the constant
    ``p (d - b)``, a parameter product that DPP forbids, is left out: it does not move the
    argmin, and the objective is recomputed on the host).
    """
    if values is None:
        data: dict[str, Any] = {
            "supply": cp.Parameter((n, h), name="supply"),
            "demand": cp.Parameter((s * n, h), nonneg=True, name="demand"),
            "lead": cp.Parameter((n, k_max), nonneg=True, name="lead_one_hot"),
            "upper": cp.Parameter((n, h), nonneg=True, name="upper"),
            "cap": cp.Parameter(h, nonneg=True, name="capacity"),
            "h": cp.Parameter(n, nonneg=True, name="holding_cost"),
            "p": cp.Parameter(n, nonneg=True, name="penalty_cost"),
            "c": cp.Parameter(n, nonneg=True, name="purchase_cost"),
        }
    else:
        data = values
    q = cp.Variable((n, h), nonneg=True, name="orders")
    arr = cp.Variable((n, h), name="arrivals")
    inv = cp.Variable((s * n, h), nonneg=True, name="end_stock")
    lead = data["lead"]
    # Lags >= H arrive after the horizon: no term (their one-hot column is inert).
    # (With H = 1 the one lag-1 term is identically 0; it keeps ``lead`` in the problem.)
    terms = [cp.multiply(lead[:, k - 1:k], q @ _shift(h, k))
             for k in range(1, max(1, min(k_max, h - 1)) + 1)]
    arr_def = arr == functools.reduce(lambda x, y: x + y, terms)
    supply = data["supply"]
    if s > 1:
        arr_rep = cp.vstack([arr] * s)
        supply_rep = np.tile(supply, (s, 1)) if values is not None else cp.vstack([supply] * s)
    else:
        arr_rep, supply_rep = arr, supply
    net = inv - inv @ _shift(h, 1) - arr_rep  # = b - d + l, per scenario
    constraints = [
        arr_def,
        net >= supply_rep - data["demand"],  # l >= 0
        q <= data["upper"],
        cp.sum(q, axis=0) <= data["cap"],
    ]
    mean_rows = sps.hstack([sps.eye(n)] * s, format="csr") / s  # [N, S*N] scenario mean
    objective = (
        data["h"] @ (mean_rows @ cp.sum(inv, axis=1))
        + data["p"] @ (mean_rows @ cp.sum(net, axis=1))
        + data["c"] @ cp.sum(q, axis=1)
    )
    problem = cp.Problem(cp.Minimize(objective), constraints)
    params = tuple(data[k] for k in _PARAMETER_NAMES)
    return _Template(problem, params, q, inv)


def _values(hb: _Host, idx: np.ndarray, k_max: int, scaled: bool) -> tuple[np.ndarray, ...]:
    """Parameter values ``(supply, demand, lead, upper, cap, h, p, c)`` of problems ``idx``."""
    qs = hb.qscale[idx] if scaled else np.ones(len(idx))
    cs = hb.cscale[idx] if scaled else np.ones(len(idx))
    b = len(idx)
    _, s, n, h = hb.demand.shape
    lead = np.zeros((b, n, k_max))
    np.put_along_axis(lead, hb.lead[idx][..., None] - 1, 1.0, axis=-1)
    return (
        hb.supply[idx] / qs[:, None, None],
        hb.demand[idx].reshape(b, s * n, h) / qs[:, None, None],
        lead,
        hb.upper[idx] / qs[:, None, None],
        hb.cap[idx] / qs[:, None],
        hb.h[idx] / cs[:, None],
        hb.p[idx] / cs[:, None],
        hb.c[idx] / cs[:, None],
    )
