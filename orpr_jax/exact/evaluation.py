"""Exact long-run average cost of any deterministic stationary policy on the lost-sales chain.

A policy here is what the simulator plays, ``policy(obs, key) -> [R] orders``, read on the
chain's state ``(x, w_1, ..., w_{L-1})`` (on hand after today's arrival and the orders due
in 1..L-1 days). :func:`policy_cost` asks the policy for its order in every state of the
truncated space of :func:`orpr_jax.exact.lost_sales_optimum` (inventory position after
ordering at most S, one order at most A; demand needs no truncation, all d >= x are one
event), maps each request the way the simulator does (non-finite or negative: 0, then
rounded to whole units), finds the states reachable from the simulator's start state, and
evaluates the policy there by relative value iteration (Odoni's bounds bracket the gain).

The truncation check is the value iteration's own: the space is exact for the policy if
no reachable state orders beyond it, i.e. the inventory position after ordering stays
<= S and each order <= A. A reachable order that breaks this raises a ``ValueError`` that
names the state and the order (raise ``max_on_hand`` / ``max_order``), so the answer is
never a silently truncated one.

A Markov policy is needed: one whose order depends on the state only. The policy is asked
twice, with two different sales histories and days; if the orders differ it is refused
(a learned agent that reads its sales history is not a function of ``(x, w)``; pass
``check_markov=False`` to evaluate it with the history frozen at the reset values, which is
exact for that frozen-history policy, not for the agent as simulated).

References:
    Puterman, M. L. (1994). Markov Decision Processes, section 8.5.5 (relative value
    iteration) and Theorem 8.5.5 (Odoni's bounds on the gain).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.exact.chain import (
    _build_space,
    _check_demand,
    _check_size,
    _count_tails,
    _Space,
    position_bound,
)
from orpr_jax.exact.rvi import _solve_table
from orpr_jax.exact.validation import _check_optional_int, _validate
from orpr_jax.sim.dynamics import initial_state, observe
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import SimConfig

#: States per policy call (bounds the memory of one batch of observations).
CHUNK = 32_768


@dataclasses.dataclass(frozen=True)
class PolicyCostResult:
    """Exact long-run average cost of one stationary policy (host-side numbers).

    Attributes:
        lead_time, lost_sales_cost, demand_mean, holding_cost, demand: the instance.
        average_cost: long-run average cost per day (midpoint of the bounds).
        lower_bound: Odoni lower bound on that cost at the last iteration.
        upper_bound: Odoni upper bound.
        max_on_hand: S, the cap on the inventory position after ordering.
        max_order: A, the cap on one order.
        num_states: states reachable from the start state (those evaluated).
        largest_order: the largest order in a reachable state.
        largest_position: the largest inventory position after ordering in a reachable
            state (<= S by the check).
        iterations: RVI iterations.
        converged: the bracket is within ``tol``.
        seconds: wall time (policy calls and compilation included).
    """

    lead_time: int
    lost_sales_cost: float
    demand_mean: float
    holding_cost: float
    demand: str
    average_cost: float
    lower_bound: float
    upper_bound: float
    max_on_hand: int
    max_order: int
    num_states: int
    largest_order: int
    largest_position: int
    iterations: int
    converged: bool
    seconds: float


def _state_list(space: _Space) -> tuple[np.ndarray, np.ndarray]:
    """``(t, x)`` ``[M]`` of every state in the space, tail-major."""
    n = space.max_on_hand + 1
    t, x = np.nonzero((np.arange(n)[None, :] + space.tail_sum[:, None]) <= space.max_on_hand)
    return t.astype(np.int64), x.astype(np.int64)


def _successors(space: _Space, t, x, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(next tail, lowest on hand, highest on hand)`` of each state's successors.

    The next on hand is ``(x - d)^+ + w`` for any demand d (every value in 0..x has
    positive probability under Poisson and geometric demand), so the successors of one
    state are the on-hand interval ``[w, w + x]`` at one next tail.
    """
    nt = space.next_tail[t, a]
    w = a if space.lead_time == 1 else space.w1[t]
    return nt, w, w + x


