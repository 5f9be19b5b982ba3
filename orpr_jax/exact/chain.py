"""The lost-sales Markov chain: its truncated state space, transition kernel and costs.

The model is the one :func:`orpr_jax.scenarios.make_lost_sales` simulates with
``demand="poisson"`` (or ``demand="negbin", dispersion=1.0``: geometric), no fixed or
purchase cost and one review per day (Zipkin 2008a).
On day t, in the simulator's order (:mod:`orpr_jax.sim.dynamics`):

1. the order placed on day t - L arrived at the start of the day; the decision state is
   ``s = (x, w_1, ..., w_{L-1})`` with x the stock on hand after that arrival and w_k the
   order placed on day t - L + k, due in k days (``obs.pipeline[:, k - 1]``);
2. the policy orders a >= 0 (it arrives at the start of day t + L);
3. demand d (Poisson(mu), or geometric on {0, 1, ...} with mean mu:
   ``P(d = k) = (1 - q) q^k``, ``q = mu / (1 + mu)``, what the simulator draws with
   ``demand="negbin", dispersion=1``) is served from stock: sales ``min(x, d)``, the rest
   is lost;
4. the day costs ``h (x - d)^+ + p (d - x)^+``; the next state is
   ``((x - d)^+ + w_1, w_2, ..., w_{L-1}, a)`` (for L = 1 simply ``(x - d)^+ + a``).

The space holds the states whose inventory position after ordering,
``x + w_1 + ... + w_{L-1} + a``, is at most ``S`` (see
:func:`orpr_jax.exact.value_iteration.lost_sales_optimum` for why this truncation is
exact; :func:`position_bound` is Morton's bound on S). Demand needs no truncation: the
next state and the day's cost depend on d only through ``min(d, x)``, so all d >= x are
one event of probability ``P(d >= x)``.

Vectorisation: with v stored as ``V[tail, z]`` (tail ``= (w_1, ..., w_{L-1})``, z the
on-hand stock), the expectation for every ``(next tail, incoming w, on hand x)`` is one
matrix product ``E = V @ K`` with a fixed kernel ``K[w, x, z] = P((x - d)^+ + w = z)``
(:mod:`orpr_jax.exact.rvi`). Everything is host-side NumPy (int64 / float64) here.

References:
    Morton, T. E. (1971). The near-myopic nature of the lagged-proportional-cost
    inventory problem with lost sales. Operations Research 19(7), 1708-1716.
    Zipkin, P. (2008a). Old and new methods for lost-sales inventory systems. Operations
    Research 56(5), 1256-1263.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy import stats

from orpr_jax.exact.validation import _check_lead_time, _check_positive


#: Largest ``tails x (A + 1) x (S + 1)`` product (entries of the expectation array ``E``)
#: accepted, so a mistaken argument fails fast instead of exhausting memory (~8 bytes
#: each, a few arrays of that size live at once).
MAX_ENTRIES = 100_000_000


# ----------------------------------------------------------------------------------------
# Host-side set-up.


class _Space(NamedTuple):
    """The truncated state space and the fixed arrays of the Bellman operator.

    Arrays (int64 / float64, host-side):
        tails: ``[N, L - 1]`` outstanding orders ``(w_1, ..., w_{L-1})``, each in
            ``[0, A]``, sum <= S (row 0 is the empty pipeline).
        w1: ``[N]`` w_1 (0 when L = 1).
        tail_sum: ``[N]`` sum of the tail.
        next_tail: ``[N, A + 1]`` row of ``(w_2, ..., w_{L-1}, a)``; 0 when L = 1 or
            where that tail is outside the space (masked).
        kernel: ``[A + 1, S + 1, S + 1]`` ``K[w, x, z] = P((x - d)^+ + w = z)``, zero where
            ``x + w > S``.
        cost: ``[S + 1]`` expected cost of a day that starts with x on hand.
    """

    lead_time: int
    max_on_hand: int
    max_order: int
    tails: np.ndarray
    w1: np.ndarray
    tail_sum: np.ndarray
    next_tail: np.ndarray
    kernel: np.ndarray
    cost: np.ndarray


#: Demand distributions of the exact solvers (both on {0, 1, 2, ...} with mean mu).
DEMANDS = ("poisson", "geometric")


def _check_demand(demand) -> str:
    if demand not in DEMANDS:
        raise ValueError(f"demand={demand!r} is not allowed; use one of {DEMANDS}")
    return demand


def _poisson(mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """pmf on 0..n-1 and ``P(d >= k)`` for k = 0..n-1 (float64, exact up to rounding)."""
    ks = np.arange(n)
    return stats.poisson.pmf(ks, mean), stats.poisson.sf(ks - 1, mean)


def _geometric(mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Geometric on {0, 1, ...} with ``mean``: pmf ``(1 - q) q^k`` and ``P(d >= k) = q^k``,
    ``q = mean / (1 + mean)`` (k = 0..n-1)."""
    q = mean / (1.0 + mean)
    ks = np.arange(n)
    return (1.0 - q) * q**ks, q**ks


