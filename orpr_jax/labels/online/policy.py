"""The deployable OR model: the simulation-augmented selection run at decision time.

On each of its review days, a row's inventory-days value v is chosen from what is known
then: demand scenarios drawn from a forecast fitted on the row's observed window
(:mod:`orpr_jax.labels.online.forecast`), replayed from the row's state under every
candidate v with lead-time draws from the row's distribution
(:func:`~orpr_jax.labels.replay.replay_candidates`), and the labeller's service-budget
selection (minimum stock subject to lost units <= (1 - alpha) x demand, per row by
default or per category x warehouse among the rows reviewing that day; the JAX dual
solver). The order is then ``max(v x forecast - inventory position, 0)``.

:class:`OnlineORPolicy` is a policy pytree: ``policy(obs, key) -> [R]`` orders runs
inside :func:`orpr_jax.evaluate`'s jitted scan. It carries the planning parameters only
(costs, review days, lead-time distributions, order constraints, the initial pipeline):
every demand table, the demand trace and the promotion calendar ahead are stripped, so
it cannot read the demand that follows. The replay's start state is rebuilt from the
observation (on hand, backlog, pipeline, sales and stock-out windows, long-run level),
exactly: the pipeline ring is laid out from ``obs.pipeline`` for every lead-time mode.

Only the rows reviewing today are replayed: they are gathered into a fixed buffer of
``max_reviewing`` rows (the most that ever review on one day, found from the review
calendar), so a day costs rows-reviewing x candidates x scenarios x horizon steps, and a
day on which no row reviews costs nothing (``lax.cond``).

References:
    ORPR: OR-guided Pretrain-then-Reinforce for inventory replenishment, arXiv 2512.19001
    (the simulation-augmented OR model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from orpr_jax._validation import check_int
from orpr_jax.labels import selection as sel
from orpr_jax.labels.online.forecast import SCENARIO_MODELS, past_promo_flags, scenario_demand
from orpr_jax.labels.replay import replay_candidates, replay_config, row_horizons, row_starts
from orpr_jax.policies.forecast import censored_forecast
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import Observation, SimConfig, SimParams, SimState

#: Demand-model fields of SimParams a deployable planner does not know (zeroed).
_DEMAND_FIELDS = ("demand_cdf", "base_demand", "dispersion", "weekly", "yearly_amplitude",
                  "yearly_phase", "trend", "zero_prob", "promo_uplift")
_ROW_AXIS_1 = ("initial_pipeline", "initial_sales_history", "demand_trace", "promo_calendar")
_NO_ROW_AXIS = ("capacity", "start_day_of_year", "start_day_of_week", "temperature")


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
    """How the deployable OR model decides (static: fixes shapes and code paths).

    Attributes:
        candidates: inventory-days values v to choose from (non-empty, finite, >= 0).
        alpha: service target in (0, 1]: lost units <= (1 - alpha) x demand, over the
            days the decision can affect (as in the labeller).
        scenarios: S >= 1 demand scenarios per decision.
        model: ``"negbin"`` or ``"bootstrap"`` scenario sampler.
        grouping: ``"row"`` (one v per reviewing row) or ``"category_warehouse"`` (one
            v per category x warehouse among the rows reviewing that day).
        objective: ``"value"`` (holding cost of the stock) or ``"units"``.
        margin: days added to each row's ceil(lead time) + review period horizon.
        max_horizon: cap on the replay horizon (days).
        window: forecast and fitting window (days, at most ``history_length``).
        prior_uplift: promotion multiplier before the history's evidence (> 0).
    """

    candidates: tuple[float, ...] = tuple(float(v) for v in range(1, 31))
    alpha: float = 0.95
    scenarios: int = 16
    model: Literal["negbin", "bootstrap"] = "negbin"
    grouping: Literal["row", "category_warehouse"] = "row"
    objective: Literal["value", "units"] = "value"
    margin: int = 7
    max_horizon: int = 60
    window: int = 28
    prior_uplift: float = 2.0

    def __post_init__(self) -> None:
        cands = tuple(self.candidates) if isinstance(self.candidates, Sequence) else None
        if not cands or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                and math.isfinite(v) and v >= 0 for v in cands):
            raise ValueError(f"candidates={self.candidates!r} is not allowed; expected a "
                             "non-empty sequence of finite numbers >= 0")
        object.__setattr__(self, "candidates", tuple(float(v) for v in cands))
        if not (isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool)
                and 0.0 < self.alpha <= 1.0):
            raise ValueError(f"alpha={self.alpha!r} is not allowed; expected a number in (0, 1]")
        for name, low in (("scenarios", 1), ("margin", 0), ("max_horizon", 1), ("window", 1)):
            check_int(name, getattr(self, name), low)
        if self.model not in SCENARIO_MODELS:
            raise ValueError(f"model={self.model!r} is not allowed; use 'negbin' or 'bootstrap'")
        if self.grouping not in ("row", "category_warehouse"):
            raise ValueError(f"grouping={self.grouping!r} is not allowed; use 'row' or "
                             "'category_warehouse'")
        if self.objective not in ("value", "units"):
            raise ValueError(f"objective={self.objective!r} is not allowed; use 'value' or 'units'")
        if not (isinstance(self.prior_uplift, (int, float)) and self.prior_uplift > 0):
            raise ValueError(f"prior_uplift={self.prior_uplift!r} is not allowed; expected > 0")

    @classmethod
    def from_label_config(cls, label_config, **changes) -> OnlineConfig:
        """The labeller's candidates, alpha, objective, margin, horizon and window (a
        :class:`~orpr_jax.labels.LabelConfig`), with ``changes`` applied; grouping is
        per row unless given."""
        lc = label_config
        base = dict(candidates=tuple(float(v) for v in lc.candidates), alpha=lc.alpha,
                    objective=lc.objective, margin=lc.margin, max_horizon=lc.max_horizon,
                    window=lc.window)
        return cls(**(base | changes))


class OnlineDecision(NamedTuple):
    """One day's decisions (all ``[R]``).

    Attributes:
        v: chosen inventory days (0 where the row does not review today).
        order: requested order ``max(v x forecast - inventory position, 0)``.
        decided: True where the row reviewed and was replayed today.
        feasible: False where no candidate met the service budget (min-loss fallback).
    """

    v: jax.Array
    order: jax.Array
    decided: jax.Array
    feasible: jax.Array


@struct.dataclass
class OnlineORPolicy:
    """The deployable OR model as a policy pytree (build it with :func:`make_online_policy`).

    Attributes:
        params: planning parameters (demand tables and calendar stripped).
        candidates: ``[V]`` inventory-days values.
        alpha: ``[]`` service target (traced).
        prior_uplift: ``[R]`` promotion multiplier prior.
        past_calendar: ``[T, R]`` promotion calendar read only for days before today
            (``[1, R]`` zeros without promotions).
        row_horizon, row_start: ``[R]`` int32 counted days of each row's replay.
        group_of_row: ``[R]`` int32; problem_of_group, slot_of_group: ``[NG]`` int32.
        config: the env's static configuration; settings: :class:`OnlineConfig`.
        horizon: replay days; max_reviewing: the gather buffer's rows; num_problems,
            max_groups: selection batch shape (static).
    """

    params: SimParams
    candidates: jax.Array
    alpha: jax.Array
    prior_uplift: jax.Array
    past_calendar: jax.Array
    row_horizon: jax.Array
    row_start: jax.Array
    group_of_row: jax.Array
    problem_of_group: jax.Array
    slot_of_group: jax.Array
    config: SimConfig = struct.field(pytree_node=False)
    settings: OnlineConfig = struct.field(pytree_node=False)
    horizon: int = struct.field(pytree_node=False)
    max_reviewing: int = struct.field(pytree_node=False)
    num_problems: int = struct.field(pytree_node=False)
    max_groups: int = struct.field(pytree_node=False)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        return self.decide(obs, key).order

    def decide(self, obs: Observation, key: jax.Array) -> OnlineDecision:
        """Today's :class:`OnlineDecision` from ``obs`` (``[R, ...]``) and ``key``.

        ``key`` splits into ``(scenario_key, lead_key)``: the scenarios of row i come
        from ``fold_in(scenario_key, i)``, the replay's lead-time draws from ``lead_key``.
        """
        r = self.config.num_rows
        review = obs.is_review_day > 0
        dtype = self.params.holding_cost.dtype
        none = OnlineDecision(jnp.zeros((r,), dtype), jnp.zeros((r,), dtype),
                              jnp.zeros((r,), bool), jnp.ones((r,), bool))
        return jax.lax.cond(jnp.any(review), lambda: self._decide_reviewing(obs, key, review),
                            lambda: none)

    def _decide_reviewing(self, obs, key, review) -> OnlineDecision:
        r, k, s = self.config.num_rows, self.max_reviewing, self.settings
        idx = jnp.nonzero(review, size=k, fill_value=0)[0].astype(jnp.int32)
        valid = jnp.arange(k) < review.sum()
        obs_k = jax.tree.map(lambda x: jnp.take(x, idx, axis=0), obs)
        params_k = take_rows(self.params, r, idx)
        cfg_k = replay_config(self.config).replace(num_rows=k)
        state_k = state_from_obs(cfg_k, params_k, obs_k)
        scen_key, lead_key = jax.random.split(key)
        past = (past_promo_flags(self.past_calendar[:, idx], obs.t[0], s.window)
                if self.config.use_promotions else None)
        demand = scenario_demand(scen_key, obs_k, self.horizon, s.scenarios, model=s.model,
                                 window=s.window, past_promo=past,
                                 prior_uplift=self.prior_uplift[idx], row_ids=idx)
        rep = replay_candidates(cfg_k, params_k, state_k, self.candidates, demand,
                                self.row_horizon[idx], lead_key, self.horizon, s.window,
                                self.row_start[idx])
        choice, feasible = self._select(rep, idx, valid)
        v = self.candidates[choice]
        q = jnp.maximum(v * censored_forecast(obs_k, s.window) - obs_k.inventory_position, 0.0)
        return OnlineDecision(_scatter(r, idx, valid, v.astype(q.dtype), 0.0),
                              _scatter(r, idx, valid, q, 0.0),
                              _scatter(r, idx, valid, valid, False),
                              _scatter(r, idx, valid, feasible, True))

    def _select(self, rep, idx, valid):
        """``([K] choice index, [K] feasible)`` of the service-budget selection."""
        s = self.settings
        stock = rep.stock_value if s.objective == "value" else rep.stock_units  # [V, K]
        budget = (1.0 - self.alpha) * rep.demand
        if s.grouping == "row":
            v = stock.shape[0]
            problem = sel.SelectionProblem(
                stock=stock.T[:, None, :], loss=rep.lost_units.T[:, None, :], budget=budget,
                allowed=jnp.broadcast_to(valid[:, None, None], (valid.shape[0], 1, v)),
                active=valid[:, None])
            out = sel.solve_dual(problem)
            return jnp.maximum(out.choice[:, 0], 0), out.feasible | ~valid
        gid = self.group_of_row[idx]
        ng = self.problem_of_group.shape[0]
        mask = valid.astype(stock.dtype)
        seg = lambda x: jax.ops.segment_sum(x, gid, num_segments=ng)  # noqa: E731
        stock_g, loss_g = seg((stock * mask).T), seg((rep.lost_units * mask).T)
        active_g = seg(mask) > 0
        shape = (self.num_problems, self.max_groups, stock.shape[0])
        at = (self.problem_of_group, self.slot_of_group)
        active = jnp.zeros(shape[:2], bool).at[at].set(active_g)
        problem = sel.SelectionProblem(
            stock=jnp.zeros(shape, stock.dtype).at[at].set(stock_g),
            loss=jnp.zeros(shape, stock.dtype).at[at].set(loss_g),
            budget=jax.ops.segment_sum(budget * mask, self.problem_of_group[gid],
                                       num_segments=self.num_problems),
            allowed=jnp.broadcast_to(active[..., None], shape), active=active)
        out = sel.solve_dual(problem)
        w, slot = self.problem_of_group[gid], self.slot_of_group[gid]
        return jnp.maximum(out.choice[w, slot], 0), out.feasible[w] | ~valid


def _scatter(r, idx, valid, x, fill):
    """``[R]`` with ``x[j]`` at ``idx[j]`` where ``valid[j]``, ``fill`` elsewhere."""
    # Padding slots point at row 0 and must not overwrite it: send them out of range.
    target = jnp.where(valid, idx, r)
    return jnp.full((r,), fill, x.dtype).at[target].set(x, mode="drop")


def take_rows(params: SimParams, num_rows: int, idx: jax.Array) -> SimParams:
    """Params of rows ``idx`` (``[K]`` int32) of an ``R``-row ``params``."""
    out = {}
    for name, leaf in vars(params).items():
        if name in _NO_ROW_AXIS or leaf.ndim == 0:
            out[name] = leaf
        elif name in _ROW_AXIS_1:
            out[name] = jnp.take(leaf, idx, axis=1)
        elif leaf.shape[0] == num_rows:
            out[name] = jnp.take(leaf, idx, axis=0)
        else:  # a table shared by all rows
            out[name] = leaf
    return SimParams(**out)


def planning_params(params: SimParams) -> SimParams:
    """``params`` without what a planner cannot know: the demand trace and the promotion
    calendar become one zero day, the demand model's tables zeros."""
    r = params.holding_cost.shape[0]
    dtype = params.holding_cost.dtype
    out = dict(vars(params))
    out["demand_trace"] = jnp.zeros((1, r), params.demand_trace.dtype)
    out["promo_calendar"] = jnp.zeros((1, r), params.promo_calendar.dtype)
    for name in _DEMAND_FIELDS:
        out[name] = jnp.zeros_like(out[name], dtype)
    return SimParams(**out)


