"""Exact optimum of the classic lost-sales model by relative value iteration.

The model is the one :func:`orpr_jax.scenarios.make_lost_sales` simulates with
``demand="poisson"``, no fixed or purchase cost and one review per day (Zipkin 2008a).
On day t, in the simulator's order (:mod:`orpr_jax.sim.dynamics`):

1. the order placed on day t - L arrived at the start of the day; the decision state is
   ``s = (x, w_1, ..., w_{L-1})`` with x the stock on hand after that arrival and w_k the
   order placed on day t - L + k, due in k days (``obs.pipeline[:, k - 1]``);
2. the policy orders a >= 0 (it arrives at the start of day t + L);
3. Poisson(mu) demand d is served from stock: sales ``min(x, d)``, the rest is lost;
4. the day costs ``h (x - d)^+ + p (d - x)^+``; the next state is
   ``((x - d)^+ + w_1, w_2, ..., w_{L-1}, a)`` (for L = 1 simply ``(x - d)^+ + a``).

Relative value iteration (RVI) solves the average-cost optimality equation
``g + v(s) = c(x) + min_a E v(s')`` on the states whose inventory position after
ordering, ``x + w_1 + ... + w_{L-1} + a``, is at most ``S`` (see
:func:`lost_sales_optimum` for why this truncation is exact). Demand needs no
truncation: the next state and the day's cost depend on d only through ``min(d, x)``, so
all d >= x are one event of probability ``P(d >= x)``.

Vectorisation: with v stored as ``V[tail, z]`` (tail ``= (w_1, ..., w_{L-1})``, z the
on-hand stock), the expectation for every ``(next tail, incoming w, on hand x)`` is one
matrix product ``E = V @ K`` with a fixed kernel ``K[w, x, z] = P((x - d)^+ + w = z)``;
the Bellman update then gathers ``E`` rows per ``(state, action)`` and takes the minimum
over actions. Everything runs in float64 under ``jax.enable_x64``.

Run ``python -m orpr_jax.exact.optimal`` for the table of the 16 classic cases
(L = 1..4, p in {4, 9, 19, 39}, Poisson mean 5, h = 1).

References:
    Morton, T. E. (1971). The near-myopic nature of the lagged-proportional-cost
    inventory problem with lost sales. Operations Research 19(7), 1708-1716.
    Zipkin, P. (2008a). Old and new methods for lost-sales inventory systems. Operations
    Research 56(5), 1256-1263.
    Zipkin, P. (2008b). On the structure of lost-sales inventory models. Operations
    Research 56(4), 937-944.
    Puterman, M. L. (1994). Markov Decision Processes, section 8.5.5 (relative value
    iteration) and Theorem 8.5.5 (Odoni's bounds on the gain).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from scipy import stats

from orpr_jax.sim.types import Observation

#: Largest ``tails x (A + 1) x (S + 1)`` product (entries of the expectation array ``E``)
#: accepted, so a mistaken argument fails fast instead of exhausting memory (~8 bytes
#: each, a few arrays of that size live at once).
MAX_ENTRIES = 100_000_000

#: Lead times and penalties of the classic table (Zipkin 2008a), Poisson mean 5, h = 1.
CLASSIC_LEAD_TIMES = (1, 2, 3, 4)
CLASSIC_PENALTIES = (4.0, 9.0, 19.0, 39.0)


@dataclasses.dataclass(frozen=True)
class OptimalResult:
    """The optimum of one lost-sales instance (host-side NumPy and Python numbers).

    Attributes:
        lead_time: L (days).
        lost_sales_cost: p per lost unit.
        demand_mean: Poisson mean mu per day.
        holding_cost: h per unit of end-of-day stock.
        average_cost: long-run average cost per day, the midpoint of the bounds.
        lower_bound: ``min_s (T v - v)(s)`` at the last iteration, <= the optimal gain.
        upper_bound: ``max_s (T v - v)(s)``, >= the optimal gain and >= the average cost
            of ``order_table`` (the table is greedy for that same v).
        span: ``upper_bound - lower_bound`` (<= ``tol`` when converged).
        order_table: ``[S + 1] + [A + 1] * (L - 1)`` int32 optimal order at state
            ``(x, w_1, ..., w_{L-1})``; 0 where ``x + sum(w) > S`` (outside the truncated
            space, where ordering nothing is optimal by the bound S).
        relative_values: same shape, float64 relative value v (0 at the empty state,
            NaN outside the truncated space).
        max_on_hand: S, the cap on the inventory position after ordering (hence on stock
            on hand).
        max_order: A, the cap on one order (S unless set smaller).
        iterations: RVI iterations used (Bellman updates, the final greedy one included).
        converged: ``span <= tol``.
        largest_order: the largest entry of ``order_table``.
        orders_at_max_order: states whose optimal order equals A while the position cap
            would allow more (0 means the cap on one order never binds).
        orders_at_position_cap: states whose optimal order fills the inventory position
            to exactly S (a positive order); 0 means the cap S never binds. Ties break
            towards the smaller order, so these states strictly prefer S to every
            smaller position.
        seconds: wall time of the solve (compilation included).
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    average_cost: float
    lower_bound: float
    upper_bound: float
    span: float
    order_table: np.ndarray
    relative_values: np.ndarray
    max_on_hand: int
    max_order: int
    iterations: int
    converged: bool
    largest_order: int
    orders_at_max_order: int
    orders_at_position_cap: int
    seconds: float

    @property
    def num_states(self) -> int:
        """Number of states in the truncated space."""
        return int(np.isfinite(self.relative_values).sum())

    def policy(self) -> OptimalPolicy:
        """The :class:`OptimalPolicy` that plays ``order_table`` in the simulator."""
        return OptimalPolicy(
            table=jnp.asarray(self.order_table, jnp.float32), lead_time=self.lead_time
        )


