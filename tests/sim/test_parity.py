"""Parity of the JAX simulator with the independent NumPy reference (tests/reference).

Shapes are fixed (6 rows, 25 days, max lead time 5, 2 warehouses) so each static switch
combination compiles once and hypothesis only draws values. Two drivers: a raw request
trace (negative, fractional, NaN and infinite requests) and a base-stock policy.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from orpr_jax.sim.dynamics import initial_state, observe, transition
from orpr_jax.sim.params import make_params
from orpr_jax.sim.types import DayOutcome, SimConfig
from tests.reference.numpy_sim import OUTCOME_FIELDS, simulate

R, T, LMAX, W = 6, 25, 5, 2
M = LMAX + 1

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------------------
# JAX driver: exogenous demand and lead times through `transition` in a lax.scan.


@functools.partial(jax.jit, static_argnums=0)
def _scan(config, params, requests, demand, lead, levels, use_policy):
    def body(state, xs):
        raw, d, lt = xs
        position = observe(config, params, state).inventory_position
        policy_request = jnp.maximum(levels - position, 0.0)
        request = jnp.where(use_policy, policy_request, raw)
        state, out = transition(config, params, state, request, d, lt)
        starts = (state.on_hand, state.backlog, state.pipeline_total)
        return state, (out, starts)

    state0 = initial_state(config, params)
    final, (outs, starts) = jax.lax.scan(body, state0, (requests, demand, lead))
    pipeline = observe(config, params, final).pipeline
    return final, outs, starts, pipeline


def jax_simulate(config: SimConfig, params, demand, lead=None, requests=None, levels=None):
    """Runs the JAX simulator on exogenous inputs; returns NumPy arrays like the reference.

    Args:
        config: static configuration.
        params: SimParams.
        demand: ``[T, R]`` demand.
        lead: ``[T, R]`` int lead times (stochastic mode); ``None`` uses
            ``params.lead_time`` (shared or per_row).
        requests: ``[T, R]`` raw requests, or ``None`` with ``levels``.
        levels: ``[R]`` base-stock levels (policy driver).

    Returns:
        A dict with the outcome fields ``[T, R]``, ``on_hand_next`` / ``backlog_next`` /
        ``pipeline_total_next`` (``[T, R]``, the state at the start of day t + 1), and the
        final ``on_hand``, ``backlog``, ``pipeline_total``, ``pipeline``.
    """
    demand = np.asarray(demand, np.float32)
    num_days, num_rows = demand.shape
    if lead is None:
        fixed = np.asarray(params.lead_time, np.int32)
        lead = np.broadcast_to(fixed, (num_days, *fixed.shape))
    lead = np.asarray(lead, np.int32)
    use_policy = requests is None
    if requests is None:
        requests = np.zeros((num_days, num_rows), np.float32)
    if levels is None:
        levels = np.zeros((num_rows,), np.float32)
    final, outs, starts, pipeline = _scan(
        config,
        params,
        jnp.asarray(requests, jnp.float32),
        jnp.asarray(demand),
        jnp.asarray(lead),
        jnp.asarray(levels, jnp.float32),
        jnp.asarray(use_policy),
    )
    res = {name: np.asarray(getattr(outs, name), np.float64) for name in OUTCOME_FIELDS}
    res["on_hand_next"], res["backlog_next"], res["pipeline_total_next"] = (
        np.asarray(x, np.float64) for x in starts
    )
    res["on_hand"] = np.asarray(final.on_hand, np.float64)
    res["backlog"] = np.asarray(final.backlog, np.float64)
    res["pipeline_total"] = np.asarray(final.pipeline_total, np.float64)
    res["pipeline"] = np.asarray(pipeline, np.float64)
    return res


def assert_same(jax_res, ref_res, context=""):
    """Every outcome field and the final state agree (integer-valued floats)."""
    for name in (*OUTCOME_FIELDS, "on_hand", "backlog", "pipeline_total", "pipeline"):
        np.testing.assert_allclose(
            jax_res[name], ref_res[name], rtol=0, atol=1e-4, err_msg=f"{name} {context}"
        )
    # The state at the start of day t + 1 is the reference's start of day t + 1.
    np.testing.assert_allclose(jax_res["on_hand_next"][:-1], ref_res["on_hand_start"][1:])
    np.testing.assert_allclose(
        jax_res["pipeline_total_next"][:-1], ref_res["pipeline_total_start"][1:]
    )


# ---------------------------------------------------------------------------------------
# Strategies (values only; shapes are fixed).

quarters = st.integers(0, 8).map(lambda k: k / 4.0)  # exact in binary
request_values = st.one_of(
    st.integers(-40, 160).map(lambda k: k / 4.0),  # negatives, .25/.5/.75 (half to even)
    st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 1.5, 2.5, 1e-3, -0.0]),
)


def int_array(shape, lo, hi, dtype=np.int64):
    return hnp.arrays(dtype, shape, elements=st.integers(lo, hi))


@st.composite
def scenarios(draw, config: SimConfig):
    """Draws params (as make_params kwargs), demand, lead draws, requests and levels."""
    period = draw(int_array(R, 1, 4))
    offset = np.array([draw(st.integers(0, int(pr) - 1)) for pr in period])
    moq = draw(int_array(R, 0, 12))
    kw = dict(
        holding_cost=draw(hnp.arrays(np.float64, R, elements=quarters)),
        penalty_cost=draw(int_array(R, 0, 40)) / 4.0,
        fixed_order_cost=draw(int_array(R, 0, 20)) / 4.0,
        purchase_cost=draw(hnp.arrays(np.float64, R, elements=quarters)),
        review_period=period,
        review_offset=offset,
        moq=moq,
        case_pack=draw(int_array(R, 1, 4)),
        max_order=moq + draw(int_array(R, 0, 30)),
        warehouse=draw(int_array(R, 0, W - 1)),
        capacity=draw(int_array(W, 0, 240)) / 4.0,  # fractional capacities too
        initial_on_hand=draw(int_array(R, 0, 30)),
        initial_pipeline=draw(int_array((M, R), 0, 8)),
    )
    if config.lead_time_mode == "shared":
        kw["lead_time"] = draw(st.integers(1, LMAX))
    else:
        kw["lead_time"] = draw(int_array(R, 1, LMAX))
    lead = draw(int_array((T, R), 1, LMAX)) if config.lead_time_mode == "stochastic" else None
    if config.lead_time_mode == "stochastic":
        kw["lead_time_probs"] = np.full((R, LMAX), 1.0 / LMAX)
    demand = draw(int_array((T, R), 0, 12)).astype(np.float64)
    requests = draw(hnp.arrays(np.float64, (T, R), elements=request_values))
    levels = draw(int_array(R, 0, 160)) / 4.0
    return kw, demand, lead, requests.astype(np.float32), levels


def _check(config, scenario):
    kw, demand, lead, requests, levels = scenario
    params = make_params(config, **kw)
    ref_raw = simulate(config, params, demand, lead=lead, requests=requests)
    jax_raw = jax_simulate(config, params, demand, lead=lead, requests=requests)
    assert_same(jax_raw, ref_raw, "(request trace)")
    ref_bs = simulate(config, params, demand, lead=lead, policy=_ref_base_stock(levels))
    jax_bs = jax_simulate(config, params, demand, lead=lead, levels=levels)
    assert_same(jax_bs, ref_bs, "(base-stock)")
    return ref_raw, ref_bs


def _ref_base_stock(levels):
    levels = np.asarray(levels, np.float64)

    def policy(day, on_hand, backlog, pipeline_total):
        return np.maximum(levels - (on_hand - backlog + pipeline_total), 0.0)

    return policy


def _config(**kw) -> SimConfig:
    return SimConfig(
        num_rows=R, num_warehouses=W, max_lead_time=LMAX, demand_mode="trace", **kw
    )


CONFIGS = {
    "lost_sales_per_row": _config(),
    "backorder_per_row": _config(backorder=True),
    "lost_sales_shared": _config(lead_time_mode="shared"),
    "backorder_stochastic": _config(lead_time_mode="stochastic", backorder=True),
    "lost_sales_stochastic": _config(lead_time_mode="stochastic"),
    "review": _config(use_review=True),
    "moq": _config(use_moq=True),
    "case_pack": _config(use_case_pack=True),
    "max_order": _config(use_max_order=True),
    "capacity": _config(use_capacity=True),
    "case_pack_moq_capacity": _config(use_case_pack=True, use_moq=True, use_capacity=True),
    "all_lost_sales": _config(
        lead_time_mode="stochastic",
        use_review=True,
        use_case_pack=True,
        use_moq=True,
        use_max_order=True,
        use_capacity=True,
    ),
    "all_backorder_shared": _config(
        lead_time_mode="shared",
        backorder=True,
        use_review=True,
        use_case_pack=True,
        use_moq=True,
        use_max_order=True,
        use_capacity=True,
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@SETTINGS
@given(data=st.data())
def test_parity_with_reference(name, data):
    config = CONFIGS[name]
    _check(config, data.draw(scenarios(config), label="scenario"))


# ---------------------------------------------------------------------------------------
# Fixed examples that make sure the drawn cases exercise what they claim to.


def test_reference_and_jax_agree_on_a_busy_fixed_case():
    config = CONFIGS["all_lost_sales"]
    rng = np.random.default_rng(0)
    kw = dict(
        review_period=[1, 2, 3, 1, 2, 1],
        review_offset=[0, 1, 2, 0, 0, 0],
        moq=[0, 5, 6, 3, 0, 8],
        case_pack=[1, 2, 4, 3, 1, 1],
        max_order=[40, 9, 30, 20, 7, 25],
        warehouse=[0, 0, 0, 1, 1, 1],
        capacity=[25.5, 18.0],
        holding_cost=0.5,
        penalty_cost=4.0,
        fixed_order_cost=2.0,
        purchase_cost=0.25,
        initial_on_hand=[3, 0, 10, 5, 0, 2],
        lead_time_probs=np.full((R, LMAX), 1.0 / LMAX),
    )
    params = make_params(config, **kw)
    demand = rng.integers(0, 10, (T, R)).astype(np.float64)
    lead = rng.integers(1, LMAX + 1, (T, R))
    requests = (rng.integers(-8, 120, (T, R)) / 4.0).astype(np.float32)
    requests[3, 2] = np.nan
    requests[5, 0] = np.inf
    ref = simulate(config, params, demand, lead=lead, requests=requests)
    assert_same(jax_simulate(config, params, demand, lead=lead, requests=requests), ref)
    # The case is busy: orders placed, capacity binding, stockouts, orders crossing.
    assert ref["order_placed"].sum() > 20
    assert (ref["unmet"] > 0).any()
    levels = np.full(R, 30.0)
    ref_bs = simulate(config, params, demand, lead=lead, policy=_ref_base_stock(levels))
    assert_same(jax_simulate(config, params, demand, lead=lead, levels=levels), ref_bs)


@pytest.mark.parametrize("mode", ["per_row", "shared"])
def test_fixed_lead_times_match_reference(mode):
    config = _config(lead_time_mode=mode, backorder=True)
    lead = [3] * R if mode == "shared" else [1, 2, 3, 4, 5, 5]
    params = make_params(config, lead_time=lead, initial_on_hand=4, penalty_cost=2.0)
    rng = np.random.default_rng(1)
    demand = rng.integers(0, 6, (T, R)).astype(np.float64)
    levels = np.full(R, 14.0)
    ref = simulate(config, params, demand, policy=_ref_base_stock(levels))
    assert_same(jax_simulate(config, params, demand, levels=levels), ref)
    assert ref["backlog_start"].max() > 0
