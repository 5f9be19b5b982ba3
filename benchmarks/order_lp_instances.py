"""Random ordering-LP instances and the batched-layer vs fresh-cvxpy benchmark.

Test and benchmark helpers for :mod:`orpr_jax.labels.order_lp` (not library code):
:func:`random_inputs` draws realistic batches and :func:`benchmark_order_lp` times the
batched ``CvxpyLayer`` against a loop of fresh cvxpy solves.

Usage::

    python benchmarks/order_lp_instances.py [B N H S]   # default 64 8 21 4; JSON to stdout
"""

from __future__ import annotations

import math
import time
from typing import Any

import cvxpy as cp
import jax
import numpy as np

from orpr_jax.labels.order_lp.inputs import (
    OrderLPInputs,
    _check_size,
    order_lp_inputs,
    stack_inputs,
)
from orpr_jax.labels.order_lp.lp import OrderLP

__all__ = ["benchmark_order_lp", "random_inputs"]


def random_inputs(
    seed: int,
    B: int,  # noqa: N803 - shape letters as in the docstrings
    N: int,  # noqa: N803
    H: int,  # noqa: N803
    S: int,  # noqa: N803
    *,
    max_lead: int = 4,
    review: bool = True,
    capacity_frac: float | None = None,
    active_frac: float = 1.0,
    integer: bool = False,
) -> OrderLPInputs:
    """Random realistic instances (gamma demand around lognormal means, pipeline stock).

    Args:
        seed: NumPy seed.
        B: problems.
        N: rows per problem.
        H: horizon (days).
        S: scenarios.
        max_lead: lead times are drawn in ``[1, min(max_lead, H)]``.
        review: draw review periods in 1..3 with random offsets (else daily review).
        capacity_frac: daily capacity as this fraction of the mean total daily demand
            (``None``: no capacity).
        active_frac: fraction of rows (the first ones) that are active; >= 1 stays active.
        integer: round demand, stock and arrivals to whole units.

    Returns:
        A validated batch.

    Raises:
        ValueError: a size < 1, ``max_lead < 1``, ``capacity_frac < 0`` or
            ``active_frac`` outside ``(0, 1]``.
    """
    for name, v in (("B", B), ("N", N), ("H", H), ("S", S), ("max_lead", max_lead)):
        _check_size(name, v)
    if capacity_frac is not None and not capacity_frac >= 0:
        raise ValueError(f"capacity_frac={capacity_frac!r} is not allowed; allowed [0, inf)")
    if not 0.0 < active_frac <= 1.0:
        raise ValueError(f"active_frac={active_frac!r} is not allowed; allowed (0, 1]")
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(np.log(5.0), 0.8, (B, 1, N, 1))
    demand = rng.gamma(2.0, mu / 2.0, (B, S, N, H))
    lead = rng.integers(1, min(max_lead, H) + 1, (B, N))
    on_hand = rng.uniform(0, 3, (B, N)) * mu[:, 0, :, 0]
    arrivals = np.where(rng.random((B, N, H)) < 0.2, rng.uniform(0, 4, (B, N, H)), 0.0)
    arrivals *= mu[:, 0]
    arrivals[..., 0] = 0.0
    arrivals[np.arange(H)[None, None] > lead[..., None]] = 0.0  # pipeline within a lead time
    if integer:
        demand, on_hand, arrivals = np.round(demand), np.round(on_hand), np.round(arrivals)
    if review:
        period = rng.integers(1, 4, (B, N, 1))
        offset = rng.integers(0, 3, (B, N, 1)) % period
        mask = ((np.arange(H) - offset) % period == 0).astype(np.float64)
    else:
        mask = np.ones((B, N, H))
    h = rng.uniform(0.2, 1.0, (B, N))
    p = h * rng.uniform(2.0, 20.0, (B, N))
    c = rng.uniform(0.0, 2.0, (B, N))
    if capacity_frac is None:
        cap = np.full((B, H), math.inf)
    else:
        cap = np.repeat(capacity_frac * mu.sum(axis=(1, 2, 3))[:, None], H, axis=1)
    n_act = max(1, int(round(active_frac * N)))
    active = np.broadcast_to(np.arange(N) < n_act, (B, N)).copy()
    problems = [
        order_lp_inputs(
            on_hand=on_hand[i], demand=demand[i], lead_time=lead[i], holding_cost=h[i],
            penalty_cost=p[i], purchase_cost=c[i], arrivals=arrivals[i],
            review_mask=mask[i], capacity=cap[i], active=active[i],
        )
        for i in range(B)
    ]
    return stack_inputs(problems)


