"""Each alignment algorithm does what its name says: the pathwise loss feels its service
terms, the critic learns on every day, the actor and the critic keep separate optimiser
states, each category has its own in-stock target, and learned policies decode by one rule.

Each test fails on the behaviour before these fixes (noted per test)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.train.agents import check_mode, make_mlp_agent
from orpr_jax.train.rl import HParams, RLConfig, make_task, make_update, ppo_loss_terms
from orpr_jax.train.rl.losses import rloo_to_go_advantages
from orpr_jax.train.rl.pathwise import pathwise_loss
from orpr_jax.train.rl.rollout import dual_ascent
from orpr_jax.train.rl.setup import adam_counts, make_setup, param_labels

R = 6
VALUES = np.arange(0, 13)


def _small(algorithm, **kw):
    env, params = orpr_jax.make("lost_sales", num_rows=R, lead_time=2, history_length=7)
    agent = make_mlp_agent(VALUES, env.config.max_lead_time, 0, scale=5.0, hidden=(16, 16))
    settings = dict(num_updates=3, num_steps=6, num_epochs=1, num_minibatches=2)
    return env, params, agent, RLConfig(algorithm=algorithm, **{**settings, **kw})


def test_pathwise_loss_has_a_gradient_from_the_in_stock_terms():
    # Before: the exact simulator's in-stock indicator is flat, so the multiplier's term
    # added nothing to the gradient and "constrained" pathwise ran unconstrained.
    env, params, agent, cfg = _small("pathwise")
    # Little stock at the start, so some rows stock out within the segment.
    params = params.replace(initial_on_hand=jnp.full((R,), 1.0, jnp.float32))
    s = make_setup(cfg, env, params, agent, None, None)
    obs, state = env.reset(jax.random.key(0), params)
    keys = jax.random.split(jax.random.key(1), cfg.num_steps)
    hp = HParams.create(service_target=0.99)

    def grads(lam):
        loss = lambda p: pathwise_loss(s, p, state, obs, keys, jnp.full((1,), lam), hp)[0]  # noqa: E731
        return jax.tree.leaves(jax.grad(loss)(agent.params))

    g0, g1 = grads(0.0), grads(5.0)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(g0, g1, strict=True))
    assert diff > 1e-6, diff
    # The service terms' value is still the exact indicator (straight-through).
    loss0 = pathwise_loss(s, agent.params, state, obs, keys, jnp.zeros((1,)), hp)
    loss1 = pathwise_loss(s, agent.params, state, obs, keys, jnp.ones((1,)), hp)
    served = loss0[1][3]
    np.testing.assert_allclose(served, np.round(np.asarray(served)), atol=1e-6)
    assert 0.0 < float(np.round(np.asarray(served)).mean()) < 1.0  # some rows stock out
    np.testing.assert_allclose(
        float(loss1[0] - loss0[0]), -float(jnp.mean(served - 0.99)), rtol=1e-4)


def test_critic_learns_on_days_without_a_decision():
    # Before: the value loss was masked by the decision days, so V was never fit on the
    # non-review day the rollout's last interval bootstraps from.
    n = 4
    batch = {"action": jnp.zeros((n,), jnp.int32), "log_prob": jnp.zeros((n,)),
             "value": jnp.zeros((n,)), "advantage": jnp.zeros((n,)),
             "return": jnp.array([1.0, 2.0, 3.0, 4.0]), "decide": jnp.array([1.0, 0, 0, 0]),
             "expert": jnp.full((n,), -1, jnp.int32), "value_mask": jnp.ones((n,))}
    logits = jnp.zeros((n, 3))
    _, terms = ppo_loss_terms(logits, jnp.zeros((n,)), logits, batch,
                              HParams.create(), clip_value=False)
    # 0.5 * mean(1, 4, 9, 16) over the four days, not 0.5 * 1 over the one decision.
    np.testing.assert_allclose(float(terms["value_loss"]), 0.5 * 30.0 / 4.0, rtol=1e-6)


def test_actor_and_critic_have_separate_optimiser_states():
    # Before: one Adam state; the critic warm-up advanced the actor's step count too.
    env, params, agent, cfg = _small("ppo", critic_warmup_updates=2)
    labels = set(jax.tree.leaves(param_labels(agent.params)))
    assert labels == {"actor", "critic"}
    init, update = make_update(cfg, env, params, agent)
    hp = HParams.create(learning_rate=1e-3)
    runner = jax.jit(init)(jax.random.key(0), hp)
    step = jax.jit(update)
    runner, _ = step(runner, hp)
    runner, _ = step(runner, hp)
    counts = adam_counts(runner.opt_state)
    steps = cfg.num_epochs * cfg.num_minibatches
    # Two warm-up updates: the critic took every step, the actor none (and did not move).
    assert int(counts["critic"]) == 2 * steps and int(counts["actor"]) == 0
    for path_label, a, b in zip(jax.tree.leaves(param_labels(agent.params)),
                                jax.tree.leaves(agent.params), jax.tree.leaves(runner.params),
                                strict=True):
        if path_label == "actor":
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    runner, _ = step(runner, hp)
    counts = adam_counts(runner.opt_state)
    assert int(counts["actor"]) == steps and int(counts["critic"]) == 3 * steps


def test_each_category_has_its_own_in_stock_target():
    # Before: one pooled target for every category.
    env, params, agent, cfg = _small("ppo", num_groups=2)
    group = np.array([0, 0, 0, 1, 1, 1])
    task = make_task(params, R, group=group, service_target=[0.9, 0.2])
    s = make_setup(cfg, env, params, agent, task, None)
    served = jnp.full((4, R), 0.5)  # both groups at 0.5
    lam, rates = dual_ascent(s, jnp.zeros((2,)), served, HParams.create(lagrange_lr=1.0))
    np.testing.assert_allclose(rates, [0.5, 0.5])
    np.testing.assert_allclose(lam, [0.4, 0.0], atol=1e-6)  # only group 0 is short
    with pytest.raises(ValueError, match=r"service_target=\[0.9\] is not allowed"):
        make_task(params, R, group=group, service_target=[0.9])
    with pytest.raises(ValueError, match=r"service_target=\[0.9, 1.5\] is not allowed"):
        make_task(params, R, group=group, service_target=[0.9, 1.5])


def test_quantile_decoding_hand_computed():
    env, params = orpr_jax.make("lost_sales", num_rows=2, lead_time=2, history_length=7)
    agent = make_mlp_agent(np.array([0.0, 2.0, 4.0]), env.config.max_lead_time, 0)
    # Probabilities (0.2, 0.5, 0.3) and (0.6, 0.1, 0.3): cumulative (0.2, 0.7, 1.0) and
    # (0.6, 0.7, 1.0); the 0.7 quantile is bin 1 for both, the 0.5 one bins 1 and 0.
    logits = jnp.log(jnp.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]))
    np.testing.assert_array_equal(agent.quantile_bins(logits, 0.7), [1, 1])
    np.testing.assert_array_equal(agent.quantile_bins(logits, 0.5), [1, 0])
    np.testing.assert_array_equal(agent.quantile_bins(logits, 0.9), [2, 2])
    assert agent.playing("q0.8").mode == "q0.8"
    for bad in ("q1.5", "q0", "quantile", "best"):
        with pytest.raises(ValueError, match="is not allowed"):
            check_mode(bad)


def test_rloo_credits_each_decision_with_its_reward_to_go():
    # Before: every decision of a segment got the segment's whole return, so a reward
    # earned on day 0 moved the advantage of a decision taken on day 2.
    r = jnp.array([[[5.0], [1.0], [2.0]], [[0.0], [1.0], [4.0]]])  # [k=2, T=3, R=1]
    adv = rloo_to_go_advantages(r)
    # to-go: copy 0 (8, 3, 2), copy 1 (5, 5, 4); leave-one-out with k = 2: G_0 - G_1.
    np.testing.assert_allclose(adv[0, :, 0], [3.0, -2.0, -2.0])
    np.testing.assert_allclose(adv[1, :, 0], [-3.0, 2.0, 2.0])
    early = r.at[0, 0, 0].add(100.0)
    np.testing.assert_allclose(rloo_to_go_advantages(early)[:, 1:], adv[:, 1:])