def reachable_mask(space: _Space, actions: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """``[N, S + 1]`` True on the states reachable from ``start`` under ``actions``.

    ``actions`` is ``[N, S + 1]`` (int, valid on every state of the space). Breadth-first
    over intervals of on hand: each round adds the successors of the new states.
    """
    n = space.max_on_hand + 1
    reach = np.zeros((space.tails.shape[0], n), bool)
    reach[start] = True
    frontier = reach.copy()
    z = np.arange(n)
    while frontier.any():
        t, x = np.nonzero(frontier)
        nt, lo, hi = _successors(space, t, x, actions[t, x])
        # The widest interval per (next tail, low end) covers all narrower ones.
        top = np.full((space.tails.shape[0], n), -1, np.int64)
        np.maximum.at(top, (nt, lo), hi)
        new = np.zeros_like(reach)
        rows, lows = np.nonzero(top >= 0)
        for lo_value in np.unique(lows):
            sel = rows[lows == lo_value]
            new[sel] |= (z[None, :] >= lo_value) & (z[None, :] <= top[sel, lo_value][:, None])
        frontier = new & ~reach
        reach |= new
    return reach


def _check_actions(space: _Space, t, x, a) -> None:
    """Raises if an order leaves the truncated space (position > S or order > A)."""
    position = x + space.tail_sum[t] + a
    bad = np.nonzero((a > space.max_order) | (position > space.max_on_hand))[0]
    if bad.size:
        i = bad[0]
        state = (int(x[i]), *map(int, space.tails[t[i]]))
        raise ValueError(
            f"the policy's order {int(a[i])} in state (x, w_1..w_L-1)={state} leaves the "
            f"truncated space (inventory position after ordering {int(position[i])} > "
            f"max_on_hand={space.max_on_hand} or order > max_order={space.max_order}); "
            f"{bad.size} reachable states do; raise max_on_hand / max_order"
        )


def evaluate_table(space: _Space, actions: np.ndarray, start: tuple[int, int], tol: float,
                   max_iters: int, *, reachable_only: bool = True, v0=None):
    """``(lower, upper, iterations, v, mask)`` of the action table ``[N, S + 1]``.

    ``reachable_only`` evaluates the states reachable from ``start`` (whose orders are
    checked against the space); otherwise every state of the space (all orders checked),
    which needs a unichain policy. ``v0`` warm-starts RVI (same space and mask).
    """
    t, x = _state_list(space)
    if reachable_only:
        act = np.zeros_like(actions)
        # Orders that leave the space are only allowed where the chain never goes; they
        # are checked on the reachable states below, so they can be zeroed for the search.
        ok = (actions[t, x] <= space.max_order) & (
            x + space.tail_sum[t] + actions[t, x] <= space.max_on_hand)
        act[t[ok], x[ok]] = actions[t[ok], x[ok]]
        # Grow the reachable set with the true orders; a reachable bad order raises.
        mask = reachable_mask(space, act, start)
        keep = mask[t, x]
        t, x = t[keep], x[keep]
    else:
        mask = np.zeros((space.tails.shape[0], space.max_on_hand + 1), bool)
        mask[t, x] = True
    a = actions[t, x]
    _check_actions(space, t, x, a)
    with jax.enable_x64(True):
        if v0 is None:
            v0 = jnp.zeros(mask.shape, jnp.float64)
        out = _solve_table(
            jnp.asarray(space.w1), jnp.asarray(space.next_tail), jnp.asarray(space.kernel),
            jnp.asarray(space.cost), (jnp.asarray(t), jnp.asarray(x)), jnp.asarray(a),
            jnp.asarray(mask), (jnp.asarray(start[0]), jnp.asarray(start[1])), v0,
            tol, max_iters, lead_time=space.lead_time)
        out = jax.block_until_ready(out)
        lower, upper, it = jax.device_get((out.lower, out.upper, out.it))
    return float(lower), float(upper), int(it), out.v, mask


def _observations(space: _Space, t, x, p: float, h: float, mu: float, history_length: int,
                  shift: bool):
    """The simulator's :class:`Observation` of each listed state (``[M]`` rows)."""
    lead, m = space.lead_time, t.shape[0]
    config = SimConfig(num_rows=m, max_lead_time=lead, history_length=history_length,
                       lead_time_mode="shared", demand_mode="table")
    params = make_params(config, holding_cost=h, penalty_cost=p, lead_time=lead,
                         base_demand=mu, initial_on_hand=0.0)
    state = initial_state(config, params)
    day = 1_003 if shift else 0  # another day and history: a Markov policy must not notice
    # Ring slot (day + k) mod (L + 1) holds the units due in k days (today's slot arrived).
    ring = jnp.zeros((lead + 1, m), jnp.float32)
    if lead > 1:
        slots = (day + np.arange(1, lead)) % (lead + 1)
        ring = ring.at[slots].set(jnp.asarray(space.tails[t].T, jnp.float32))
    state = state.replace(on_hand=jnp.asarray(x, jnp.float32), ring=ring,
                          pipeline_total=ring.sum(axis=0), t=jnp.asarray(day, jnp.int32))
    if shift:
        state = state.replace(sales_ring=state.sales_ring + 3.0)
    return observe(config, params, state)


def _policy_orders(policy, space, t, x, p, h, mu, history_length, shift) -> np.ndarray:
    """The simulator's order (rounded, >= 0) of ``policy`` in each listed state."""
    out = []
    for i in range(0, t.shape[0], CHUNK):
        obs = _observations(space, t[i:i + CHUNK], x[i:i + CHUNK], p, h, mu, history_length,
                            shift)
        req = np.asarray(policy(obs, jax.random.key(0)), np.float64).reshape(-1)
        if req.shape != (obs.on_hand.shape[0],):
            raise ValueError(f"the policy returned shape {req.shape}; expected "
                             f"({obs.on_hand.shape[0]},) orders, one per row")
        out.append(np.round(np.maximum(np.where(np.isfinite(req), req, 0.0), 0.0)))
    return np.concatenate(out).astype(np.int64)


def policy_cost(
    policy,
    lead_time: int,
    lost_sales_cost: float,
    demand_mean: float = 5.0,
    holding_cost: float = 1.0,
    *,
    demand: str = "poisson",
    max_on_hand: int | None = None,
    max_order: int | None = None,
    history_length: int = 28,
    check_markov: bool = True,
    tol: float = 1e-6,
    max_iters: int = 10_000,
) -> PolicyCostResult:
    """Exact long-run average cost of a deterministic stationary policy.

    Args:
        policy: ``policy(obs, key) -> [R] orders`` (any policy of :mod:`orpr_jax.policies`,
            an :class:`OptimalPolicy`, a greedy agent, or a plain function of
            ``obs.on_hand`` / ``obs.pipeline`` / ``obs.inventory_position``). It is called
            on batches of :data:`CHUNK` states with key ``jax.random.key(0)``.
        lead_time: L >= 1 (the env's ``max_lead_time``; ``obs.pipeline`` has L columns).
        lost_sales_cost: p > 0 (also shown to the policy as ``obs.penalty_cost``).
        demand_mean: mu > 0.
        holding_cost: h > 0.
        demand: ``"poisson"`` or ``"geometric"``.
        max_on_hand: S (default Morton's bound + 1, as :func:`lost_sales_optimum`).
        max_order: A (default S).
        history_length: H of the observation's sales history.
        check_markov: refuse a policy whose orders depend on more than the state.
        tol: width of the bracket on the cost (> 0).
        max_iters: limit on RVI iterations (>= 1); check ``converged``.

    Returns:
        A :class:`PolicyCostResult`.

    Raises:
        ValueError: an invalid argument; a state space over ``MAX_ENTRIES``; a reachable
            order that leaves the truncated space (named); a policy that is not Markov.
    """
    start_time = time.perf_counter()
    p, mu, h, tol = _validate(lead_time, lost_sales_cost, demand_mean, holding_cost, tol,
                              max_iters)
    _check_demand(demand)
    _check_optional_int("max_on_hand", max_on_hand, 1)
    _check_optional_int("max_order", max_order, 1)
    s = (position_bound(lead_time, p, mu, h, demand) + 1 if max_on_hand is None
         else int(max_on_hand))
    a_max = s if max_order is None else min(int(max_order), s)
    _check_size(_count_tails(lead_time, s, a_max), a_max + 1, s + 1, lead_time)
    space = _build_space(lead_time, s, a_max, mu, h, p, demand)
    t, x = _state_list(space)
    orders = _policy_orders(policy, space, t, x, p, h, mu, history_length, False)
    if check_markov:
        other = _policy_orders(policy, space, t, x, p, h, mu, history_length, True)
        if not np.array_equal(orders, other):
            raise ValueError(
                "policy is not allowed: its orders change with the sales history or the "
                "day, so they are not a function of the chain state (x, w); pass "
                "check_markov=False to evaluate it with the history frozen")
    actions = np.zeros((space.tails.shape[0], s + 1), np.int64)
    actions[t, x] = orders
    # The simulator's start: round(mu (L + 1)) on hand, nothing on order.
    start = (0, min(round(mu * (lead_time + 1)), s))
    lower, upper, it, _, mask = evaluate_table(space, actions, start, tol, max_iters)
    rt, rx = np.nonzero(mask)
    ra = actions[rt, rx]
    return PolicyCostResult(
        lead_time=lead_time, lost_sales_cost=p, demand_mean=mu, holding_cost=h,
        demand=demand, average_cost=0.5 * (lower + upper), lower_bound=lower,
        upper_bound=upper, max_on_hand=s, max_order=a_max, num_states=int(mask.sum()),
        largest_order=int(ra.max()),
        largest_position=int((rx + space.tail_sum[rt] + ra).max()),
        iterations=it, converged=upper - lower <= tol,
        seconds=time.perf_counter() - start_time,
    )
