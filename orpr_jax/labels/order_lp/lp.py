"""The SAA ordering LP of one shape as a ``CvxpyLayer``: batched solves and their checks.

:class:`OrderLP` builds the problem (:mod:`orpr_jax.labels.order_lp.formulation`) once
per ``(N, H, S, max_lead_time)``, checks ``is_dpp()`` and wraps it in a
``cvxpylayers.jax.CvxpyLayer``; :meth:`OrderLP.solve_batch` solves a whole batch (dates x
warehouses) in one layer call with Clarabel through diffcp (outside ``jit``: the diffcp
path is not jittable). Quantities are scaled per problem by their largest value and costs
by the largest cost before the layer call, so one layer serves any units.
:meth:`OrderLP.solve_one_fresh` builds and solves a new plain cvxpy problem with constants
(the check and the loop baseline). :func:`make_order_lp` caches one :class:`OrderLP` per
shape.

Solver failures. diffcp's Clarabel path does not raise on a failed solve, so every
solution is checked on the host: finite, and orders, end stock and the lost units implied
by the stock balance non-negative, within the order bounds and the capacity, up to
:data:`FEAS_TOL` of the problem's quantity scale (primal feasibility; optimality is the
solver's). Failed problems are re-solved with a fallback method (SCS by default); those
still failing are reported with :data:`~orpr_jax.labels.order_lp.inputs.STATUS_FAILED`
(orders 0, objective NaN) and the rest of the batch is unaffected.

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory replenishment, arXiv 2512.19001
    (OR labels for pretraining).
    Agrawal, A. et al. "Differentiable convex optimization layers." NeurIPS 2019
    (disciplined parametrized programming, cvxpylayers).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.labels.order_lp.formulation import _PARAMETER_NAMES, _formulate, _values
from orpr_jax.labels.order_lp.inputs import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RETRIED,
    OrderLPInputs,
    OrderLPSolution,
    _check_size,
)
from orpr_jax.labels.order_lp.plan import _finish, _host, _Host, _lost_of, _take, _violation

__all__ = [
    "DEFAULT_FALLBACK_SOLVER_ARGS",
    "DEFAULT_SOLVER_ARGS",
    "FEAS_TOL",
    "OrderLP",
    "make_order_lp",
]

FEAS_TOL = 1e-6
"""Largest constraint violation accepted, as a fraction of the problem's quantity scale
(its largest stock, arrival or demand value)."""

DEFAULT_SOLVER_ARGS: dict[str, Any] = {"solve_method": "Clarabel"}
"""diffcp arguments of the primary layer solve (other keys are Clarabel settings)."""

DEFAULT_FALLBACK_SOLVER_ARGS: dict[str, Any] = {
    "solve_method": "SCS", "eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200_000,
}
"""diffcp arguments of the retry of failed problems (other keys are SCS settings)."""


class OrderLP:
    """The SAA ordering LP of one shape, canonicalised once into a ``CvxpyLayer``.

    Build it with :func:`make_order_lp` (cached per shape). The problem and its DPP check
    happen in the constructor; the layer (cvxpy canonicalisation into parametrised conic
    data) is built on first use and kept.

    Attributes:
        num_rows: N, rows per problem (real rows plus inactive padding).
        horizon: H, days planned.
        scenarios: S, demand scenarios.
        max_lead_time: K, the largest lead time the layer encodes (``<= H``).
        problem: the DPP ``cvxpy.Problem``.
        parameters: its Parameters in layer order (supply, demand, lead one-hot, order
            bound, capacity, holding, penalty, purchase cost).
    """

    def __init__(self, num_rows: int, horizon: int, scenarios: int,
                 max_lead_time: int | None = None) -> None:
        """Builds the DPP problem.

        Args:
            num_rows: N >= 1.
            horizon: H >= 1.
            scenarios: S >= 1.
            max_lead_time: K in ``[1, H]``; default H. Smaller K is a smaller problem.

        Raises:
            ValueError: a size < 1 or K outside ``[1, H]``.
            RuntimeError: the problem is not DPP (a bug).
        """
        self.num_rows = _check_size("num_rows", num_rows)
        self.horizon = _check_size("horizon", horizon)
        self.scenarios = _check_size("scenarios", scenarios)
        k = self.horizon if max_lead_time is None else _check_size("max_lead_time",
                                                                  max_lead_time)
        if k > self.horizon:
            raise ValueError(
                f"max_lead_time={k} is not allowed; allowed range [1, {self.horizon}] "
                "(the horizon)"
            )
        self.max_lead_time = k
        self._template = _formulate(self.num_rows, self.horizon, self.scenarios, k, None)
        if not self._template.problem.is_dpp():
            raise RuntimeError("the order LP is not DPP; cvxpylayers cannot canonicalise it")
        self._layer = None

    @property
    def problem(self) -> cp.Problem:
        return self._template.problem

    @property
    def parameters(self) -> tuple[cp.Parameter, ...]:
        return self._template.parameters

    @property
    def layer(self):
        """The ``cvxpylayers.jax.CvxpyLayer`` (built on first access, float64)."""
        if self._layer is None:
            from cvxpylayers.jax import CvxpyLayer

            tpl = self._template
            with jax.enable_x64(True):  # float64 parametrised data, whatever the default
                self._layer = CvxpyLayer(
                    tpl.problem, parameters=list(tpl.parameters), variables=[tpl.q, tpl.inv],
                )
        return self._layer

    def _check_shape(self, inputs: OrderLPInputs, batched: bool) -> None:
        if inputs.batched != batched:
            raise ValueError(
                "solve_batch takes a batch (demand [B, S, N, H]; see stack_inputs)"
                if batched else "solve_one_fresh takes one problem (demand [S, N, H])"
            )
        _, n, h, s = inputs.shape
        if (n, h, s) != (self.num_rows, self.horizon, self.scenarios):
            raise ValueError(
                f"inputs have (N, H, S) = {(n, h, s)}; this OrderLP is "
                f"{(self.num_rows, self.horizon, self.scenarios)}"
            )

    def _check_leads(self, hb: _Host) -> None:
        longest = int(hb.lead.max(initial=1))
        if longest > self.max_lead_time:
            raise ValueError(
                f"lead_time={longest} exceeds this OrderLP's max_lead_time="
                f"{self.max_lead_time}; allowed range [1, {self.max_lead_time}]"
            )

    def _layer_solve(self, hb: _Host, idx: np.ndarray, args: dict[str, Any]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solves problems ``idx`` in one layer call; original-unit ``(q, I, l)``."""
        vals = _values(hb, idx, self.max_lead_time, scaled=True)
        b, s, n, h = len(idx), self.scenarios, self.num_rows, self.horizon
        with jax.enable_x64(True), warnings.catch_warnings():
            # diffcp warns on inaccurate solves; every solution is checked below instead.
            warnings.simplefilter("ignore")
            q, inv = self.layer(*[jnp.asarray(v, jnp.float64) for v in vals],
                                solver_args=args)
            q, inv = np.asarray(q, np.float64), np.asarray(inv, np.float64)
        qs = hb.qscale[idx]
        q = q * qs[:, None, None]
        inv = inv.reshape(b, s, n, h) * qs[:, None, None, None]
        return q, inv, _lost_of(_take(hb, idx), q, inv)

    def _attempt(self, hb: _Host, idx: np.ndarray, args: dict[str, Any],
                 q_out: np.ndarray, obj_out: np.ndarray) -> np.ndarray:
        """Solves ``idx`` (one call, or one by one if the call raises); ``[len]`` ok mask."""
        ok = np.zeros(len(idx), bool)
        _ = self.layer  # built outside the try: a set-up error is a bug, not a failed solve
        try:
            parts = [(np.arange(len(idx)), self._layer_solve(hb, idx, args))]
        except Exception:  # noqa: BLE001 - a raising solver fails the call, not the batch
            parts = []
            for j in range(len(idx)):
                try:
                    parts.append((np.array([j]), self._layer_solve(hb, idx[j:j + 1], args)))
                except Exception:  # noqa: BLE001 - reported as failed below
                    continue
        for pos, (q, inv, lost) in parts:
            sub = _take(hb, idx[pos])
            good = _violation(sub, q, inv, lost) <= FEAS_TOL
            orders, obj = _finish(sub, q, inv, lost)
            q_out[idx[pos[good]]] = orders[good]
            obj_out[idx[pos[good]]] = obj[good]
            ok[pos[good]] = True
        return ok

    def solve_batch(
        self,
        inputs: OrderLPInputs,
        *,
        solver_args: dict[str, Any] | None = None,
        fallback_solver_args: dict[str, Any] | None = None,
        n_jobs: int = -1,
        batch_size: int | None = None,
    ) -> OrderLPSolution:
        """Solves a batch of problems with one ``CvxpyLayer`` call (per ``batch_size``).

        Host function (not jittable: the diffcp / Clarabel path runs in Python threads).
        Each problem is checked; failed ones are re-solved with ``fallback_solver_args``
        (one call for all of them, one by one if that call raises) and the rest reported
        with :data:`STATUS_FAILED`; no exception is raised for a solver failure.

        Args:
            inputs: a batch (leading axis B) of this LP's shape.
            solver_args: diffcp arguments merged over :data:`DEFAULT_SOLVER_ARGS`
                (``solve_method`` and solver settings, e.g. ``{"max_iter": 50}``).
            fallback_solver_args: diffcp arguments of the retry (replacing
                :data:`DEFAULT_FALLBACK_SOLVER_ARGS` when given).
            n_jobs: diffcp worker threads (``-1``: one per CPU).
            batch_size: problems per layer call; ``None`` solves all in one call.

        Returns:
            An :class:`OrderLPSolution` with ``orders [B, N, H]``, ``objective [B]`` and
            ``status [B]``; ``solution.label`` is today's ``[B, N]`` orders.

        Raises:
            ValueError: invalid inputs, a shape other than this LP's, a lead time above
                ``max_lead_time`` or ``batch_size < 1``.
        """
        self._check_shape(inputs, batched=True)
        hb = _host(inputs)
        self._check_leads(hb)
        b = inputs.shape[0]
        step = b if batch_size is None else _check_size("batch_size", batch_size)
        primary = {**DEFAULT_SOLVER_ARGS, "n_jobs_forward": n_jobs, **(solver_args or {})}
        fallback = {"n_jobs_forward": n_jobs,
                    **(DEFAULT_FALLBACK_SOLVER_ARGS if fallback_solver_args is None
                       else fallback_solver_args)}
        q = np.zeros((b, self.num_rows, self.horizon))
        obj = np.full(b, np.nan)
        status = np.full(b, STATUS_FAILED, np.int32)
        for start in range(0, b, step):
            idx = np.arange(start, min(start + step, b))
            ok = self._attempt(hb, idx, primary, q, obj)
            status[idx[ok]] = STATUS_OK
            if not ok.all():
                retry = idx[~ok]
                ok2 = self._attempt(hb, retry, fallback, q, obj)
                status[retry[ok2]] = STATUS_RETRIED
        return OrderLPSolution(orders=q, objective=obj, status=status, solver="cvxpylayers")

    def solve_one_fresh(
        self,
        inputs: OrderLPInputs,
        *,
        solver: str = cp.CLARABEL,
        fallback_solver: str | None = cp.SCS,
    ) -> OrderLPSolution:
        """Builds and solves a new plain cvxpy problem (constants, no DPP) for one problem.

        The check of :meth:`solve_batch` and its loop baseline: the same LP in original
        units, canonicalised from scratch. Failure handling as in :meth:`solve_batch`.

        Args:
            inputs: one problem (unbatched) of this LP's shape.
            solver: cvxpy solver name of the first try.
            fallback_solver: cvxpy solver of the retry (``None``: no retry).

        Returns:
            An :class:`OrderLPSolution` without the batch axis: ``orders [N, H]``,
            ``objective []``, ``status []``.

        Raises:
            ValueError: invalid inputs or a shape other than this LP's.
        """
        self._check_shape(inputs, batched=False)
        hb = _host(inputs)
        self._check_leads(hb)
        idx = np.zeros(1, np.int64)
        vals = {k: v[0] for k, v in zip(_PARAMETER_NAMES,
                                        _values(hb, idx, self.max_lead_time, False))}
        q_out = np.zeros((self.num_rows, self.horizon))
        tries = [(solver, STATUS_OK)]
        if fallback_solver is not None:
            tries.append((fallback_solver, STATUS_RETRIED))
        for name, code in tries:
            tpl = _formulate(self.num_rows, self.horizon, self.scenarios,
                             self.max_lead_time, vals)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # checked below instead
                    kwargs = {"eps": 1e-7, "max_iters": 200_000} if name == cp.SCS else {}
                    tpl.problem.solve(solver=name, **kwargs)
            except Exception:  # noqa: BLE001 - a solver error is a failed try
                continue
            if tpl.q.value is None:
                continue
            s, n, h = self.scenarios, self.num_rows, self.horizon
            q = np.asarray(tpl.q.value, np.float64)[None]
            inv = np.asarray(tpl.inv.value, np.float64).reshape(1, s, n, h)
            lost = _lost_of(hb, q, inv)
            if _violation(hb, q, inv, lost)[0] <= FEAS_TOL:
                orders, obj = _finish(hb, q, inv, lost)
                return OrderLPSolution(orders=orders[0], objective=obj[0],
                                       status=np.int32(code), solver=f"fresh-{name}")
        return OrderLPSolution(orders=q_out, objective=np.float64(np.nan),
                               status=np.int32(STATUS_FAILED), solver=f"fresh-{solver}")


@functools.lru_cache(maxsize=32)
def make_order_lp(num_rows: int, horizon: int, scenarios: int,
                  max_lead_time: int | None = None) -> OrderLP:
    """The :class:`OrderLP` of one shape, built once and cached (layer included).

    Args:
        num_rows: N >= 1, rows per problem (pad warehouses to one N).
        horizon: H >= 1, days planned.
        scenarios: S >= 1, demand scenarios.
        max_lead_time: K in ``[1, H]``, largest lead time encoded; default H.

    Returns:
        The cached LP.

    Raises:
        ValueError: a size < 1 or K outside ``[1, H]``.
    """
    return OrderLP(num_rows, horizon, scenarios, max_lead_time)
