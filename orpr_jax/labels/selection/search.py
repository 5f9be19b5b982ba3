"""Greedy single-group moves and the Lagrangian-path exchange, batch axis last.

The building blocks of :func:`orpr_jax.labels.selection.dual.dual_select` (and of the
rounding in :func:`orpr_jax.labels.selection.batched_lp.solve_batched_lp`): index and
reduction helpers for the batch-last layout, the repair / improvement moves
(:func:`_polish`) and the exchange start (:func:`_forward_exchange`). Pure JAX.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


# --------------------------------------------------------------------------------------
# Pure JAX: Lagrangian dual + exchange + greedy moves, batch axis last (this module and
# :mod:`orpr_jax.labels.selection.dual`)
#
# The search and the moves run a whole batch at once with the problem axis last:
# ``[G, V, B]`` per-candidate arrays, ``[G, B]`` per-group ones and ``[B]`` per-problem
# ones (the input is normalised batch first, then transposed once). Elementwise ops and
# the reductions over ``V`` and ``G`` then run along contiguous vectors of ``B``
# problems, which XLA:CPU vectorises well; under ``vmap`` over a leading batch axis the
# reductions ran along the short candidate rows instead, about 2.5x slower.
# :func:`~orpr_jax.labels.selection.dual.dual_select` is the same code with ``B = 1``
# and gives the same answers (sums over groups use a fixed order, see
# :func:`_group_sum`). Every loop runs while some problem is still live and freezes the
# others, as a vmapped ``while_loop`` would.
#
# The cost is the number of passes over the ``[G, V, B]`` arrays, so per-problem
# gathers (``take_along_axis`` of ``G x B`` or ``V x B`` entries, cheap in this layout)
# replace one-hot sums, and a winner's row is gathered rather than searched for in a
# second full pass. Indices are recovered as ``min(where(x <= min(x), index, n))``
# (variadic argmin reductions are several times slower on XLA:CPU).
# --------------------------------------------------------------------------------------


def _pick(values: jax.Array, choice: jax.Array) -> jax.Array:
    """``values[g, choice[g, b], b]``. ``[G, V, B], [G, B] -> [G, B]``."""
    return jnp.take_along_axis(values, choice[:, None, :].astype(jnp.int32), axis=1)[:, 0]


def _row(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[index[b], ..., b]``: one leading-axis row per problem.

    ``[N, ..., B], [B] -> [..., B]``.
    """
    index = index.astype(jnp.int32).reshape((1,) * (values.ndim - 1) + (-1,))
    return jnp.take_along_axis(values, index, axis=0)[0]


def _group_sum(x: jax.Array) -> jax.Array:
    """Sum over the leading (group) axis in a fixed pairwise order. ``[G, ...] -> [...]``.

    XLA's reductions may associate differently by shape, and a problem's totals (hence
    its choice on near-ties) must not depend on the batch it is solved in: the rows are
    added pairwise down to two, and those two by a reduction (exact in any order), which
    also keeps XLA from fusing the adds into a ``[G, V, B]`` consumer and redoing them
    for every candidate.
    """
    while x.shape[0] > 2:
        if x.shape[0] % 2:
            x = jnp.concatenate([x, jnp.zeros_like(x[:1])])
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return jnp.sum(x, axis=0)


def _first_index(hit: jax.Array, axis: int) -> jax.Array:
    """The first index along ``axis`` where ``hit`` is True (its length if none)."""
    axis = axis % hit.ndim
    n = hit.shape[axis]
    index = jax.lax.broadcasted_iota(jnp.int32, hit.shape, axis)
    return jnp.min(jnp.where(hit, index, n), axis=axis)


def _first_min(x: jax.Array) -> jax.Array:
    """The first index of the minimum along axis 0. ``[N, B] -> [B]`` int32."""
    return jnp.minimum(_first_index(x <= jnp.min(x, axis=0), axis=0), x.shape[0] - 1)


def _lex_argmin(primary: jax.Array, secondary: jax.Array, valid: jax.Array) -> jax.Array:
    """Argmin over the last axis of ``primary`` among ``valid``, exact ties to the lowest
    ``secondary``. Every row needs a valid entry. ``[..., V] -> [...]`` int32."""
    p = jnp.where(valid, primary, jnp.inf)
    sec = jnp.where(p <= jnp.min(p, axis=-1, keepdims=True), secondary, jnp.inf)
    return _first_index(sec <= jnp.min(sec, axis=-1, keepdims=True), axis=-1)