def benchmark_order_lp(B: int, N: int, H: int, S: int, seed: int = 0,  # noqa: N803
                       *, n_fresh: int | None = None, n_jobs: int = -1,
                       repeats: int = 2) -> dict[str, Any]:
    """Solves per second of the batched layer against a loop of fresh cvxpy solves.

    Host timings (``time.perf_counter``). Set-up is timed apart: ``canonicalise_s`` builds
    the layer (cvxpy canonicalisation of the DPP problem, once per shape) and
    ``first_call_s`` is the first batched call (it also compiles the JAX parameter maps for
    this batch size). The batched rate is the best of ``repeats`` further calls; the fresh
    loop (after one warm-up solve) builds, canonicalises and solves a new cvxpy problem per
    instance. Both use Clarabel.

    Args:
        B: problems in the batch.
        N: rows per problem.
        H: horizon.
        S: scenarios.
        seed: instance seed (:func:`random_inputs`: review days, no capacity).
        n_fresh: fresh solves timed (the first ``n_fresh`` problems); default ``min(B, 16)``.
        n_jobs: diffcp worker threads of the layer (``-1``: one per CPU).
        repeats: timed batched calls (>= 1).

    Returns:
        A dict with ``batched_solves_per_s``, ``fresh_solves_per_s``, ``speedup``,
        ``canonicalise_s``, ``first_call_s``, ``max_rel_objective_diff`` (batched vs
        fresh on the fresh subset), ``statuses`` (counts of OK / retried / failed) and the
        sizes, CPU count and versions.
    """
    import os

    import cvxpylayers
    import diffcp

    inputs = random_inputs(seed, B, N, H, S)
    n_fresh = min(B, 16) if n_fresh is None else max(1, min(int(n_fresh), B))
    lp = OrderLP(N, H, S)  # uncached, so its set-up is measured
    t0 = time.perf_counter()
    _ = lp.layer
    canon = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp.solve_batch(inputs, n_jobs=n_jobs)
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        sol = lp.solve_batch(inputs, n_jobs=n_jobs)
        best = min(best, time.perf_counter() - t0)
    batched = B / best

    problems = [jax.tree.map(lambda a, i=i: a[i], inputs) for i in range(n_fresh)]
    lp.solve_one_fresh(problems[0])
    t0 = time.perf_counter()
    fresh = [lp.solve_one_fresh(one) for one in problems]
    fresh_rate = n_fresh / (time.perf_counter() - t0)
    f_obj = np.array([f.objective for f in fresh])
    rel = np.abs(sol.objective[:n_fresh] - f_obj) / np.maximum(1.0, np.abs(f_obj))
    return {
        "B": B, "N": N, "H": H, "S": S, "seed": seed, "n_fresh": n_fresh, "n_jobs": n_jobs,
        "batched_solves_per_s": batched,
        "fresh_solves_per_s": fresh_rate,
        "speedup": batched / fresh_rate,
        "canonicalise_s": canon,
        "first_call_s": first,
        "max_rel_objective_diff": float(np.nanmax(rel)),
        "statuses": np.bincount(sol.status, minlength=3).tolist(),
        "cpu_count": os.cpu_count(),
        "device": "host (cvxpylayers diffcp path, Clarabel)",
        "versions": {"cvxpy": cp.__version__, "cvxpylayers": cvxpylayers.__version__,
                     "diffcp": getattr(diffcp, "__version__", "?"), "jax": jax.__version__},
    }


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    import json
    import sys

    sizes = [int(a) for a in sys.argv[1:5]] or [64, 8, 21, 4]
    print(json.dumps(benchmark_order_lp(*sizes), indent=2))