@dataclasses.dataclass(frozen=True)
class BaseStockResult:
    """Exact long-run cost of base-stock levels (host-side numbers).

    Attributes:
        lead_time, lost_sales_cost, demand_mean, holding_cost: the instance.
        level: the base-stock level (order up to ``level`` in inventory position); for
            :func:`best_base_stock` the best one.
        average_cost: long-run average cost per day of ``level`` (midpoint of the bounds).
        lower_bound: lower bound on that cost from the last iteration.
        upper_bound: upper bound on that cost.
        costs: every level evaluated and its average cost.
        iterations: iterations summed over the levels evaluated.
        converged: every evaluation reached ``tol``.
        seconds: wall time (compilation included).
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    level: int
    average_cost: float
    lower_bound: float
    upper_bound: float
    costs: dict[int, float]
    iterations: int
    converged: bool
    seconds: float


@struct.dataclass
class OptimalPolicy:
    """Plays an optimal order table: ``q = table[x, w_1, ..., w_{L-1}]``.

    A policy pytree like those of :mod:`orpr_jax.policies.heuristics`, called as
    ``policy(obs, key) -> [R] orders``. It reads the stock on hand and the outstanding
    orders due in 1..L-1 days from ``obs.pipeline`` (shared lead-time mode: column k - 1
    holds the units due in k days; column L - 1, due in L days, is empty before today's
    order). Each coordinate is rounded and clipped to the table: on hand to ``[0, S]``
    and outstanding orders to ``[0, A]``. Clipping on hand is exact (beyond S the table
    orders nothing, as it does at S); clipping an outstanding order only happens off the
    optimal path (an initial pipeline the optimal policy would never build).

    The table must come from the same lead time, costs and demand as the simulated
    scenario (``orpr_jax.make("lost_sales", lead_time=L, lost_sales_cost=p,
    demand_mean=mu, holding_cost=h)``).

    Attributes:
        table: ``[S + 1] + [A + 1] * (L - 1)`` float32 orders (see
            :attr:`OptimalResult.order_table`).
        lead_time: L (static).
    """

    table: jax.Array
    lead_time: int = struct.field(pytree_node=False, default=1)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        lead = self.lead_time
        if obs.pipeline.shape[1] < lead - 1:
            raise ValueError(
                f"lead_time={lead} is not allowed for this env; its pipeline shows only "
                f"{obs.pipeline.shape[1]} days ahead (need >= lead_time - 1)"
            )
        shape = self.table.shape
        coords = [obs.on_hand] + [obs.pipeline[:, k] for k in range(lead - 1)]
        flat = jnp.zeros(obs.on_hand.shape, jnp.int32)
        for size, value in zip(shape, coords, strict=True):
            idx = jnp.clip(jnp.round(value), 0, size - 1).astype(jnp.int32)
            flat = flat * size + idx
        return self.table.reshape(-1)[flat].astype(obs.on_hand.dtype)


def optimal_policy(result: OptimalResult) -> OptimalPolicy:
    """The :class:`OptimalPolicy` of ``result`` (same as ``result.policy()``)."""
    return result.policy()


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


def _poisson(mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """pmf on 0..n-1 and ``P(d >= k)`` for k = 0..n-1 (float64, exact up to rounding)."""
    ks = np.arange(n)
    return stats.poisson.pmf(ks, mean), stats.poisson.sf(ks - 1, mean)


def _build_space(
    lead_time: int, max_on_hand: int, max_order: int, mean: float, h: float, p: float
) -> _Space:
    s, a_max, n = max_on_hand, max_order, max_on_hand + 1
    pmf, tail = _poisson(mean, n)
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


# ----------------------------------------------------------------------------------------
# Bellman operators (jitted, float64).


def _state_mask(tail_sum, n, s):
    """``[N, S + 1]`` True on states ``(tail, x)`` inside the truncated space."""
    return (jnp.arange(n)[None, :] + tail_sum[:, None]) <= s


def _q_values(v, tail_sum, w1, next_tail, kernel, *, lead_time, s):
    """``[N, A + 1, S + 1]`` ``E v(s')`` per (tail, action, on hand); +inf if infeasible."""
    n = s + 1
    num, acts = next_tail.shape
    # E[t', w, x] = sum_z K[w, x, z] v[t', z]: one matrix product.
    e = (v @ kernel.reshape(acts * n, n).T).reshape(num * acts, n)
    a = jnp.arange(acts)
    w = a[None, :] if lead_time == 1 else jnp.broadcast_to(w1[:, None], (num, acts))
    q = jnp.take(e, next_tail * acts + w, axis=0)
    x = jnp.arange(n)
    feasible = (x[None, None, :] + tail_sum[:, None, None] + a[None, :, None]) <= s
    return jnp.where(feasible, q, jnp.inf)


def _bellman_opt(v, tail_sum, w1, next_tail, kernel, cost, *, lead_time, s):
    q = _q_values(v, tail_sum, w1, next_tail, kernel, lead_time=lead_time, s=s)
    return cost[None, :] + q.min(axis=1), jnp.argmin(q, axis=1)


def _bellman_eval(v, states, tail_sum, w1, next_tail, kernel, cost, level, *, lead_time):
    """``T_pi v`` of base stock ``level``, on the listed states only.

    ``states = (t, x)``: ``[M]`` tail rows and on-hand levels of the states in the space
    (a flat list, so no work is spent outside it). States above ``level`` (possible when
    the space is larger than the level) order nothing and are transient.
    """
    t, x = states
    a = jnp.clip(level - x - tail_sum[t], 0, next_tail.shape[1] - 1)
    nt = next_tail[t, a]
    w = a if lead_time == 1 else w1[t]
    expected = jnp.sum(v[nt] * kernel[w, x], axis=-1)
    return jnp.zeros_like(v).at[t, x].set(cost[x] + expected)


class _Carry(NamedTuple):
    v: jax.Array
    lower: jax.Array
    upper: jax.Array
    it: jax.Array


def _rvi(bellman, v0, mask, tol, max_iters):
    """Relative value iteration: ``v <- T v - (T v)(0)`` until ``span(T v - v) <= tol``.

    Returns the last carry; ``[lower, upper]`` brackets the gain (Odoni's bounds).
    """

    def step(c: _Carry) -> _Carry:
        tv = bellman(c.v)
        diff = tv - c.v
        lower = jnp.min(jnp.where(mask, diff, jnp.inf))
        upper = jnp.max(jnp.where(mask, diff, -jnp.inf))
        v = jnp.where(mask, tv - tv[0, 0], 0.0)
        return _Carry(v, lower, upper, c.it + 1)

    def cond(c: _Carry):
        return (c.upper - c.lower > tol) & (c.it < max_iters)

    inf = jnp.asarray(jnp.inf, v0.dtype)
    return jax.lax.while_loop(cond, step, _Carry(v0, -inf, inf, jnp.zeros((), jnp.int32)))


@functools.partial(jax.jit, static_argnames="lead_time")
def _solve_opt(tail_sum, w1, next_tail, kernel, cost, tol, max_iters, *, lead_time):
    num, n = tail_sum.shape[0], cost.shape[0]
    s = n - 1
    mask = _state_mask(tail_sum, n, s)

    def bellman(v):
        return _bellman_opt(v, tail_sum, w1, next_tail, kernel, cost, lead_time=lead_time,
                            s=s)[0]

    out = _rvi(bellman, jnp.zeros((num, n), cost.dtype), mask, tol, max_iters - 1)
    # One more update gives the greedy table of the final v and the bounds that hold for
    # that very table (its average cost is <= upper; Odoni's bounds only tighten).
    tv, action = _bellman_opt(out.v, tail_sum, w1, next_tail, kernel, cost,
                              lead_time=lead_time, s=s)
    diff = tv - out.v
    lower = jnp.min(jnp.where(mask, diff, jnp.inf))
    upper = jnp.max(jnp.where(mask, diff, -jnp.inf))
    return _Carry(out.v, lower, upper, out.it + 1), action


@functools.partial(jax.jit, static_argnames="lead_time")
def _solve_eval(tail_sum, w1, next_tail, kernel, cost, states, level, v0, tol, max_iters, *,
                lead_time):
    n = cost.shape[0]
    mask = _state_mask(tail_sum, n, n - 1)

    def bellman(v):
        return _bellman_eval(v, states, tail_sum, w1, next_tail, kernel, cost, level,
                             lead_time=lead_time)

    return _rvi(bellman, v0, mask, tol, max_iters)


# ----------------------------------------------------------------------------------------
# Validation.


def _check_lead_time(lead_time) -> None:
    if isinstance(lead_time, bool) or not isinstance(lead_time, int) or lead_time < 1:
        raise ValueError(f"lead_time={lead_time!r} is not allowed; expected an integer >= 1")


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number > 0")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number > 0")
    return float(value)