def state_from_obs(config: SimConfig, params: SimParams, obs: Observation) -> SimState:
    """The :class:`SimState` of ``obs``'s day, rebuilt from the observation.

    Exact for everything the dynamics read: on hand, backlog, the pipeline ring (slot
    ``(t + k) mod M`` holds units due in k days; with per-row fixed lead times, the
    order-history ring gets the orders of days ``t + k - L_i``, the initial pipeline still
    due being read from ``params`` as in the simulator), the sales and stock-out rings and
    the long-run level. ``arrivals`` (today's, already on hand) is zero.
    """
    dtype = params.holding_cost.dtype
    t = obs.t[0]
    m, h = config.ring_size, config.history_length
    r = obs.on_hand.shape[0]
    ks = jnp.arange(1, m, dtype=t.dtype)
    pipe = obs.pipeline.T.astype(dtype)  # [M - 1, R]: row k - 1 is due in k days
    cols = jnp.broadcast_to(jnp.arange(r)[None, :], pipe.shape)
    if config.lead_time_mode == "per_row":
        lt = params.lead_time
        due = t + ks
        init = jnp.take(params.initial_pipeline, jnp.minimum(due, m - 1), axis=0)
        init = jnp.where((due < m)[:, None], init, 0.0).astype(dtype)
        orders = jnp.where(ks[:, None] < lt[None, :], pipe - init, 0.0)
        slots = (t + ks[:, None] - lt[None, :]) % m
        ring = jnp.zeros((m, r), dtype).at[slots, cols].add(orders)
    else:
        slots = jnp.broadcast_to(((t + ks) % m)[:, None], pipe.shape)
        ring = jnp.zeros((m, r), dtype).at[slots, cols].add(pipe)
    hist_slots = (t + jnp.arange(h, dtype=t.dtype)) % h
    return SimState(
        on_hand=obs.on_hand.astype(dtype),
        backlog=obs.backlog.astype(dtype),
        ring=ring,
        pipeline_total=pipe.sum(axis=0),
        sales_ring=jnp.zeros((h, r), dtype).at[hist_slots].set(obs.sales_history.T),
        stockout_ring=jnp.zeros((h, r), dtype).at[hist_slots].set(
            obs.stockout_history.T.astype(dtype)),
        level=obs.long_run_level.astype(dtype),
        arrivals=jnp.zeros((r,), dtype),
        t=t,
    )


