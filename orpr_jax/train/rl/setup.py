"""The validated setup of a run and the state it carries from update to update.

:class:`Setup` bundles what every update function reads (config, env, simulator
parameters, agent, task, frozen reference, optimiser); :class:`Runner` is the carried
state, with the running return statistics :class:`ValueStats`; :func:`make_optimizer` and
its helpers set and apply the (traced) learning rate.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import Observation, SimParams, SimState
from orpr_jax.train.agents import Agent
from orpr_jax.train.rl.config import HParams, RLConfig
from orpr_jax.train.rl.task import Task, make_task


@struct.dataclass
class ValueStats:
    """Running statistics of the returns (debiased moving averages; a pytree).

    ``mean = m1 / weight`` and ``var = m2 / weight - mean^2`` once ``weight > 0``; before
    the first update they are 0 and 1 (the critic's raw output is the value).
    """

    m1: jax.Array
    m2: jax.Array
    weight: jax.Array

    @classmethod
    def create(cls) -> ValueStats:
        z = jnp.zeros((), jnp.float32)
        return cls(m1=z, m2=z, weight=z)

    def mean_std(self) -> tuple[jax.Array, jax.Array]:
        w = jnp.maximum(self.weight, 1e-12)
        mean = jnp.where(self.weight > 0, self.m1 / w, 0.0)
        var = jnp.where(self.weight > 0, self.m2 / w - mean ** 2, 1.0)
        return mean, jnp.sqrt(jnp.maximum(var, 1e-4))

    def updated(self, x: jax.Array, mask: jax.Array, decay: float) -> ValueStats:
        """The statistics after one batch ``x`` (entries where ``mask > 0``)."""
        n = jnp.maximum(mask.sum(), 1.0)
        mean = (x * mask).sum() / n
        sq = (x ** 2 * mask).sum() / n
        return ValueStats(m1=decay * self.m1 + (1 - decay) * mean,
                          m2=decay * self.m2 + (1 - decay) * sq,
                          weight=decay * self.weight + (1 - decay))


@struct.dataclass
class Runner:
    """Everything one training run carries from update to update (a pytree)."""

    params: nnx.State
    opt_state: Any
    env_state: SimState
    obs: Observation
    key: jax.Array
    lagrange: jax.Array
    update: jax.Array
    value_stats: ValueStats


#: Parameter-path names that belong to the critic (the MLP's critic torso, either value head).
CRITIC_NAMES = ("critic", "value_head")


def param_labels(params) -> Any:
    """``"actor"`` or ``"critic"`` for every leaf of ``params`` (by its path)."""
    def label(path, _):
        names = {str(getattr(k, "key", getattr(k, "name", k))) for k in path}
        return "critic" if names & set(CRITIC_NAMES) else "actor"
    return jax.tree_util.tree_map_with_path(label, params)


def _adam(cfg: RLConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, eps=1e-5),
    )


def make_optimizer(cfg: RLConfig) -> optax.GradientTransformation:
    """Adam with an injectable (traced) learning rate, one state per part of the network.

    The actor and the critic each get their own gradient-norm clip and their own Adam
    moments and step count (``optax.multi_transform`` over :func:`param_labels`): the
    critic's gradients, orders of magnitude larger early on, no longer eat the actor's
    clip budget, and a critic warm-up does not advance the actor's bias correction.
    """
    return optax.multi_transform({"actor": _adam(cfg), "critic": _adam(cfg)}, param_labels)


def _tx_update(tx, grads, opt_state, params, freeze_actor=None):
    """``(updates, opt_state)``; with ``freeze_actor`` true the actor's optimiser state is
    kept as it was (its updates are zero then: no gradient reaches it)."""
    # Injected hyperparameters are float32 arrays, so Adam's bias correction raises them to
    # an int32 count: allowed under standard promotion, refused under "strict".
    with jax.numpy_dtype_promotion("standard"):
        updates, new_state = tx.update(grads, opt_state, params)
    if freeze_actor is None:
        return updates, new_state
    inner = dict(new_state.inner_states)
    inner["actor"] = jax.tree.map(lambda new, old: jnp.where(freeze_actor, old, new),
                                  inner["actor"], opt_state.inner_states["actor"])
    return updates, new_state._replace(inner_states=inner)


def _set_lr(opt_state, lr):
    def one(masked):
        clip_state, adam_state = masked.inner_state
        hyper = dict(adam_state.hyperparams)
        hyper["learning_rate"] = jnp.asarray(lr, jnp.float32)
        return masked._replace(inner_state=(clip_state, adam_state._replace(hyperparams=hyper)))
    inner = {k: one(v) for k, v in opt_state.inner_states.items()}
    return opt_state._replace(inner_states=inner)


def adam_counts(opt_state) -> dict[str, jax.Array]:
    """The Adam step count of each part (``{"actor": [], "critic": []}``)."""
    return {k: v.inner_state[1].inner_state[0].count
            for k, v in opt_state.inner_states.items()}


class Setup(NamedTuple):
    """What the update functions of one run read (static: closed over, never traced).

    Attributes:
        config: static settings.
        env: the environment (its rows are the training batch).
        sim_params: traced simulator parameters.
        agent: the initial agent.
        task: reward scale, constraint groups and expert bins.
        ref: the frozen reference policy's parameters (the KL anchor).
        tx: the optimiser (:func:`make_optimizer`).
    """

    config: RLConfig
    env: InventoryEnv
    sim_params: SimParams
    agent: Agent
    task: Task
    ref: nnx.State
    tx: optax.GradientTransformation


def make_setup(config, env, sim_params, agent, task, ref_params) -> Setup:
    """The checked :class:`Setup` of a run (arguments as in
    :func:`~orpr_jax.train.rl.make_update`).

    Raises:
        ValueError: if the task does not match the env or the minibatches do not divide.
    """
    r = env.num_rows
    task = make_task(sim_params, r) if task is None else task
    if task.reward_scale.shape != (r,) or task.group.shape != (r,):
        raise ValueError(f"task has reward_scale {task.reward_scale.shape} / group "
                         f"{task.group.shape}; expected [R={r}] for this env")
    if task.expert_bins.ndim != 2 or task.expert_bins.shape[1] != r:
        raise ValueError(f"task.expert_bins has shape {task.expert_bins.shape}; "
                         f"expected [T, R={r}]")
    if int(np.max(np.asarray(task.group))) >= config.num_groups:
        raise ValueError(f"task.group has index {int(np.max(np.asarray(task.group)))}; "
                         f"expected < num_groups={config.num_groups}")
    if int(np.max(np.asarray(task.expert_bins), initial=-1)) >= agent.num_bins:
        raise ValueError(f"task.expert_bins has a bin >= the agent's {agent.num_bins} bins")
    copies = config.rloo_k if config.algorithm == "rloo" else 1
    samples = config.num_steps * r * copies
    if config.algorithm != "pathwise" and samples < config.num_minibatches:
        raise ValueError(
            f"num_minibatches={config.num_minibatches} is not allowed; it must be at most "
            f"num_steps x rows{' x rloo_k' if copies > 1 else ''} = {samples}")
    ref = agent.params if ref_params is None else ref_params
    return Setup(config=config, env=env, sim_params=sim_params, agent=agent, task=task,
                 ref=ref, tx=make_optimizer(config))


def init_runner(s: Setup, key: jax.Array, hp: HParams) -> Runner:
    """The :class:`Runner` of a fresh run: a reset simulator and ``agent.params``."""
    reset_key, key = jax.random.split(key)
    obs, state = s.env.reset(reset_key, s.sim_params)
    opt_state = _set_lr(s.tx.init(s.agent.params), hp.learning_rate)
    return Runner(params=s.agent.params, opt_state=opt_state, env_state=state, obs=obs,
                  key=key, lagrange=jnp.zeros((s.config.num_groups,), jnp.float32),
                  update=jnp.zeros((), jnp.int32), value_stats=ValueStats.create())


def lr_at(s: Setup, runner: Runner, hp: HParams) -> jax.Array:
    """The learning rate of the runner's update (linearly annealed with ``anneal_lr``)."""
    if not s.config.anneal_lr:
        return hp.learning_rate
    done = runner.update.astype(jnp.float32) / s.config.num_updates
    return hp.learning_rate * jnp.maximum(1.0 - done, 0.0)