def _check_optional_int(name: str, value, low: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; expected None or an integer >= {low}")


def _check_iters(max_iters) -> None:
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters={max_iters!r} is not allowed; expected an integer >= 1")


def position_bound(lead_time: int, lost_sales_cost: float, demand_mean: float = 5.0,
                   holding_cost: float = 1.0) -> int:
    """Morton's bound on the optimal inventory position after ordering.

    ``S = min{s : P(D_{L+1} <= s) >= p / (p + h)}`` with ``D_{L+1} ~ Poisson((L + 1) mu)``
    the demand of the L + 1 days an order placed today is exposed to (today's order is
    first sold on day t + L, and the inventory position covers days t..t+L); the
    critical-fractile base-stock level of the same system with backorders.

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        demand_mean: mu > 0.
        holding_cost: h > 0.

    Returns:
        S (units).

    Raises:
        ValueError: naming the first invalid argument.
    """
    _check_lead_time(lead_time)
    p = _check_positive("lost_sales_cost", lost_sales_cost)
    mu = _check_positive("demand_mean", demand_mean)
    h = _check_positive("holding_cost", holding_cost)
    return int(stats.poisson.ppf(p / (p + h), mu * (lead_time + 1)))


def _validate(lead_time, p, mu, h, tol, max_iters) -> tuple[float, float, float, float]:
    _check_lead_time(lead_time)
    p = _check_positive("lost_sales_cost", p)
    mu = _check_positive("demand_mean", mu)
    h = _check_positive("holding_cost", h)
    tol = _check_positive("tol", tol)
    _check_iters(max_iters)
    return p, mu, h, tol


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


# ----------------------------------------------------------------------------------------
# Public solvers.


def lost_sales_optimum(
    lead_time: int,
    lost_sales_cost: float,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    max_order: int | None = None,
    max_on_hand: int | None = None,
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> OptimalResult:
    """Optimal long-run average cost and order table of the lost-sales model.

    Relative value iteration on the truncated space ``{(x, w): x + sum(w) <= S}`` with
    actions ``0 <= a <= min(A, S - x - sum(w))``; stops when the span of ``T v - v`` is at
    most ``tol``; the optimal gain g then lies in ``[lower_bound, upper_bound]`` and the
    greedy table's own average cost is at most ``upper_bound`` (Odoni's bounds).

    Why the truncation is exact. (i) Demand: the day's cost and the next state depend on
    d only through ``min(d, x)``; all d >= x are lumped into one event, so no tail is cut.
    (ii) Inventory position: :func:`position_bound` is Morton's (1971) upper bound on the
    optimal inventory position after ordering, ``S* = F_{L+1}^{-1}(p / (p + h))``, the
    critical-fractile level of the same system with backorders (Zipkin 2008a uses the
    same bound to show the effective state space is compact). Heuristically:
    a unit that lifts the position above S is first sold on day t + L only if demand over
    days t..t+L exceeds S, which happens with probability below h / (p + h); in the lost-
    sales system the stock left for day t + L is at least what the backorder system's
    would be, so the marginal unit is worth even less, and holding it costs h per day.
    Once the position after ordering is <= S it stays <= S (demand only lowers it), so
    the space is closed under the allowed actions and no state is cut from the optimal
    recurrent class. The default ``S = S* + 1`` leaves one unit of headroom so the bound
    is checked rather than trusted: :attr:`OptimalResult.orders_at_position_cap` counts
    the states whose optimal order fills the position to exactly S, and 0 means the cap
    never binds (at ``S = S*`` itself a few states may fill to exactly S*: the bound is
    attained, not exceeded). Raising ``max_on_hand`` further leaves the cost unchanged
    (tests check it; in the 16 classic cases going from S* to S* + 3 moves it by less
    than 3e-7, inside the 1e-6 bracket). (iii) One order: by default A = S, i.e. no
    cap beyond the position bound, so nothing else is truncated. A smaller ``max_order``
    shrinks the space (orders are non-increasing in every state component, Zipkin
    2008b, so the largest order is the one at the empty state); it is exact when
    :attr:`OptimalResult.orders_at_max_order` is 0.

    Args:
        lead_time: L >= 1 days (an order placed on day t is on hand from day t + L).
        lost_sales_cost: p > 0 per lost unit.
        demand_mean: Poisson mean mu > 0 per day.
        holding_cost: h > 0 per unit of end-of-day stock.
        max_order: A, the cap on one order (default S, i.e. no extra cap).
        max_on_hand: S, the cap on the inventory position after ordering (default
            ``position_bound(...) + 1``).
        tol: stopping span of ``T v - v`` (> 0), the width of the bracket on the cost.
        max_iters: limit on Bellman updates (>= 1); check ``converged``.

    Returns:
        An :class:`OptimalResult`.

    Raises:
        ValueError: naming the first invalid argument (or the state space exceeds
            :data:`MAX_ENTRIES`).
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    _check_optional_int("max_on_hand", max_on_hand, 1)
    _check_optional_int("max_order", max_order, 1)
    s = position_bound(lead_time, p, mu, h) + 1 if max_on_hand is None else int(max_on_hand)
    a_max = s if max_order is None else min(int(max_order), s)
    _check_size(_count_tails(lead_time, s, a_max), a_max + 1, s + 1, lead_time)
    space = _build_space(lead_time, s, a_max, mu, h, p)
    with jax.enable_x64(True):
        out, action = _solve_opt(*_device_arrays(space), tol, max_iters,
                                 lead_time=lead_time)
        out, action = jax.device_get((out, action))
    v = np.asarray(out.v)
    action = np.asarray(action, np.int32)
    mask = (np.arange(s + 1)[None, :] + space.tail_sum[:, None]) <= s
    action = np.where(mask, action, 0).astype(np.int32)
    room = s - space.tail_sum[:, None] - np.arange(s + 1)[None, :]
    at_max = mask & (action == a_max) & (room > a_max)
    at_cap = mask & (action == room) & (room > 0) & (room <= a_max)
    lower, upper = float(out.lower), float(out.upper)
    return OptimalResult(
        lead_time=lead_time,
        lost_sales_cost=p,
        demand_mean=mu,
        holding_cost=h,
        average_cost=0.5 * (lower + upper),
        lower_bound=lower,
        upper_bound=upper,
        span=upper - lower,
        order_table=_to_box(space, action, 0),
        relative_values=_to_box(space, np.where(mask, v, np.nan), np.nan),
        max_on_hand=s,
        max_order=a_max,
        iterations=int(out.it),
        converged=bool(upper - lower <= tol),
        largest_order=int(action.max()),
        orders_at_max_order=int(at_max.sum()),
        orders_at_position_cap=int(at_cap.sum()),
        seconds=time.perf_counter() - start,
    )


def base_stock_cost(
    lead_time: int,
    lost_sales_cost: float,
    level: int,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> BaseStockResult:
    """Exact long-run average cost of the base-stock policy with ``level``.

    Policy evaluation (RVI with the action fixed to ``max(0, level - x - sum(w))``) on the
    states with inventory position <= ``level``, which the policy never leaves once its
    first order is placed, so the chain is exact (no truncation; demand lumped as in
    :func:`lost_sales_optimum`). Matches ``orpr_jax.policies.base_stock(level)`` in the
    simulator.

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        level: order-up-to level of the inventory position, an integer >= 1.
        demand_mean: Poisson mean mu > 0.
        holding_cost: h > 0.
        tol: stopping span (> 0).
        max_iters: iteration limit (>= 1).

    Returns:
        A :class:`BaseStockResult` with ``costs == {level: average_cost}``.

    Raises:
        ValueError: naming the first invalid argument.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 1:
        raise ValueError(f"level={level!r} is not allowed; expected an integer >= 1")
    space = _base_stock_space(lead_time, int(level), mu, h, p)
    lo, hi, iters, _ = _evaluate_base_stock(space, int(level), tol, max_iters)
    cost = 0.5 * (lo + hi)
    return BaseStockResult(
        lead_time=lead_time,
        lost_sales_cost=p,
        demand_mean=mu,
        holding_cost=h,
        level=int(level),
        average_cost=cost,
        lower_bound=lo,
        upper_bound=hi,
        costs={int(level): cost},
        iterations=iters,
        converged=hi - lo <= tol,
        seconds=time.perf_counter() - start,
    )


def _evaluate_base_stock(space: _Space, level: int, tol: float, max_iters: int, v0=None):
    """``(lower, upper, iterations, v)`` of base stock ``level`` on a space with S >= level.

    ``v0`` (the relative values of a nearby level on the same space) warm-starts RVI.
    """
    n = space.max_on_hand + 1
    t, x = np.nonzero((np.arange(n)[None, :] + space.tail_sum[:, None]) <= space.max_on_hand)
    with jax.enable_x64(True):
        if v0 is None:
            v0 = jnp.zeros((space.tails.shape[0], n), jnp.float64)
        out = _solve_eval(*_device_arrays(space), (jnp.asarray(t), jnp.asarray(x)), level,
                          v0, tol, max_iters, lead_time=space.lead_time)
        out = jax.block_until_ready(out)
        lower, upper, it = jax.device_get((out.lower, out.upper, out.it))
    return float(lower), float(upper), int(it), out.v


def _base_stock_space(lead_time, box, mu, h, p) -> _Space:
    _check_size(_count_tails(lead_time, box, box), 1, box + 1, lead_time)
    return _build_space(lead_time, box, box, mu, h, p)


def best_base_stock(
    lead_time: int,
    lost_sales_cost: float,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> BaseStockResult:
    """The best base-stock level and its exact long-run average cost.

    Evaluates levels by :func:`base_stock_cost`, starting at :func:`position_bound` and
    walking down, then up, until two levels in a row are worse than the best so far (the
    cost of a base-stock level is unimodal in practice; the walk stops on a plateau only
    after two non-improvements, so a single flat step does not end it).

    Args:
        lead_time: L >= 1.
        lost_sales_cost: p > 0.
        demand_mean: Poisson mean mu > 0.
        holding_cost: h > 0.
        tol: stopping span per level (> 0).
        max_iters: iteration limit per level (>= 1).

    Returns:
        A :class:`BaseStockResult` of the best level, with every level tried in
        ``costs``.

    Raises:
        ValueError: naming the first invalid argument.
    """
    start = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    results: dict[int, tuple[float, float, int]] = {}
    first = max(position_bound(lead_time, p, mu, h), 1)
    # One space (one compilation) for every level up to first + 3; levels above it (rare:
    # the best level is below the bound in practice) get a larger one.
    spaces = {first + 3: _base_stock_space(lead_time, first + 3, mu, h, p)}
    warm = {}  # box -> relative values of the last level evaluated on it

    def cost(level: int) -> float:
        if level not in results:
            box = max(spaces)
            if level > box:
                box = level + 3
                spaces[box] = _base_stock_space(lead_time, box, mu, h, p)
            lo, hi, it, warm[box] = _evaluate_base_stock(spaces[box], level, tol, max_iters,
                                                         warm.get(box))
            results[level] = (lo, hi, it)
        lo, hi, _ = results[level]
        return 0.5 * (lo + hi)

    best = first
    for step in (-1, 1):
        level, misses = first, 0
        while misses < 2 and level + step >= 1:
            level += step
            if cost(level) < cost(best):
                best, misses = level, 0
            else:
                misses += 1
    lo, hi, _ = results[best]
    return BaseStockResult(
        lead_time=lead_time,
        lost_sales_cost=p,
        demand_mean=mu,
        holding_cost=h,
        level=best,
        average_cost=0.5 * (lo + hi),
        lower_bound=lo,
        upper_bound=hi,
        costs={k: 0.5 * (v[0] + v[1]) for k, v in sorted(results.items())},
        iterations=sum(v[2] for v in results.values()),
        converged=all(v[1] - v[0] <= tol for v in results.values()),
        seconds=time.perf_counter() - start,
    )


# ----------------------------------------------------------------------------------------
# The classic table.


def classic_table(lead_times=CLASSIC_LEAD_TIMES, penalties=CLASSIC_PENALTIES,
                  demand_mean: float = 5.0, holding_cost: float = 1.0) -> list[dict]:
    """Optimum and best base-stock of each (L, p) case, as rows of plain numbers."""
    rows = []
    for lead_time in lead_times:
        for p in penalties:
            opt = lost_sales_optimum(lead_time, p, demand_mean, holding_cost)
            bs = best_base_stock(lead_time, p, demand_mean, holding_cost)
            rows.append({
                "L": lead_time,
                "p": p,
                "S": opt.max_on_hand,
                "states": opt.num_states,
                "optimal_cost": opt.average_cost,
                "bracket": opt.span,
                "iterations": opt.iterations,
                "largest_order": opt.largest_order,
                "at_position_cap": opt.orders_at_position_cap,
                "optimal_seconds": opt.seconds,
                "base_stock_level": bs.level,
                "base_stock_cost": bs.average_cost,
                "gap_percent": 100.0 * (bs.average_cost / opt.average_cost - 1.0),
                "base_stock_seconds": bs.seconds,
            })
    return rows


def _main() -> None:
    header = (
        f"{'L':>2} {'p':>4} {'S':>3} {'states':>7} {'optimum':>9} {'bracket':>8} "
        f"{'iters':>5} {'max q':>5} {'at S':>5} {'sec':>6} | {'level':>5} {'base-stock':>10} "
        f"{'gap %':>6} {'sec':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in classic_table():
        print(
            f"{r['L']:>2} {r['p']:>4g} {r['S']:>3} {r['states']:>7} {r['optimal_cost']:>9.4f} "
            f"{r['bracket']:>8.1e} {r['iterations']:>5} {r['largest_order']:>5} "
            f"{r['at_position_cap']:>5} {r['optimal_seconds']:>6.2f} | "
            f"{r['base_stock_level']:>5} {r['base_stock_cost']:>10.4f} "
            f"{r['gap_percent']:>6.2f} {r['base_stock_seconds']:>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    _main()


__all__ = [
    "BaseStockResult",
    "OptimalPolicy",
    "OptimalResult",
    "base_stock_cost",
    "best_base_stock",
    "classic_table",
    "lost_sales_optimum",
    "optimal_policy",
    "position_bound",
]