def _demand_law(demand: str, mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pmf, P(d >= k))`` on k = 0..n-1 of the named demand."""
    return (_poisson if _check_demand(demand) == "poisson" else _geometric)(mean, n)


def _build_space(
    lead_time: int, max_on_hand: int, max_order: int, mean: float, h: float, p: float,
    demand: str = "poisson",
) -> _Space:
    s, a_max, n = max_on_hand, max_order, max_on_hand + 1
    pmf, tail = _demand_law(demand, mean, n)
    # Tails: (w_1..w_{L-1}) in [0, A]^(L-1) with sum <= S, in lexicographic order, so row 0
    # is the empty pipeline.
    if lead_time == 1:
        tails = np.zeros((1, 0), np.int64)
    else:
        grids = np.meshgrid(*([np.arange(a_max + 1)] * (lead_time - 1)), indexing="ij")
        tails = np.stack([g.reshape(-1) for g in grids], axis=1)
    tails = tails[tails.sum(axis=1) <= s].astype(np.int64)
    num = tails.shape[0]
    tail_sum = tails.sum(axis=1)
    w1 = tails[:, 0] if lead_time > 1 else np.zeros(num, np.int64)
    next_tail = np.zeros((num, a_max + 1), np.int64)
    if lead_time > 1:
        lookup = np.zeros((a_max + 1,) * (lead_time - 1), np.int64)
        lookup[tuple(tails.T)] = np.arange(num)
        for a in range(a_max + 1):
            nxt = np.concatenate([tails[:, 1:], np.full((num, 1), a)], axis=1)
            ok = nxt.sum(axis=1) <= s
            next_tail[ok, a] = lookup[tuple(nxt[ok].T)]
    # K[w, x, z]: the next on hand z = (x - d)^+ + w; all d >= x are the one event y = 0.
    kernel = np.zeros((a_max + 1, n, n))
    for w in range(a_max + 1):
        for x in range(n - w):
            kernel[w, x, w] += tail[x]
            d = np.arange(x)
            kernel[w, x, w + x - d] += pmf[d]
    ks = np.arange(n)
    # E(x - d)^+ and E(d - x)^+ = mu - x + E(x - d)^+, exactly.
    over = np.array([np.dot(x - ks[:x], pmf[:x]) for x in range(n)])
    cost = h * over + p * (mean - ks + over)
    return _Space(lead_time, s, a_max, tails, w1, tail_sum, next_tail, kernel, cost)


def position_bound(lead_time: int, lost_sales_cost: float, demand_mean: float = 5.0,
                   holding_cost: float = 1.0, demand: str = "poisson") -> int:
    """Morton's bound on the optimal inventory position after ordering.

    ``S = min{s : P(D_{L+1} <= s) >= p / (p + h)}`` with ``D_{L+1}`` the demand of the
    L + 1 days an order placed today is exposed to (today's order is first sold on day
    t + L, and the inventory position covers days t..t+L); the critical-fractile
    base-stock level of the same system with backorders. ``D_{L+1}`` is
    Poisson((L + 1) mu), or for geometric days negative binomial with L + 1 successes of
    probability ``1 / (1 + mu)`` (the sum of L + 1 geometrics, mean (L + 1) mu).

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        demand_mean: mu > 0.
        holding_cost: h > 0.
        demand: ``"poisson"`` or ``"geometric"``.

    Returns:
        S (units).

    Raises:
        ValueError: naming the first invalid argument.
    """
    _check_lead_time(lead_time)
    p = _check_positive("lost_sales_cost", lost_sales_cost)
    mu = _check_positive("demand_mean", demand_mean)
    h = _check_positive("holding_cost", holding_cost)
    if _check_demand(demand) == "geometric":
        return int(stats.nbinom.ppf(p / (p + h), lead_time + 1, 1.0 / (1.0 + mu)))
    return int(stats.poisson.ppf(p / (p + h), mu * (lead_time + 1)))


def _check_size(space_tails: int, acts: int, n: int, lead_time: int) -> None:
    entries = space_tails * acts * n
    if entries > MAX_ENTRIES:
        raise ValueError(
            f"lead_time={lead_time} with max_on_hand={n - 1} and max_order={acts - 1} is not "
            f"allowed: {entries:,} expectation entries exceed MAX_ENTRIES={MAX_ENTRIES:,}; "
            "lower max_on_hand or max_order"
        )


def _count_tails(lead_time: int, s: int, a_max: int) -> int:
    """Number of ``(w_1..w_{L-1})`` in ``[0, A]^(L-1)`` with sum <= S (no enumeration)."""
    counts = np.zeros(s + 1, np.int64)
    counts[0] = 1
    for _ in range(lead_time - 1):
        new = np.zeros_like(counts)
        for w in range(a_max + 1):
            new[w:] += counts[: s + 1 - w]
        counts = new
    return int(counts.sum())


def _device_arrays(space: _Space):
    return (
        jnp.asarray(space.tail_sum),
        jnp.asarray(space.w1),
        jnp.asarray(space.next_tail),
        jnp.asarray(space.kernel),
        jnp.asarray(space.cost),
    )


def _to_box(space: _Space, values: np.ndarray, fill) -> np.ndarray:
    """``[N, S + 1]`` (tail, x) values as the ``[S+1] + [A+1]*(L-1)`` box (x first)."""
    shape = (space.max_on_hand + 1,) + (space.max_order + 1,) * (space.lead_time - 1)
    box = np.full(shape, fill, dtype=values.dtype)
    n = space.max_on_hand + 1
    for t in range(space.tails.shape[0]):
        m = n - space.tail_sum[t]
        box[(slice(0, m), *space.tails[t])] = values[t, :m]
    return box
