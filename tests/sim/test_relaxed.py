"""Relaxed mode: surrogates tend to the exact operators; gradients match finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.sim import relax
from orpr_jax.sim.types import SimConfig


@pytest.mark.parametrize("op", ["relu", "step", "round_", "ceil", "floor"])
def test_surrogates_tend_to_exact(op):
    x = jnp.linspace(-3.3, 3.3, 67)
    exact = getattr(relax, op)(x, jnp.float32(1.0), False)
    soft = getattr(relax, op)(x, jnp.float32(0.01), True)
    # Away from the discontinuities (integers for ceil/floor, half-integers for round, 0
    # for step) the surrogate at a small temperature equals the exact operator.
    frac = np.asarray(x - jnp.floor(x))
    far = (np.abs(frac - 0.5) > 0.1) & (np.abs(frac) > 0.1) & (np.abs(frac - 1) > 0.1)
    np.testing.assert_allclose(np.asarray(soft)[far], np.asarray(exact)[far], atol=1e-3)


def test_minimum_is_a_lower_bound_and_smooth():
    a, b = jnp.linspace(0, 10, 11), jnp.full(11, 5.0)
    soft = relax.minimum(a, b, jnp.float32(0.5), True)
    assert jnp.all(soft <= jnp.minimum(a, b) + 1e-6)  # so shipped never exceeds stock
    g = jax.grad(lambda a: relax.minimum(a, b, jnp.float32(0.5), True).sum())(a)
    assert jnp.all((g > 0) & (g < 1))


def test_soft_round_is_continuous_at_integers():
    tau = jnp.float32(0.3)
    for n in (-2.0, 0.0, 3.0):
        left = relax.soft_round(jnp.float32(n - 1e-4), tau)
        right = relax.soft_round(jnp.float32(n + 1e-4), tau)
        assert abs(float(right - left)) < 1e-3


def _relaxed_cost(level, env, params, key):
    def policy(obs, key):
        del key
        return jax.nn.softplus(level - obs.inventory_position)

    return orpr_jax.evaluate(env, params, policy, key, 40, 5)["total_cost"]


def _relaxed_env(**switches):
    config = SimConfig(
        num_rows=3,
        num_warehouses=1,
        max_lead_time=3,
        lead_time_mode="per_row",
        demand_mode="trace",
        relaxed=True,
        **switches,
    )
    rng = np.random.default_rng(0)
    params = orpr_jax.make_params(
        config,
        dtype=jnp.float64,
        lead_time=[1, 2, 3],
        demand_trace=rng.poisson(4.0, (40, 3)),
        holding_cost=[1.0, 0.5, 2.0],
        penalty_cost=[9.0, 4.0, 19.0],
        fixed_order_cost=2.0,
        purchase_cost=0.3,
        case_pack=[1, 2, 3],
        moq=[0, 4, 6],
        max_order=[30, 30, 30],
        capacity=[25.0],
        review_period=[1, 2, 3],
        review_offset=[0, 1, 2],
        initial_on_hand=8,
        temperature=0.7,
    )
    return orpr_jax.InventoryEnv(config), params


@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"use_case_pack": True, "use_moq": True, "use_max_order": True, "use_capacity": True,
         "use_review": True},
        {"backorder": True, "use_case_pack": True, "use_capacity": True},
    ],
    ids=["plain", "all-constraints", "backorder"],
)
def test_gradient_matches_finite_differences(switches):
    with jax.enable_x64(True):
        env, params = _relaxed_env(**switches)
        key = jax.random.key(0)
        level = jnp.array([12.3, 15.7, 21.1], jnp.float64)
        f = lambda lv: _relaxed_cost(lv, env, params, key)  # noqa: E731
        grad = np.asarray(jax.grad(f)(level))
        eps = 1e-5
        fd = np.array(
            [
                (f(level.at[i].add(eps)) - f(level.at[i].add(-eps))) / (2 * eps)
                for i in range(3)
            ]
        )
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-4)
        assert np.any(np.abs(grad) > 1e-2)  # a real, non-trivial gradient


def test_relaxed_tends_to_exact_cost():
    # With a small temperature the relaxed simulator reproduces the exact one on an
    # integer-valued trajectory (same policy, same demand).
    rng = np.random.default_rng(1)
    trace = rng.poisson(5.0, (60, 4))
    costs = []
    for relaxed in (False, True):
        config = SimConfig(num_rows=4, max_lead_time=2, lead_time_mode="per_row",
                           demand_mode="trace", relaxed=relaxed)
        params = orpr_jax.make_params(config, lead_time=[1, 2, 1, 2], demand_trace=trace,
                                      temperature=0.02, initial_on_hand=10)
        env = orpr_jax.InventoryEnv(config)
        m = orpr_jax.evaluate(env, params, orpr_jax.policies.base_stock(14.0),
                              jax.random.key(0), 60, 0)
        costs.append(float(m["total_cost"]))
    assert costs[1] == pytest.approx(costs[0], rel=0.02)