def _best_move(score: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per problem, the smallest finite entry of a ``[G, V, B]`` score (first in
    ``(g, j)`` order on ties): ``(found, g, j)``, each ``[B]``."""
    per_group = jnp.min(score, axis=1)
    g = _first_min(per_group)
    # The winner's row decides j and found on its own: a fusion that recomputes it may
    # round apart from the reduction.
    row = _row(score, g)
    return jnp.min(row, axis=0) < jnp.inf, g, _first_min(row)


_PREFER = 1e30


def _rank(first: jax.Array, allowed: jax.Array, ds: jax.Array, ratio: jax.Array) -> jax.Array:
    """Move score: ``first`` moves by stock change ``ds`` below every other ``allowed``
    move's ``ratio``; ``inf`` where not allowed.

    ``|ds| <= 1`` after normalisation, so ``-_PREFER * (2 - ds)`` lies in
    ``[-3, -1] x _PREFER`` and keeps their order - one reduction instead of an ``any()``
    and a select.
    """
    return jnp.where(first, -_PREFER * (2 - ds), jnp.where(allowed, ratio, jnp.inf))


class _Data(NamedTuple):
    """A batch-last problem as the greedy moves see it."""

    s: jax.Array  # [G, V, B] normalised stock
    l: jax.Array  # [G, V, B] normalised loss
    valid: jax.Array  # [G, V, B] candidates that may be chosen
    limit: jax.Array  # [B] normalised budget


class _Moves(NamedTuple):
    """Greedy state: ``choice`` and its per-group ``stock`` and ``loss`` (``[G, B]``),
    the rounds used and whether each problem is still live (``[B]``)."""

    choice: jax.Array
    stock: jax.Array
    loss: jax.Array
    rounds: jax.Array
    live: jax.Array


def _greedy(m: _Moves, d: _Data, scores, max_moves: int, done=None) -> _Moves:
    """Applies each live problem's best move per round until no problem is live.

    A problem stops when it has no move left, has used ``max_moves`` rounds, or ``done``.

    Args:
        m: the start.
        d: the problems.
        scores: ``(d, stock, loss, total) -> [G, V, B]`` move scores (``inf``: no move)
            for the per-group ``stock`` and ``loss`` of the current choice.
        max_moves: cap on ``m.rounds`` (static).
        done: optional ``(d, m) -> [B]``, the problems that stop after a move.

    Returns:
        The final state (no problem live).
    """
    g_count, v, _ = d.s.shape
    s_flat, l_flat = d.s.reshape(g_count * v, -1), d.l.reshape(g_count * v, -1)
    rows = jnp.arange(g_count, dtype=jnp.int32)[:, None]

    def round_(m: _Moves) -> _Moves:
        found, g, j = _best_move(scores(d, m.stock, m.loss, _group_sum(m.loss)))
        found = found & m.live
        hit = found & (rows == g)
        m = _Moves(
            choice=jnp.where(hit, j.astype(m.choice.dtype), m.choice),
            stock=jnp.where(hit, _row(s_flat, g * v + j), m.stock),
            loss=jnp.where(hit, _row(l_flat, g * v + j), m.loss),
            rounds=m.rounds + m.live.astype(jnp.int32),
            live=found,
        )
        live = found & (m.rounds < max_moves)
        return m._replace(live=live if done is None else live & ~done(d, m))

    return jax.lax.while_loop(lambda m: jnp.any(m.live), round_, m)


def _repair_scores(d: _Data, cur_s, cur_l, total):
    """Loss-cutting moves, a move that alone meets the budget first (least stock change),
    else the least stock increase per unit of loss removed."""
    ds = d.s - cur_s[:, None]
    dl = d.l - cur_l[:, None]
    allowed = d.valid & (dl < 0)
    closes = allowed & (total + dl <= d.limit)
    return _rank(closes, allowed, ds, ds / jnp.where(dl < 0, -dl, 1))


def _improve_scores(d: _Data, cur_s, cur_l, total):
    """Stock-cutting moves within the budget, one that also cuts loss first (largest stock
    cut), else the largest stock cut per unit of loss added."""
    ds = d.s - cur_s[:, None]
    dl = d.l - cur_l[:, None]
    allowed = d.valid & (total + dl <= d.limit) & (ds < 0)
    return _rank(allowed & (dl <= 0), allowed, ds, ds / jnp.where(dl > 0, dl, 1))


def _polish(
    choice: jax.Array, s: jax.Array, l: jax.Array, limit: jax.Array, valid: jax.Array,
    max_moves: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Greedy single-group moves: repair to the budget, then cut stock within it.

    Two phases (:func:`_greedy`); each round scores all ``G x V`` single-group moves of
    every live problem at once and applies each one's best, and a problem leaves a phase
    when it has no move left (or has used ``max_moves`` rounds over both):

    1. repair (only problems with total loss > ``limit``): :func:`_repair_scores`;
    2. improve: :func:`_improve_scores`.

    Args:
        choice: ``[G, B]`` start.
        s: ``[G, V, B]`` normalised stock.
        l: ``[G, V, B]`` normalised loss.
        limit: ``[B]`` normalised budget.
        valid: ``[G, V, B]`` candidates that may be chosen.
        max_moves: cap on rounds per problem (static).

    Returns:
        ``(choice [G, B], total stock [B], total loss [B])`` of the polished choice (over
        budget only if no repair move was left).
    """
    d = _Data(s, l, valid, limit)
    cur_s, cur_l = _pick(s, choice), _pick(l, choice)
    rounds = jnp.zeros(limit.shape, jnp.int32)
    over = _group_sum(cur_l) > limit
    m = _Moves(choice, cur_s, cur_l, rounds, live=over & (rounds < max_moves))
    m = _greedy(m, d, _repair_scores, max_moves,
                done=lambda d, m: _group_sum(m.loss) <= d.limit)
    m = _greedy(m._replace(live=m.rounds < max_moves), d, _improve_scores, max_moves)
    return m.choice, _group_sum(m.stock), _group_sum(m.loss)


def _forward_exchange(
    start: jax.Array, s: jax.Array, l: jax.Array, limit: jax.Array, valid: jax.Array,
    steps: int,
) -> jax.Array:
    """Best single-group exchange against the next ``steps`` Lagrangian breakpoints.

    From a Lagrangian choice (every group on its lower convex hull), the path of ``lam``
    increasing advances one group at a time to its next hull vertex, cheapest slope
    ``(s_next - s_cur) / (l_cur - l_next)`` first. Along the first ``steps`` such moves,
    every state ``k`` is combined with every single-group deviation ``(g, j)`` (the other
    groups stay on the path), and the cheapest combination within the budget is returned
    (``start`` if none is). This catches the typical MILP optimum that steps one large
    group back (a big stock saving) and pays for it with small steps of several others,
    which single-move greedy cannot reach. Each state costs one pass over the candidates
    for its move and one for its per-group cheapest deviation; the winner's candidate is
    recovered from its row alone.

    Args:
        start: ``[G, B]`` a Lagrangian choice (``lam_hi``'s).
        s: ``[G, V, B]`` normalised stock.
        l: ``[G, V, B]`` normalised loss.
        limit: ``[B]`` normalised budget.
        valid: ``[G, V, B]`` candidates that may be chosen.
        steps: breakpoints to walk (static).

    Returns:
        ``[G, B]`` the best exchange (may be over budget only if ``start`` is).
    """
    g_count, v, _ = s.shape
    s_flat, l_flat = s.reshape(g_count * v, -1), l.reshape(g_count * v, -1)
    rows = jnp.arange(g_count, dtype=jnp.int32)[:, None]
    tiny = jnp.finfo(s.dtype).tiny

    def deviations(cur_s, cur_l):
        """``[G, B]`` stock and loss of the other groups, and per group the least total
        stock of a deviation within the budget (``inf`` if none)."""
        base_s = _group_sum(cur_s) - cur_s
        base_l = _group_sum(cur_l) - cur_l
        fits = valid & (base_l[:, None] + l <= limit)
        return base_s, base_l, jnp.min(jnp.where(fits, base_s[:, None] + s, jnp.inf), axis=1)

    def advance(carry, _):
        c, cur_s, cur_l = carry
        lower = valid & (l < cur_l[:, None])
        slope = jnp.where(lower, (s - cur_s[:, None]) / jnp.maximum(cur_l[:, None] - l, tiny),
                          jnp.inf)
        g = _first_min(jnp.min(slope, axis=1))
        # In group g, the lowest-loss candidate at the best slope.
        row = _row(slope, g)
        best = jnp.min(row, axis=0)
        tie = row <= best
        j = _first_min(jnp.where(tie, _row(l, g), jnp.inf))
        hit = (best < jnp.inf) & (rows == g)
        c = jnp.where(hit, j, c)
        cur_s = jnp.where(hit, _row(s_flat, g * v + j), cur_s)
        cur_l = jnp.where(hit, _row(l_flat, g * v + j), cur_l)
        return (c, cur_s, cur_l), (c, *deviations(cur_s, cur_l))

    init = (start, _pick(s, start), _pick(l, start))
    _, path = jax.lax.scan(advance, init, None, length=steps)
    first = (start, *deviations(*init[1:]))
    path_c, base_s, base_l, dev = (jnp.concatenate([a[None], b]) for a, b in zip(first, path))
    dev = dev.reshape((steps + 1) * g_count, -1)  # [(K + 1) G, B], state-major
    flat = _first_min(dev)
    k, g = flat // g_count, flat % g_count
    bs = _row(base_s.reshape(dev.shape), flat)
    bl = _row(base_l.reshape(dev.shape), flat)
    row = jnp.where(_row(valid, g) & (bl + _row(l, g) <= limit), bs + _row(s, g), jnp.inf)
    choice = jnp.where(rows == g, _first_min(row), _row(path_c, k))
    return jnp.where(jnp.min(row, axis=0) < jnp.inf, choice, start)

