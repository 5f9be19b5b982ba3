"""Random selection (MCKP) instances and the solver benchmark on them.

Test and benchmark helpers for :mod:`orpr_jax.labels.selection` (not library code):
:func:`random_problem` draws realistic batches, :func:`tiny_problem` small ones an
enumeration can solve exactly, and :func:`benchmark_selection` times the exact MILP, the
batched LP layer, a loop of fresh cvxpy LP solves and the JAX dual on realistic ones.
``benchmarks/bench_labels.py`` reports the benchmark; ``tests/labels/test_selection.py``
draws its instances here.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import numpy as np

from orpr_jax.labels.selection.batched_lp import (
    _solve_lp_fresh,
    _solve_lp_layer,
    solve_batched_lp,
)
from orpr_jax.labels.selection.dual import solve_dual
from orpr_jax.labels.selection.milp import solve_milp
from orpr_jax.labels.selection.problem import SelectionProblem, _host, make_problem

__all__ = ["benchmark_selection", "random_problem", "tiny_problem"]

_TINY = 1e-30


def _std_normal_loss(z: np.ndarray) -> np.ndarray:
    """Standard normal loss function ``E[(Z - z)^+] = pdf(z) - z (1 - cdf(z))``."""
    from scipy.special import ndtr

    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return pdf - z * (1 - ndtr(z))


def random_problem(
    key_or_seed: jax.Array | int,
    B: int,  # noqa: N803 - shape letters as in the docstrings
    G: int,  # noqa: N803
    V: int,  # noqa: N803
    alpha: float = 0.95,
    *,
    rows_per_group: int = 8,
    noise: float = 0.03,
    monotone: bool = False,
    mask: bool = True,
    active_frac: float = 1.0,
    horizon: float = 28.0,
) -> SelectionProblem:
    """Realistic random MCKP instances (stock rising, loss falling and convex in v).

    A group (e.g. a category) aggregates ``1 + Poisson(rows_per_group - 1)`` SKUs, capped
    at ``2 rows_per_group``. Each SKU has daily sales ``mu`` (lognormal), a unit value
    (lognormal), a demand CV and a lead time. Candidate ``j`` stands for ``v = 1 + j``
    inventory days: the SKU's stock is ``value x mu x v``; its lost sales over the horizon
    follow the normal loss function of the safety days ``v - lead`` (convex, decreasing,
    linear while ``v`` is short of the lead time). Group curves are the SKU sums times
    multiplicative noise (the replayed curves are noisy). Budget is ``(1 - alpha) x`` total
    sales of the active groups. ``rows_per_group=1`` gives single-SKU groups, whose long
    linear stretches make the problem harder for relaxation-based solvers.

    Args:
        key_or_seed: a JAX PRNG key or an int seed (the draw itself is NumPy, host side).
        B: problems.
        G: groups per problem.
        V: candidates per group.
        alpha: service level in ``[0, 1]``.
        rows_per_group: mean SKUs per group (>= 1).
        noise: relative noise on stock and loss (>= 0).
        monotone: sort the noisy curves so stock is strictly increasing and loss strictly
            decreasing in ``v``.
        mask: per-group min/max v and, for ~30% of groups, a turnover-days cap.
        active_frac: fraction of groups (the first ones) that are active; the rest are
            zero-padded inactive groups. At least one stays active.
        horizon: days of sales covered by the loss and the budget.

    Returns:
        A validated :class:`SelectionProblem`.

    Raises:
        ValueError: ``alpha`` outside ``[0, 1]``, ``noise < 0``, ``active_frac`` outside
            ``(0, 1]`` or a size < 1.
    """
    for name, value in (("B", B), ("G", G), ("V", V), ("rows_per_group", rows_per_group)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1; got {value}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    if not 0.0 < active_frac <= 1.0:
        raise ValueError(f"active_frac must be in (0, 1]; got {active_frac}")
    if isinstance(key_or_seed, (int, np.integer)):
        seed = int(key_or_seed)
    else:
        seed = int(jax.random.randint(key_or_seed, (), 0, np.iinfo(np.int32).max))
    rng = np.random.default_rng(seed)
    r = 2 * rows_per_group - 1 if rows_per_group > 1 else 1
    count = np.minimum(1 + rng.poisson(rows_per_group - 1, (B, G, 1)), r)
    present = np.arange(r)[None, None, :] < count  # [B, G, R]
    shape = (B, G, r, 1)
    mu = rng.lognormal(np.log(20.0), 1.0, shape) * present[..., None]
    value = rng.lognormal(np.log(50.0), 0.7, shape)
    cv = rng.uniform(0.3, 1.2, shape)
    lead = rng.integers(2, 11, shape).astype(np.float64)
    days = 1.0 + np.arange(V, dtype=np.float64)
    z = (days - lead) / (cv * np.sqrt(lead))
    frac = np.minimum(1.0, cv * np.sqrt(lead) * _std_normal_loss(z) / 7.0)
    sales = (mu * horizon).sum(axis=2)  # [B, G, 1]
    stock = (value * mu * days).sum(axis=2) * (1 + noise * rng.standard_normal((B, G, V)))
    loss = (mu * horizon * frac).sum(axis=2) * (1 + noise * rng.standard_normal((B, G, V)))
    # A small strictly decreasing floor keeps far-out candidates from tying at 0.
    loss = loss + sales * 1e-6 * np.exp(-days / 10.0)
    stock = np.maximum(stock, 0.0)
    loss = np.maximum(loss, 0.0)
    if monotone:
        stock = np.sort(stock, axis=-1)
        loss = np.sort(loss, axis=-1)[..., ::-1]
    allowed = np.ones((B, G, V), bool)
    if mask:
        lo = rng.integers(0, min(3, V), (B, G, 1))
        hi = rng.integers(max(V - 6, 0), V, (B, G, 1))
        capped = rng.random((B, G, 1)) < 0.3
        cap = rng.integers(V // 2, V, (B, G, 1))
        hi = np.where(capped, np.minimum(hi, cap), hi)
        hi = np.maximum(hi, lo)
        j = np.arange(V)[None, None, :]
        allowed = (j >= lo) & (j <= hi)
    n_active = max(1, int(round(active_frac * G)))
    active = np.zeros((B, G), bool)
    active[:, :n_active] = True
    stock = np.where(active[..., None], stock, 0.0)
    loss = np.where(active[..., None], loss, 0.0)
    budget = (1.0 - alpha) * np.where(active, sales[..., 0], 0.0).sum(axis=-1)
    return make_problem(stock, loss, budget, allowed, active)


def tiny_problem(
    seed: int, b: int = 4, g: int = 3, v: int = 4, masked: bool = True
) -> SelectionProblem:
    """Small instances with rising stock and falling loss plus noise; budget in between.

    Small enough for an exact optimum by enumerating all ``v ** g`` choices.

    Args:
        seed: NumPy seed.
        b: problems.
        g: groups per problem.
        v: candidates per group.
        masked: about a quarter of the candidates disallowed (each group keeps one).

    Returns:
        A validated :class:`SelectionProblem` whose budget lies between its minimum-loss
        and its minimum-stock choice's loss.
    """
    rng = np.random.default_rng(seed)
    stock = np.cumsum(rng.uniform(0.5, 3.0, (b, g, v)), axis=-1)
    loss = np.cumsum(rng.uniform(0.2, 2.0, (b, g, v)), axis=-1)[..., ::-1]
    loss = loss * rng.uniform(0.9, 1.1, loss.shape)  # not monotone any more
    allowed = np.ones((b, g, v), bool)
    if masked:
        allowed = rng.random((b, g, v)) < 0.75
        allowed[..., 0] |= ~allowed.any(axis=-1)
    lo = np.where(allowed, loss, np.inf).min(-1).sum(-1)
    hi = np.take_along_axis(loss, np.where(allowed, stock, np.inf).argmin(-1)[..., None], -1)
    hi = hi[..., 0].sum(-1)
    budget = lo + rng.uniform(0.1, 0.9, b) * (hi - lo)
    return make_problem(stock, loss, budget, allowed)


def _rel_gap(objective: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (objective - reference) / np.maximum(np.abs(reference), _TINY)


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def benchmark_selection(
    B: int,  # noqa: N803 - shape letters as in the docstrings
    G: int,  # noqa: N803
    V: int,  # noqa: N803
    seed: int = 0,
    *,
    reps: int = 30,
    lp_reps: int = 3,
    n_jobs: int = -1,
) -> dict[str, Any]:
    """Throughput of the solvers on :func:`random_problem` instances (host wall clock).

    Every path is warmed up at the full batch shape first (cvxpy canonicalisation, the
    layer's sparse parameter maps, which JAX compiles per batch size, and ``jit``), then
    timed: the MILP loop (one pass), the batched LP layer (one call for the batch, LP solve
    only; median of ``lp_reps``), the full :func:`solve_batched_lp` (layer + rounding, one
    call), a loop of fresh cvxpy LP solves (build + Clarabel solve of a new problem per
    instance, the same relaxation and settings; one pass) and the jitted JAX dual
    (``block_until_ready``; median of ``reps``). Gaps compare objectives with the MILP's
    on the problems all solvers find feasible.

    Args:
        B: problems.
        G: groups per problem.
        V: candidates per group.
        seed: instance seed.
        reps: timed calls of the dual.
        lp_reps: timed calls of the batched layer.
        n_jobs: diffcp worker threads for the layer (``-1``: one per CPU).

    Returns:
        A dict with ``*_solves_per_s`` for ``milp``, ``batched_lp``, ``batched_lp_full``,
        ``fresh_lp_loop`` and ``dual``; ``batched_vs_fresh`` and ``dual_vs_batched``;
        ``dual_compile_s``; ``max_rel_gap_fast_vs_milp`` / ``mean_rel_gap_fast_vs_milp``
        (the dual), ``max_rel_gap_batched_lp_vs_milp``; sizes, dtype, device, versions.
    """
    import importlib.metadata as md

    problem = random_problem(seed, B, G, V)
    hp = _host(problem)
    idx = np.arange(B)
    out: dict[str, Any] = {
        "B": B, "G": G, "V": V, "seed": seed, "dtype": str(problem.stock.dtype),
        "device": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
        "versions": {name: md.version(name) for name in
                     ("jax", "cvxpy", "cvxpylayers", "diffcp", "clarabel", "highspy")},
    }
    dual = solve_dual
    t0 = time.perf_counter()
    jax.block_until_ready(dual(problem))
    out["dual_compile_s"] = time.perf_counter() - t0
    # Timed before any cvxpy solve: timed right after them it ran at less than half its
    # speed alone (the solvers' worker threads still competing for the cores, we think).
    fast = dual(problem)
    t_dual = _median_time(lambda: jax.block_until_ready(dual(problem)), reps)
    out["dual_solves_per_s"] = B / t_dual
    solve_milp(jax.tree.map(lambda a: a[:1], problem))
    solve_batched_lp(problem, n_jobs=n_jobs)
    _solve_lp_fresh(hp, 0)

    t0 = time.perf_counter()
    milp = solve_milp(problem)
    out["milp_solves_per_s"] = B / (time.perf_counter() - t0)

    t_layer = _median_time(lambda: _solve_lp_layer(hp, idx, None, n_jobs, None), lp_reps)
    out["batched_lp_solves_per_s"] = B / t_layer
    t0 = time.perf_counter()
    lp = solve_batched_lp(problem, n_jobs=n_jobs)
    out["batched_lp_full_solves_per_s"] = B / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for i in idx:
        _solve_lp_fresh(hp, int(i))
    out["fresh_lp_loop_solves_per_s"] = B / (time.perf_counter() - t0)

    out["batched_vs_fresh"] = out["batched_lp_solves_per_s"] / out["fresh_lp_loop_solves_per_s"]
    out["dual_vs_batched"] = out["dual_solves_per_s"] / out["batched_lp_solves_per_s"]
    both = np.asarray(milp.feasible) & np.asarray(fast.feasible) & np.asarray(lp.feasible)
    gap = _rel_gap(np.asarray(fast.objective, np.float64), np.asarray(milp.objective))
    out["max_rel_gap_fast_vs_milp"] = float(np.max(gap[both], initial=0.0))
    out["mean_rel_gap_fast_vs_milp"] = float(np.mean(gap[both])) if both.any() else 0.0
    gap_lp = _rel_gap(np.asarray(lp.objective), np.asarray(milp.objective))
    out["max_rel_gap_batched_lp_vs_milp"] = float(np.max(gap_lp[both], initial=0.0))
    out["feasible_count"] = int(both.sum())
    return out
