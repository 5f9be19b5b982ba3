"""PPO / RLOO / pathwise alignment: losses by hand, determinism, vmap, resume, bad input."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import orpr_jax
from orpr_jax.train.agents import make_mlp_agent
from orpr_jax.train.loop import fit
from orpr_jax.train.pretrain import NonFiniteLossError
from orpr_jax.train.rl import (
    HParams,
    RLConfig,
    categorical_kl,
    estimate_uplift,
    make_pathwise_objective,
    make_task,
    make_train,
    ppo_loss_terms,
    promotion_expert_bins,
    rloo_advantages,
    smdp_gae,
    ValueStats,
)

R = 8
VALUES = np.arange(0, 13)


def small(algorithm="ppo", **kw):
    env, params = orpr_jax.make("lost_sales", num_rows=R, lead_time=2, history_length=7)
    agent = make_mlp_agent(VALUES, env.config.max_lead_time, 0, scale=5.0, hidden=(16, 16))
    settings = dict(num_updates=2, num_steps=8, num_epochs=2, num_minibatches=2, rloo_k=2)
    cfg = RLConfig(algorithm=algorithm, **{**settings, **kw})
    return env, params, agent, cfg


def test_gae_every_day_matches_hand_computation():
    r = jnp.array([[1.0], [2.0], [3.0]])
    v = jnp.array([[0.5], [1.0], [1.5]])
    last = jnp.array([2.0])
    g, lam = 0.9, 0.8
    adv, ret = smdp_gae(r, v, jnp.ones_like(r), last, jnp.float32(g), jnp.float32(lam))
    d2 = 3.0 + g * 2.0 - 1.5
    d1 = 2.0 + g * 1.5 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_gae_over_decision_intervals():
    # Decisions on days 0 and 2; the day-1 reward belongs to the day-0 decision.
    r = jnp.array([[1.0], [2.0], [3.0]])
    v = jnp.array([[0.5], [9.0], [1.5]])
    decide = jnp.array([[1.0], [0.0], [1.0]])
    g, lam = 0.9, 0.8
    adv, _ = smdp_gae(r, v, decide, jnp.array([2.0]), jnp.float32(g), jnp.float32(lam))
    a2 = 3.0 + g * 2.0 - 1.5
    a0 = (1.0 + g * 2.0) + g**2 * 1.5 - 0.5 + g**2 * lam * a2
    np.testing.assert_allclose(adv[:, 0], [a0, 0.0, a2], rtol=1e-6)


def test_ppo_loss_matches_hand_computation():
    logits = jnp.array([[0.0, 1.0], [2.0, 0.0]])
    values = jnp.array([1.0, -1.0])
    batch = {
        "action": jnp.array([1, 0]),
        "log_prob": jnp.log(jnp.array([0.5, 0.5])),
        "value": jnp.array([0.8, -0.5]),
        "advantage": jnp.array([1.0, -2.0]),
        "return": jnp.array([2.0, 0.0]),
        "decide": jnp.array([1.0, 1.0]),
        "expert": jnp.array([-1, 1]),
    }
    hp = HParams.create(clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, kl_coef=0.1,
                        expert_weight=0.3)
    loss, terms = ppo_loss_terms(logits, values, logits, batch, hp, normalize=False)
    p = np.exp(np.array([1.0, 2.0])) / (1 + np.exp(np.array([1.0, 2.0])))  # pi(action)
    ratio = p / 0.5
    pg = -np.minimum(ratio * [1.0, -2.0], np.clip(ratio, 0.8, 1.2) * [1.0, -2.0])
    v_unclipped = (np.array([1.0, -1.0]) - [2.0, 0.0]) ** 2
    v_clipped = (np.array([0.8, -0.5]) + np.clip([0.2, -0.5], -0.2, 0.2) - [2.0, 0.0]) ** 2
    vloss = 0.5 * np.maximum(v_unclipped, v_clipped).mean()
    probs = jax.nn.softmax(logits)
    ent = float(-(probs * jnp.log(probs)).sum(-1).mean())
    expert_ce = -np.log(1 - p[1])  # row 1's expert bin is 1, which has 1 - pi(0)
    want = pg.mean() + 0.5 * vloss - 0.01 * ent + 0.1 * 0.0 + 0.3 * expert_ce
    np.testing.assert_allclose(float(terms["policy_loss"]), pg.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(terms["value_loss"]), vloss, rtol=1e-5)
    np.testing.assert_allclose(float(terms["expert_ce"]), expert_ce, rtol=1e-5)
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    assert float(terms["kl_ref"]) == pytest.approx(0.0, abs=1e-7)


def test_rloo_advantages_sum_to_zero_and_ignore_shift():
    ret = jax.random.normal(jax.random.key(0), (4, 5))
    adv = rloo_advantages(ret)
    np.testing.assert_allclose(adv.sum(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(rloo_advantages(ret + 7.0), adv, atol=1e-5)
    np.testing.assert_allclose(adv[0], ret[0] - ret[1:].mean(axis=0), atol=1e-6)


def test_kl_is_zero_at_initialisation():
    env, params, agent, cfg = small(num_updates=1, num_epochs=1, num_minibatches=1)
    _, m = jax.jit(make_train(cfg, env, params, agent))(jax.random.key(0), HParams.create())
    assert float(m["kl_ref"][0]) == pytest.approx(0.0, abs=1e-7)
    logits = jax.random.normal(jax.random.key(1), (3, 5))
    assert float(jnp.abs(categorical_kl(logits, logits)).max()) < 1e-6
    assert float(categorical_kl(logits, -logits).min()) > 0


@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "pathwise"])
def test_tiny_run_is_deterministic_and_finite(algorithm):
    env, params, agent, cfg = small(algorithm)
    train = jax.jit(make_train(cfg, env, params, agent))
    hp = HParams.create(learning_rate=1e-3)
    runner1, m1 = train(jax.random.key(3), hp)
    runner2, m2 = train(jax.random.key(3), hp)
    for name in m1:
        assert np.all(np.isfinite(np.asarray(m1[name]))), name
        np.testing.assert_array_equal(np.asarray(m1[name]), np.asarray(m2[name]))
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), runner1.params, agent.params)
    assert max(jax.tree.leaves(moved)) > 0  # the update changed the policy
    assert int(runner1.update) == cfg.num_updates


def test_vmap_over_seeds_equals_separate_runs():
    env, params, agent, cfg = small("ppo")
    train = make_train(cfg, env, params, agent)
    hp = HParams.create(learning_rate=1e-3)
    keys = jax.random.split(jax.random.key(0), 2)
    _, batched = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, hp)
    for i in range(2):
        _, single = jax.jit(train)(keys[i], hp)
        np.testing.assert_allclose(np.asarray(batched["cost_per_row_day"][i]),
                                   np.asarray(single["cost_per_row_day"]), rtol=1e-5)


def test_lagrange_multiplier_rises_when_service_is_short():
    _, _, agent, cfg = small("ppo", num_updates=3)
    # Orders of at most 12 units against a mean demand of 50: often out of stock.
    env, params = orpr_jax.make("lost_sales", num_rows=R, lead_time=2, history_length=7,
                                demand_mean=50.0)
    hp = HParams.create(lagrange_lr=1.0, service_target=0.99)
    runner, m = jax.jit(make_train(cfg, env, params, agent))(jax.random.key(0), hp)
    assert float(runner.lagrange[0]) > 0
    assert np.all(np.diff(np.asarray(m["lagrange_mean"])) >= 0)


def test_pathwise_gradient_matches_finite_differences():
    # float64 relaxed simulator: the pathwise gradient is the true derivative of the loss.
    jax.config.update("jax_enable_x64", True)
    try:
        with jax.numpy_dtype_promotion("standard"):
            env, params = orpr_jax.make("lost_sales", num_rows=3, lead_time=1,
                                        history_length=7, relaxed=True, temperature=1.0)
            f64 = lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x  # noqa: E731
            params = jax.tree.map(f64, params)
            agent = make_mlp_agent(VALUES, 1, 0, scale=5.0, hidden=(8,))
            agent = agent.replace(params=jax.tree.map(f64, agent.params))
            cfg = RLConfig(algorithm="pathwise", num_steps=5)
            objective = make_pathwise_objective(cfg, env, params, agent)
            hp = HParams.create()
            key = jax.random.key(0)
            grads = jax.grad(objective)(agent.params, key, hp)
            direction = jax.tree.map(lambda x: jnp.ones_like(x) / np.sqrt(x.size), agent.params)
            analytic = sum(float((g * d).sum()) for g, d in
                           zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True))
            eps = 1e-5

            def at(s):
                moved = jax.tree.map(lambda p, d: p + s * d, agent.params, direction)
                return float(objective(moved, key, hp))

            numeric = (at(eps) - at(-eps)) / (2 * eps)
        assert abs(analytic) > 1e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_expert_bins_only_in_promotion_windows():
    env, params = orpr_jax.make("jd_synthetic", num_skus=20)
    uplift = estimate_uplift(params.demand_trace, params.promo_calendar, group=params.category)
    assert uplift.shape == (env.num_rows,) and uplift.max() > 1.2
    bins = promotion_expert_bins(params, np.arange(1, 31), 10.0, uplift=uplift, lookahead=3)
    cal = np.asarray(params.promo_calendar)
    assert bins.shape == cal.shape
    assert np.all(bins[cal > 0] >= 0)  # a promotion day is in its own window
    far = np.ones_like(cal, bool)
    for k in range(4):
        far &= np.roll(cal, -k, axis=0) == 0
    assert np.all(bins[far] == -1)
    assert bins[cal > 0].min() >= 9  # uplift-adjusted days are at least the base days
    assert bins[cal > 0].max() > 10


def test_fit_resume_equals_uninterrupted_run(tmp_path):
    env, params, agent, cfg = small("ppo", num_updates=4)
    hp = HParams.create(learning_rate=1e-3)
    full = fit(cfg, env, params, agent, hp, jax.random.key(0), tmp_path / "a", chunk=2,
               progress=False)
    fit(cfg, env, params, agent, hp, jax.random.key(0), tmp_path / "b", chunk=2,
        progress=False, stop_at_update=2)
    resumed = fit(cfg, env, params, agent, hp, jax.random.key(0), tmp_path / "b", chunk=2,
                  progress=False, resume=True)
    for a, b in zip(jax.tree.leaves(full.runner.params), jax.tree.leaves(resumed.runner.params),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["update"] for x in lines] == [1, 2, 3, 4]  # every update logged
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(cfg, env, params, agent, hp, jax.random.key(0), tmp_path / "b", progress=False)


def test_resume_rejects_checkpoint_with_other_bins(tmp_path):
    env, params, agent, cfg = small("ppo", num_updates=2)
    hp = HParams.create()
    fit(cfg, env, params, agent, hp, jax.random.key(0), tmp_path, chunk=2, progress=False)
    other = make_mlp_agent(np.arange(0, 20), env.config.max_lead_time, 0, scale=5.0,
                           hidden=(16, 16))
    with pytest.raises(ValueError, match="policy_head"):
        fit(cfg, env, params, other, hp, jax.random.key(0), tmp_path, progress=False,
            resume=True)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    env, params, agent, cfg = small("ppo", num_updates=4)
    fit(cfg, env, params, agent, HParams.create(), jax.random.key(0), tmp_path, chunk=2,
        progress=False, stop_at_update=2)
    bad = HParams.create().replace(cost_weight=jnp.float32(np.nan))
    with pytest.raises(NonFiniteLossError, match="update 2"):
        fit(cfg, env, params, agent, bad, jax.random.key(0), tmp_path, chunk=2,
            progress=False, resume=True)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: HParams.create(turnover_weight=float("nan")), "turnover_weight=nan"),
        (lambda: HParams.create(gamma=1.5), "gamma=1.5"),
        (lambda: HParams.create(ent_coef=-0.5), r"ent_coef=-0.5 .* \[0, 100\]"),
        (lambda: HParams.create(learning_rate=0.0), r"learning_rate=0.0 .* \(0, 1\]"),
        (lambda: RLConfig(num_steps=0), "num_steps"),
        (lambda: RLConfig(algorithm="a2c"), "algorithm='a2c'"),
        (lambda: RLConfig(rloo_k=1), "rloo_k"),
        (lambda: RLConfig(value_norm_decay=1.0), r"value_norm_decay=1.0 .* \[0, 1\)"),
    ],
)
def test_bad_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_task_and_minibatches_raise():
    env, params, agent, cfg = small("ppo")
    with pytest.raises(ValueError, match="reward_scale"):
        make_task(params, R, reward_scale=0.0)
    with pytest.raises(ValueError, match="num_minibatches=100"):
        make_train(RLConfig(num_steps=8, num_minibatches=100), env, params, agent)
    with pytest.raises(ValueError, match="num_groups"):
        make_train(cfg, env, params, agent, make_task(params, R, group=np.full(R, 2)))


def test_critic_warmup_trains_only_the_critic():
    env, params, agent, cfg = small("ppo", num_updates=1, critic_warmup_updates=1)
    runner, _ = jax.jit(make_train(cfg, env, params, agent))(jax.random.key(0),
                                                             HParams.create(learning_rate=1e-2))
    new, old = runner.params, agent.params
    np.testing.assert_array_equal(np.asarray(new["policy_head"]["kernel"][...]),
                                  np.asarray(old["policy_head"]["kernel"][...]))
    assert float(jnp.abs(new["value_head"]["kernel"][...]
                         - old["value_head"]["kernel"][...]).max()) > 0


def test_host_driven_days_then_learn_equal_one_update():
    from orpr_jax.train.rl import make_ppo_parts, make_update

    env, params, agent, cfg = small("ppo", num_updates=1)
    hp = HParams.create(learning_rate=1e-3)
    init, update = make_update(cfg, env, params, agent)
    runner = jax.jit(init)(jax.random.key(0), hp)
    fused, _ = jax.jit(update)(runner, hp)
    parts = make_ppo_parts(cfg, env, params, agent)
    key, pkeys, skeys, ekey = parts.keys(runner)
    day = jax.jit(parts.day_step)
    state, obs, days = runner.env_state, runner.obs, []
    for t in range(cfg.num_steps):
        (state, obs), tr = day(runner.params, state, obs, pkeys[t], skeys[t], runner.lagrange, hp)
        days.append(tr)
    traj = jax.tree.map(lambda *x: jnp.stack(x), *days)
    host, _ = jax.jit(parts.learn)(runner, state, obs, traj, key, ekey, hp)
    for a, b in zip(jax.tree.leaves(fused.params), jax.tree.leaves(host.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_value_stats_are_debiased_batch_moments():
    x = jnp.array([1.0, 3.0, 100.0, 5.0])
    mask = jnp.array([1.0, 1.0, 0.0, 1.0])
    mean, std = ValueStats.create().mean_std()
    assert (float(mean), float(std)) == (0.0, 1.0)
    stats = ValueStats.create().updated(x, mask, 0.99)
    mean, std = stats.mean_std()
    np.testing.assert_allclose(float(mean), 3.0, rtol=1e-5)
    np.testing.assert_allclose(float(std), np.std([1.0, 3.0, 5.0]), rtol=1e-4)
    # A second batch is averaged in with weights 0.99 * 0.01 : 0.01 (debiased).
    stats = stats.updated(jnp.full(4, 10.0), jnp.ones(4), 0.99)
    w1, w2 = 0.99 * 0.01, 0.01
    np.testing.assert_allclose(float(stats.mean_std()[0]), (w1 * 3.0 + w2 * 10.0) / (w1 + w2),
                               rtol=1e-5)


def _host_rollout(parts, runner, hp, steps):
    key, pkeys, skeys, ekey = parts.keys(runner)
    state, obs, traj = runner.env_state, runner.obs, []
    for t in range(steps):
        (state, obs), tr = parts.day_step(runner.params, state, obs, pkeys[t], skeys[t],
                                          runner.lagrange, hp)
        traj.append(tr)
    return state, obs, jax.tree.map(lambda *x: jnp.stack(x), *traj), key, ekey


def test_normalized_values_track_the_returns():
    from orpr_jax.train.rl import make_ppo_parts
    from orpr_jax.train.rl.ppo import critic_days

    env, params, agent, cfg = small("ppo", num_updates=2, value_norm_decay=0.0)
    # Rows review every other day (offsets 0 and 1), so the return statistics are masked.
    env = type(env)(dataclasses.replace(env.config, use_review=True))
    params = params.replace(review_period=jnp.full(R, 2, jnp.int32),
                            review_offset=jnp.arange(R, dtype=jnp.int32) % 2)
    # Unscaled costs: returns in the hundreds, as with a large Lagrange multiplier.
    task = make_task(params, R, reward_scale=0.05)
    hp = HParams.create(learning_rate=1e-3)
    parts = make_ppo_parts(cfg, env, params, agent, task)
    learn = jax.jit(parts.learn)
    runner = jax.jit(parts.init)(jax.random.key(0), hp)
    expected_stats = []
    for _ in range(2):
        state, obs, traj, key, ekey = _host_rollout(parts, runner, hp, cfg.num_steps)
        # GAE reads de-standardised critic outputs (stats (0, 1) before the first update).
        mean, std = runner.value_stats.mean_std()
        last = agent.apply(runner.params, obs)[1]
        # The critic learns on every day the network ran (here every day: some row reviews
        # each day), not only on each row's review days.
        valued = critic_days(traj.decide)
        assert float(valued.min()) == 1.0 and float(traj.decide.mean()) < 1.0
        _, ret = smdp_gae(traj.reward, traj.value * std + mean, valued, last * std + mean,
                          hp.gamma, hp.gae_lambda)
        picked = np.asarray(ret)[np.asarray(valued) > 0]
        runner, m = learn(runner, state, obs, traj, key, ekey, hp)
        # decay 0: the statistics are this update's return moments over those days.
        np.testing.assert_allclose(float(m["value_mean"]), picked.mean(), rtol=1e-4)
        np.testing.assert_allclose(float(m["value_std"]), picked.std(), rtol=1e-3)
        expected_stats.append(picked.mean())
        assert picked.mean() < -50.0 and float(m["value_loss"]) < 5.0
    assert expected_stats[0] != pytest.approx(expected_stats[1])
    # Without normalisation the critic's loss (and gradient) carries the returns' scale.
    raw = make_ppo_parts(dataclasses.replace(cfg, normalize_values=False), env, params, agent,
                         task)
    runner = jax.jit(raw.init)(jax.random.key(0), hp)
    state, obs, traj, key, ekey = _host_rollout(raw, runner, hp, cfg.num_steps)
    _, m_raw = jax.jit(raw.learn)(runner, state, obs, traj, key, ekey, hp)
    assert float(m_raw["value_loss"]) > 100 * float(m["value_loss"])


def test_value_clipping_keeps_the_critic_learning_under_normalisation():
    # The first update moves the statistics from (0, 1) to the returns' moments; clipping
    # around the critic's own rollout outputs must not freeze the value head.
    env, params, agent, cfg = small("ppo", num_updates=1)
    task = make_task(params, R, reward_scale=0.05)
    hp = HParams.create(learning_rate=1e-3)
    losses = {}
    for clip in (True, False):
        c = dataclasses.replace(cfg, clip_value=clip)
        _, m = jax.jit(make_train(c, env, params, agent, task))(jax.random.key(0), hp)
        losses[clip] = float(m["value_loss"][0])
    assert losses[True] < 1.5 * losses[False]
