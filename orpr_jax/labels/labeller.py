"""The simulation-augmented OR model: rolling-horizon labelling of inventory-days decisions.

On each decision date (every ``stride`` days) and for every row, the days ahead are
replayed under each candidate v (:mod:`orpr_jax.labels.replay`); per warehouse, one v is
chosen per group (category x warehouse by default, or per row) to minimise the stock held
subject to total lost units <= (1 - alpha) x total demand, a multiple-choice knapsack
(:mod:`orpr_jax.labels.selection`). Each row counts the days its decision can affect:
from ceil(mean lead time) (when today's order can first arrive) to ceil(mean lead time) +
review period + ``margin``. The chosen v are the labels;
the simulation then advances to the next date with the chosen v in force, so each date's
state is the one the OR policy itself produces.

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory replenishment, arXiv 2512.19001
    (the simulation-augmented OR model that labels the decisions).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax._validation import check_int
from orpr_jax.labels import selection as sel
from orpr_jax.labels.online.forecast import past_promo_flags, scenario_demand
from orpr_jax.labels.replay import replay_candidates, replay_config, row_horizons, row_starts
from orpr_jax.policies.forecast import censored_forecast
from orpr_jax.policies.heuristics import InventoryDays
from orpr_jax.sim.dynamics import observe
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import Observation, SimParams, SimState

Solver = Literal["dual", "milp", "batched_lp"]


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """How decisions are labelled.

    Attributes:
        v_min: smallest candidate inventory-days value (>= 0).
        v_max: largest candidate (>= v_min); candidates are v_min..v_max in steps of 1.
        alpha: service target in (0, 1]: lost units <= (1 - alpha) x demand.
        stride: days between decision dates.
        margin: days added to each row's ceil(lead time) + review period horizon.
        max_horizon: cap on the replay horizon (days).
        grouping: ``"category_warehouse"`` (one v per category in each warehouse) or
            ``"row"`` (one v per row).
        scenarios: 0 replays the realised demand (hindsight, the default: labels that
            are a bound, not a deployable policy); S > 0 replays S sampled scenarios.
        scenario_model: with ``scenarios > 0``, ``"poisson"`` draws Poisson scenarios
            around each row's censored forecast; ``"negbin"`` / ``"bootstrap"`` draw the
            deployable model's scenarios, fitted on the observed window only (weekday
            pattern, overdispersion, the promotions ahead; see
            :mod:`orpr_jax.labels.online.forecast`).
        objective: ``"value"`` minimises holding cost of the stock; ``"units"`` units.
        window: moving-average window (days) of the inventory-days forecast.
        turnover_cap: optional cap on a group's replayed turnover days (stock / sales);
            candidates above it are not allowed (unless no candidate meets it).
        solver: ``"dual"`` (JAX Lagrangian, the fast path), ``"milp"`` (exact, cvxpy +
            HiGHS) or ``"batched_lp"`` (cvxpylayers relaxation, rounded).
        max_dates: label at most this many decision dates (the first ones).
    """

    v_min: int = 1
    v_max: int = 30
    alpha: float = 0.95
    stride: int = 7
    margin: int = 7
    max_horizon: int = 60
    grouping: Literal["category_warehouse", "row"] = "category_warehouse"
    scenarios: int = 0
    scenario_model: Literal["poisson", "negbin", "bootstrap"] = "poisson"
    objective: Literal["value", "units"] = "value"
    window: int = 28
    turnover_cap: float | None = None
    solver: Solver = "dual"
    max_dates: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and 0.0 < self.alpha <= 1.0):
            raise ValueError(f"alpha={self.alpha!r} is not allowed; expected a number in (0, 1]")
        for name, low in (("v_min", 0), ("stride", 1), ("margin", 0), ("max_horizon", 1),
                          ("scenarios", 0), ("window", 1)):
            check_int(name, getattr(self, name), low)
        if isinstance(self.v_max, bool) or not isinstance(self.v_max, int):
            raise ValueError(f"v_max={self.v_max!r} is not allowed; expected an integer")
        if self.v_min > self.v_max:
            raise ValueError(
                f"v_min={self.v_min} > v_max={self.v_max} is not allowed; expected v_min <= v_max"
            )
        if self.grouping not in ("category_warehouse", "row"):
            raise ValueError(
                f"grouping={self.grouping!r} is not allowed; use 'category_warehouse' or 'row'"
            )
        if self.objective not in ("value", "units"):
            raise ValueError(f"objective={self.objective!r} is not allowed; use 'value' or 'units'")
        if self.scenario_model not in ("poisson", "negbin", "bootstrap"):
            raise ValueError(f"scenario_model={self.scenario_model!r} is not allowed; use "
                             "'poisson', 'negbin' or 'bootstrap'")
        if self.solver not in ("dual", "milp", "batched_lp"):
            raise ValueError(
                f"solver={self.solver!r} is not allowed; use 'dual', 'milp' or 'batched_lp'"
            )
        if self.max_dates is not None and (
            isinstance(self.max_dates, bool) or not isinstance(self.max_dates, int)
            or self.max_dates < 1
        ):
            raise ValueError(f"max_dates={self.max_dates!r} is not allowed; expected an integer >= 1")
        if self.turnover_cap is not None and not self.turnover_cap > 0:
            raise ValueError(f"turnover_cap={self.turnover_cap!r} is not allowed; expected > 0")

    @property
    def candidates(self) -> np.ndarray:
        """``[V]`` candidate values v_min..v_max."""
        return np.arange(self.v_min, self.v_max + 1, dtype=np.float32)


class Groups(NamedTuple):
    """Row -> group -> (warehouse problem, slot) maps (host NumPy, int32)."""

    group_of_row: np.ndarray  # [R]
    problem_of_group: np.ndarray  # [NG] warehouse index
    slot_of_group: np.ndarray  # [NG] position among the warehouse's groups
    num_problems: int
    max_groups: int


def make_groups(params: SimParams, num_warehouses: int, grouping: str) -> Groups:
    """Groups rows by (warehouse, category) or one group per row, per warehouse."""
    wh = np.asarray(params.warehouse)
    if grouping == "row":
        key = np.arange(wh.shape[0])
    else:
        cat = np.asarray(params.category)
        key = wh.astype(np.int64) * (int(cat.max()) + 1) + cat
    _, first, group_of_row = np.unique(key, return_index=True, return_inverse=True)
    problem_of_group = wh[first]
    # Slot of a group among its warehouse's groups: its rank within the warehouse.
    order = np.argsort(problem_of_group, kind="stable")
    counts = np.bincount(problem_of_group, minlength=num_warehouses).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.empty(len(first), np.int32)
    slot[order] = np.arange(len(first)) - starts[problem_of_group[order]]
    return Groups(
        group_of_row.astype(np.int32),
        problem_of_group.astype(np.int32),
        slot,
        num_warehouses,
        int(max(counts.max(), 1)),
    )


class LabelSet(NamedTuple):
    """Labels and what the model needs to learn them.

    Attributes:
        v: ``[D, R]`` chosen inventory-days value per date and row.
        choice: ``[D, R]`` int32 index of v among the candidates.
        days: ``[D]`` int32 decision days (index into the replayed period).
        features: :class:`Observation` with ``[D, R, ...]`` leaves, at each decision.
        stock: ``[D, W, G, V]`` selection problems' stock (for checking other solvers).
        loss: ``[D, W, G, V]`` their lost units.
        budget: ``[D, W]`` their budgets.
        allowed: ``[D, W, G, V]`` allowed candidates.
        active: ``[D, W, G]`` real (non-padding) groups.
        feasible: ``[D, W]`` False where no choice met the service target.
        meta: dict of metadata (config, counts, timings).
    """

    v: np.ndarray
    choice: np.ndarray
    days: np.ndarray
    features: Observation
    stock: np.ndarray
    loss: np.ndarray
    budget: np.ndarray
    allowed: np.ndarray
    active: np.ndarray
    feasible: np.ndarray
    meta: dict


def decision_days(num_days: int, label_config: LabelConfig, horizon: int) -> np.ndarray:
    """Decision days 0, stride, 2 stride, ... whose hindsight horizon fits in the period."""
    last = num_days - horizon
    if last < 0:
        raise ValueError(
            f"num_days={num_days} is shorter than the replay horizon {horizon}; "
            "lengthen the period or lower margin / max_horizon"
        )
    days = np.arange(0, last + 1, label_config.stride, dtype=np.int32)
    return days if label_config.max_dates is None else days[: label_config.max_dates]


@functools.partial(jax.jit, static_argnames=("env", "days", "window"))
def _advance(env: InventoryEnv, params, state, v, key, days: int, window: int):
    """Runs ``days`` days of the real env under per-row inventory days ``v``."""
    policy = InventoryDays(v=v, window=window)

    def body(carry, k):
        st = carry
        obs = observe(env.config, params, st)
        _, st, _, _, _, info = env.step(k, st, policy(obs, None), params)
        return st, info["outcome"].cost

    state, costs = jax.lax.scan(body, state, jax.random.split(key, days))
    return state, costs


@functools.partial(jax.jit, static_argnames=("num_problems", "max_groups", "objective"))
def _build_problem(rep, counted_demand, group_of_row, problem_of_group, slot_of_group, alpha,
                   num_problems: int, max_groups: int, objective: str):
    """Aggregates per-row replays into ``[W, G, V]`` selection problems."""
    ng = problem_of_group.shape[0]
    stock_rows = rep.stock_value if objective == "value" else rep.stock_units
    stock_g = jax.ops.segment_sum(stock_rows.T, group_of_row, num_segments=ng)
    loss_g = jax.ops.segment_sum(rep.lost_units.T, group_of_row, num_segments=ng)
    sales_g = jax.ops.segment_sum(rep.sales.T, group_of_row, num_segments=ng)
    units_g = jax.ops.segment_sum(rep.stock_units.T, group_of_row, num_segments=ng)
    v = stock_g.shape[1]
    shape = (num_problems, max_groups, v)
    stock = jnp.zeros(shape, stock_g.dtype).at[problem_of_group, slot_of_group].set(stock_g)
    loss = jnp.zeros(shape, loss_g.dtype).at[problem_of_group, slot_of_group].set(loss_g)
    turnover = jnp.zeros(shape, loss_g.dtype).at[problem_of_group, slot_of_group].set(
        units_g / jnp.maximum(sales_g, 1e-6)
    )
    active = jnp.zeros((num_problems, max_groups), bool).at[problem_of_group, slot_of_group].set(
        True
    )
    demand_w = jax.ops.segment_sum(counted_demand, problem_of_group[group_of_row],
                                   num_segments=num_problems)
    budget = (1.0 - alpha) * demand_w
    return stock, loss, budget, active, turnover


def _allowed(turnover, active, cap):
    allowed = jnp.broadcast_to(active[..., None], turnover.shape)
    if cap is None:
        return allowed
    capped = allowed & (turnover <= cap)
    # A group none of whose candidates meets the cap keeps all of them (reported as-is).
    return jnp.where(capped.any(axis=-1, keepdims=True), capped, allowed)


def _solve(solver: str, problem) -> tuple[np.ndarray, np.ndarray]:
    if solver == "dual":
        out = sel.solve_dual(problem)
    elif solver == "milp":
        out = sel.solve_milp(problem)
    else:
        out = sel.solve_batched_lp(problem)
    return np.asarray(out.choice), np.asarray(out.feasible)


def label_decisions(
    env: InventoryEnv,
    params: SimParams,
    key: jax.Array,
    label_config: LabelConfig = LabelConfig(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> LabelSet:
    """Labels every decision date of the env's period with the OR model.

    Args:
        env: the environment (trace mode: hindsight replays need the realised demand).
        params: its parameters.
        key: PRNG key (lead-time draws of the replays and of the real run).
        label_config: candidates, service target, grouping, solver, ...
        progress: called as ``progress(done, total)`` after each date.

    Returns:
        A :class:`LabelSet` with ``D`` dates.

    Raises:
        ValueError: an env not in trace mode, or a period shorter than the horizon.
    """
    cfg = env.config
    lc = label_config
    if cfg.demand_mode != "trace":
        raise ValueError(
            f"demand_mode={cfg.demand_mode!r} is not allowed for labelling; expected 'trace' "
            "(the OR model replays the realised demand)"
        )
    if lc.window > cfg.history_length:
        raise ValueError(
            f"window={lc.window} is not allowed; expected <= history_length={cfg.history_length}"
        )
    t0 = time.perf_counter()
    rcfg = replay_config(cfg)
    row_h = row_horizons(cfg, params, lc.margin, lc.max_horizon)
    longest = int(jnp.max(row_starts(cfg, params)))
    if lc.max_horizon <= longest:
        raise ValueError(
            f"max_horizon={lc.max_horizon} is not allowed; the replay horizon must exceed the "
            f"longest lead time ({longest} days) so every decision's order can arrive"
        )
    row_s = jnp.minimum(row_starts(cfg, params), row_h - 1)
    horizon = int(jnp.max(row_h))
    trace = params.demand_trace
    days = decision_days(int(trace.shape[0]), lc, horizon)
    groups = make_groups(params, cfg.num_warehouses, lc.grouping)
    cands = jnp.asarray(lc.candidates)
    gj = [jnp.asarray(x) for x in groups[:3]]

    _, state = env.reset(key, params)
    t_cursor = 0
    records = {k: [] for k in ("v", "choice", "stock", "loss", "budget", "allowed", "active",
                               "feasible", "obs")}
    for i, day in enumerate(days):
        key, adv_key, rep_key, scen_key = jax.random.split(key, 4)
        if day > t_cursor:
            state, _ = _advance(env, params, state, jnp.asarray(records["v"][-1]), adv_key,
                                int(day - t_cursor), lc.window)
            t_cursor = int(day)
        obs = _observe(cfg, params, state)
        demand = _scenarios(scen_key, trace, obs, day, horizon, lc, params, cfg)
        rep = replay_candidates(rcfg, params, state, cands, demand, row_h, rep_key, horizon,
                                lc.window, row_s)
        finite = np.asarray(jnp.stack([jnp.all(jnp.isfinite(x)) for x in rep]))  # one sync
        bad = [f for f, ok in zip(rep._fields, finite, strict=True) if not ok]
        if bad:
            raise ValueError(
                f"replay results {bad} are not finite on day {int(day)}; check the params "
                "(costs, demand) of the env"
            )
        counted = rep.demand
        stock, loss, budget, active, turnover = _build_problem(
            rep, counted, *gj, jnp.float32(lc.alpha), groups.num_problems, groups.max_groups,
            lc.objective,
        )
        allowed = _allowed(turnover, active, lc.turnover_cap)
        problem = sel.SelectionProblem(stock=stock, loss=loss, budget=budget, allowed=allowed,
                                       active=active)
        choice_g, feasible = _solve(lc.solver, problem)
        choice_rows = choice_g[groups.problem_of_group, groups.slot_of_group][groups.group_of_row]
        v_rows = lc.candidates[choice_rows]
        records["v"].append(v_rows)
        records["choice"].append(choice_rows.astype(np.int32))
        for name, value in (("stock", stock), ("loss", loss), ("budget", budget),
                            ("allowed", allowed), ("active", active)):
            records[name].append(np.asarray(value))
        records["feasible"].append(feasible)
        records["obs"].append(jax.tree.map(np.asarray, obs))
        if progress is not None:
            progress(i + 1, len(days))
    feasible = np.stack(records["feasible"])
    infeasible = np.argwhere(~feasible)
    meta = {
        "label_config": dataclasses.asdict(lc),
        "rows": cfg.num_rows,
        "dates": int(len(days)),
        "horizon": horizon,
        "groups": int(len(groups.problem_of_group)),
        "problems_per_date": groups.num_problems,
        "infeasible_count": int(len(infeasible)),
        "infeasible": [{"date_index": int(d), "day": int(days[d]), "warehouse": int(w)}
                       for d, w in infeasible],
        "seconds": time.perf_counter() - t0,
    }
    features = jax.tree.map(lambda *xs: np.stack(xs), *records["obs"])
    return LabelSet(
        v=np.stack(records["v"]),
        choice=np.stack(records["choice"]),
        days=days,
        features=features,
        stock=np.stack(records["stock"]),
        loss=np.stack(records["loss"]),
        budget=np.stack(records["budget"]),
        allowed=np.stack(records["allowed"]),
        active=np.stack(records["active"]),
        feasible=feasible,
        meta=meta,
    )


@functools.partial(jax.jit, static_argnames=("config",))
def _observe(config, params: SimParams, state: SimState) -> Observation:
    return observe(config, params, state)


def _scenarios(key, trace, obs: Observation, day, horizon: int, lc: LabelConfig,
               params: SimParams, config):
    """``[S, horizon, R]`` demand: the realised trace, Poisson scenarios, or the
    deployable model's (the promotion calendar is read for past days only)."""
    if lc.scenarios == 0:
        return jax.lax.dynamic_slice_in_dim(trace, int(day), horizon, axis=0)[None]
    if lc.scenario_model != "poisson":
        past = (past_promo_flags(params.promo_calendar, obs.t[0], lc.window)
                if config.use_promotions else None)
        return scenario_demand(key, obs, horizon, lc.scenarios, model=lc.scenario_model,
                               window=lc.window, past_promo=past).astype(trace.dtype)
    forecast = censored_forecast(obs, lc.window)
    shape = (lc.scenarios, horizon, forecast.shape[0])
    return jax.random.poisson(key, jnp.broadcast_to(forecast, shape)).astype(trace.dtype)