def max_reviewing(config: SimConfig, params: SimParams, cycle_cap: int = 5040) -> int:
    """The most rows that review on one day (``R`` without review days or when the
    review calendar's cycle exceeds ``cycle_cap`` days)."""
    r = config.num_rows
    if not config.use_review:
        return r
    period = np.asarray(params.review_period).astype(np.int64)
    offset = np.asarray(params.review_offset).astype(np.int64)
    cycle = math.lcm(*np.unique(period).tolist())
    if cycle > cycle_cap:
        return r
    days = np.arange(cycle)[:, None]
    count = ((days - offset[None, :]) % period[None, :] == 0).sum(axis=1)
    return int(max(count.max(), 1))


def make_online_policy(
    env: InventoryEnv, params: SimParams, config: OnlineConfig = OnlineConfig()
) -> OnlineORPolicy:
    """Builds the deployable OR model for ``env`` (run it with :func:`orpr_jax.evaluate`).

    Args:
        env: the environment the policy will face (its static configuration).
        params: its parameters; only the planning ones are kept (see
            :func:`planning_params`; the promotion calendar is kept for past days only).
        config: candidates, service target, scenarios, grouping, ...

    Returns:
        An :class:`OnlineORPolicy`.

    Raises:
        ValueError: a window longer than the history, or a horizon cap at or below the
            longest lead time.
    """
    cfg, s = env.config, config
    if s.window > cfg.history_length:
        raise ValueError(f"window={s.window} is not allowed; expected <= "
                         f"history_length={cfg.history_length}")
    row_h = row_horizons(cfg, params, s.margin, s.max_horizon)
    starts = row_starts(cfg, params)
    longest = int(jnp.max(starts))
    if s.max_horizon <= longest:
        raise ValueError(f"max_horizon={s.max_horizon} is not allowed; it must exceed the "
                         f"longest lead time ({longest} days)")
    from orpr_jax.labels.labeller import make_groups  # the labeller imports this package

    groups = make_groups(params, cfg.num_warehouses,
                         "row" if s.grouping == "row" else "category_warehouse")
    dtype = params.holding_cost.dtype
    calendar = (params.promo_calendar if cfg.use_promotions
                else jnp.zeros((1, cfg.num_rows), params.promo_calendar.dtype))
    return OnlineORPolicy(
        params=planning_params(params),
        candidates=jnp.asarray(s.candidates, dtype),
        alpha=jnp.asarray(s.alpha, dtype),
        prior_uplift=jnp.full((cfg.num_rows,), s.prior_uplift, dtype),
        past_calendar=calendar,
        row_horizon=row_h,
        row_start=jnp.minimum(starts, row_h - 1),
        group_of_row=jnp.asarray(groups.group_of_row),
        problem_of_group=jnp.asarray(groups.problem_of_group),
        slot_of_group=jnp.asarray(groups.slot_of_group),
        config=cfg,
        settings=s,
        horizon=int(jnp.max(row_h)),
        max_reviewing=max_reviewing(cfg, params),
        num_problems=groups.num_problems,
        max_groups=groups.max_groups,
    )
