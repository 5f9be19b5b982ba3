"""Bellman operators and relative value iteration on the chain of :mod:`orpr_jax.exact.chain`.

Relative value iteration (RVI) solves the average-cost optimality equation
``g + v(s) = c(x) + min_a E v(s')`` (:func:`_solve_opt`) or evaluates a fixed base-stock
policy (:func:`_solve_eval`) on the truncated space. The expectation for every
``(next tail, incoming w, on hand x)`` is one matrix product ``E = V @ K``; the Bellman
update then gathers ``E`` rows per ``(state, action)`` and takes the minimum over
actions. Everything runs in float64 under ``jax.enable_x64`` (the callers set it).

References:
    Puterman, M. L. (1994). Markov Decision Processes, section 8.5.5 (relative value
    iteration) and Theorem 8.5.5 (Odoni's bounds on the gain).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


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


def _rvi(bellman, v0, mask, tol, max_iters, ref=(0, 0)):
    """Relative value iteration: ``v <- T v - (T v)(ref)`` until ``span(T v - v) <= tol``.

    ``ref`` is the ``(tail row, on hand)`` of the reference state (default the empty
    state); the span and bounds run over the states where ``mask`` is True.
    Returns the last carry; ``[lower, upper]`` brackets the gain (Odoni's bounds).
    """

    def step(c: _Carry) -> _Carry:
        tv = bellman(c.v)
        diff = tv - c.v
        lower = jnp.min(jnp.where(mask, diff, jnp.inf))
        upper = jnp.max(jnp.where(mask, diff, -jnp.inf))
        v = jnp.where(mask, tv - tv[ref[0], ref[1]], 0.0)
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


def _bellman_table(v, states, actions, w1, next_tail, kernel, cost, *, lead_time):
    """``T_pi v`` of a fixed action table, on the listed states only.

    ``states = (t, x)``: ``[M]`` tail rows and on-hand levels; ``actions``: ``[M]`` int
    orders, each keeping the state inside the space (the caller checks it).
    """
    t, x = states
    nt = next_tail[t, actions]
    w = actions if lead_time == 1 else w1[t]
    expected = jnp.sum(v[nt] * kernel[w, x], axis=-1)
    return jnp.zeros_like(v).at[t, x].set(cost[x] + expected)


@functools.partial(jax.jit, static_argnames="lead_time")
def _solve_table(w1, next_tail, kernel, cost, states, actions, mask, ref, v0, tol, max_iters,
                 *, lead_time):
    """RVI policy evaluation of ``actions`` on ``states`` (``mask`` marks them)."""

    def bellman(v):
        return _bellman_table(v, states, actions, w1, next_tail, kernel, cost,
                              lead_time=lead_time)

    return _rvi(bellman, v0, mask, tol, max_iters, ref)
