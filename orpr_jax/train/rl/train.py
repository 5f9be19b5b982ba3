"""The entry points: a whole run (:func:`make_train`), one update (:func:`make_update`),
the pieces of a PPO update (:func:`make_ppo_parts`), the pathwise objective and the
trained agent."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable

import jax
from flax import nnx

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimParams
from orpr_jax.train.agents import Agent
from orpr_jax.train.rl.config import HParams, RLConfig
from orpr_jax.train.rl.pathwise import pathwise_loss, update_pathwise
from orpr_jax.train.rl.ppo import ppo_keys, ppo_learn, update_ppo
from orpr_jax.train.rl.rloo import update_rloo
from orpr_jax.train.rl.rollout import day_step
from orpr_jax.train.rl.setup import Runner, init_runner, make_setup
from orpr_jax.train.rl.task import Task


def _build(config, env, sim_params, agent, task, ref_params) -> types.SimpleNamespace:
    """The checked :class:`~.setup.Setup` of a run with the functions bound to it."""
    s = make_setup(config, env, sim_params, agent, task, ref_params)
    update = {"ppo": update_ppo, "rloo": update_rloo, "pathwise": update_pathwise}[
        config.algorithm]
    return types.SimpleNamespace(
        init=functools.partial(init_runner, s), update=functools.partial(update, s),
        pathwise_loss=functools.partial(pathwise_loss, s),
        day_step=functools.partial(day_step, s), ppo_keys=functools.partial(ppo_keys, s),
        ppo_learn=functools.partial(ppo_learn, s))


def make_update(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> tuple[Callable[[jax.Array, HParams], Runner], Callable[[Runner, HParams], tuple]]:
    """``(init, update)``: ``init(key, hparams) -> Runner`` and one training update
    ``update(runner, hparams) -> (runner, metrics)``; both pure and jittable.

    Args:
        config: static settings.
        env: the environment (its rows are the training batch).
        sim_params: traced simulator parameters.
        agent: the initial agent (the actor starts from ``agent.params``).
        task: reward scale, constraint groups and expert bins (default
            :func:`~orpr_jax.train.rl.task.make_task`).
        ref_params: the frozen reference policy's parameters for the KL anchor (default:
            the initial ``agent.params``, i.e. the pretrained model).

    Raises:
        ValueError: if the task does not match the env or the minibatches do not divide.
    """
    parts = _build(config, env, sim_params, agent, task, ref_params)
    return parts.init, parts.update


def make_ppo_parts(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> types.SimpleNamespace:
    """The pieces of a PPO update, for host-driven loops (and the throughput benchmark):

    * ``init(key, hp) -> Runner``;
    * ``keys(runner) -> (next_key, policy_keys [T], step_keys [T], epoch_key)``;
    * ``day_step(params, state, obs, policy_key, step_key, lagrange, hp) ->
      ((state, obs), Transition)``: one day of every row;
    * ``learn(runner, state, obs, traj, next_key, epoch_key, hp) -> (runner, metrics)``:
      GAE and the PPO epochs on ``traj`` (``[T, R]`` stacked transitions).

    Calling ``day_step`` for each day and then ``learn`` is exactly ``update``.
    """
    parts = _build(config, env, sim_params, agent, task, ref_params)
    return types.SimpleNamespace(init=parts.init, keys=parts.ppo_keys,
                                 day_step=parts.day_step, learn=parts.ppo_learn)


def make_pathwise_objective(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> Callable[[nnx.State, jax.Array, HParams], jax.Array]:
    """The pathwise loss ``objective(params, key, hparams) -> []`` of ``config.num_steps``
    days from a reset (what :func:`make_update` differentiates with ``config.algorithm ==
    "pathwise"``); for gradient checks and custom optimisers."""
    parts = _build(config, env, sim_params, agent, task, ref_params)

    def objective(params: nnx.State, key: jax.Array, hp: HParams) -> jax.Array:
        runner = parts.init(key, hp)
        keys = jax.random.split(runner.key, config.num_steps)
        return parts.pathwise_loss(params, runner.env_state, runner.obs, keys,
                                   runner.lagrange, hp)[0]

    return objective


def make_train(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    task: Task | None = None,
    ref_params: nnx.State | None = None,
) -> Callable[[jax.Array, HParams], tuple[Runner, dict]]:
    """The whole run as one pure function ``train(key, hparams) -> (runner, metrics)``.

    ``metrics`` leaves are ``[num_updates]``. Jit it; vmap it over keys and/or
    :class:`HParams` to run seeds or a hyperparameter sweep in one program. Every run
    starts from ``agent.params`` (in ORPR, the pretrained model); seeds differ in their
    simulator, sampling and minibatch draws.
    Arguments as in :func:`make_update`.
    """
    init, update = make_update(config, env, sim_params, agent, task, ref_params)

    def train(key: jax.Array, hp: HParams) -> tuple[Runner, dict]:
        runner = init(key, hp)
        return jax.lax.scan(lambda r, _: update(r, hp), runner, None,
                            length=config.num_updates)

    return train


def trained_agent(agent: Agent, runner: Runner, config: RLConfig) -> Agent:
    """``agent`` with the runner's trained parameters, playing what it was trained to play:
    the expected action after pathwise training, the argmax bin otherwise."""
    mode = "expected" if config.algorithm == "pathwise" else "greedy"
    return agent.replace(params=runner.params, mode=mode)
