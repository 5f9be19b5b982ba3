"""Actor-critic agents shared by PPO, RLOO and pathwise training.

An :class:`Agent` is a policy pytree (``agent(obs, key) -> [R] orders``, so
:func:`orpr_jax.evaluate` runs it as is) around an NNX actor-critic held as
``(graphdef, params, rest)``: the graphdef is static, ``params`` (the ``nnx.Param`` leaves)
are what the optimiser trains and ``rest`` holds any other variables (dropout RNG state).
Two networks plug in:

* ``"foundation"``: the pretrained :class:`~orpr_jax.policies.foundation.FoundationModel`,
  fed the scale-free :class:`~orpr_jax.policies.features.ModelInputs`;
* ``"mlp"``: :class:`MLPActorCritic`, separate actor and critic torsos over
  :func:`mlp_features` (stock, pipeline slot by slot and recent sales, in units of a fixed
  per-row ``scale``), for the classic models and throughput benchmarks.

Both output logits over ``V`` discrete actions. The action is either an inventory-days
value (order up to ``v`` days of forecast demand, the paper's action) or an order quantity
(the classic models' action), ``values[a]`` for bin ``a``. Pathwise training plays the
expected action ``softmax(logits) @ values`` so gradients flow into the logits.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jaxtyping import Array, Float, Int

from orpr_jax.policies.features import make_inputs
from orpr_jax.policies.foundation import FoundationModel
from orpr_jax.policies.heuristics import InventoryDays
from orpr_jax.sim.types import Observation

ActionKind = Literal["inventory_days", "order_quantity"]
NetKind = Literal["mlp", "foundation"]

#: Days of recent sales given to the MLP.
MLP_SALES_DAYS = 7


def mlp_feature_count(max_lead_time: int) -> int:
    """Width of :func:`mlp_features` for an env with ``max_lead_time``."""
    return 7 + max_lead_time + MLP_SALES_DAYS


def mlp_features(obs: Observation, scale: jax.Array) -> Float[Array, "R F"]:
    """``[R, F]`` MLP inputs: units divided by the row's fixed ``scale`` (its demand level).

    On hand, backlog, inventory position, the pipeline due in 1..max_lead_time days and the
    last :data:`MLP_SALES_DAYS` days of sales, all over ``scale``; then ``log(p / h)``, the
    review-day flag and the promotion flags (today and the share of the look-ahead).
    """
    dtype = obs.on_hand.dtype  # the simulator's float type (float64 in gradient checks)
    s = jnp.maximum(jnp.asarray(scale, dtype), 1e-6)
    s = jnp.broadcast_to(s, obs.on_hand.shape)[:, None]
    units = jnp.concatenate(
        [
            obs.on_hand[:, None],
            obs.backlog[:, None],
            obs.inventory_position[:, None],
            obs.pipeline,
            obs.sales_history[:, -MLP_SALES_DAYS:],
        ],
        axis=1,
    ).astype(dtype) / s
    ratio = jnp.log(jnp.maximum(obs.penalty_cost, 1e-6) / jnp.maximum(obs.holding_cost, 1e-6))
    promo_ahead = obs.promo_ahead.mean(axis=1) if obs.promo_ahead.shape[1] else 0.0 * ratio
    flags = jnp.stack(
        [jnp.clip(ratio, -10.0, 10.0) / 5.0, obs.is_review_day, obs.promo_today, promo_ahead],
        axis=1,
    ).astype(dtype)
    x = jnp.concatenate([jnp.clip(units, -50.0, 50.0), flags], axis=1)
    return jnp.nan_to_num(x, nan=0.0)


class MLPActorCritic(nnx.Module):
    """Separate actor and critic MLPs (tanh, orthogonal init, small policy head).

    ``logits, value = net(x)`` with ``x`` ``[N, F]``: logits ``[N, V]``, value ``[N]``.
    """

    def __init__(self, num_features: int, num_bins: int, hidden: tuple[int, ...] = (64, 64),
                 *, rngs: nnx.Rngs):
        ortho = nnx.initializers.orthogonal

        def torso():
            sizes = (num_features, *hidden)
            return nnx.List(
                [nnx.Linear(a, b, kernel_init=ortho(np.sqrt(2.0)), rngs=rngs)
                 for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
            )

        self.actor = torso()
        self.critic = torso()
        self.policy_head = nnx.Linear(hidden[-1], num_bins, kernel_init=ortho(0.01), rngs=rngs)
        self.value_head = nnx.Linear(hidden[-1], 1, kernel_init=ortho(1.0), rngs=rngs)

    def __call__(self, x: jax.Array, *, deterministic: bool = True):
        del deterministic
        a, c = x, x
        for layer in self.actor:
            a = jnp.tanh(layer(a))
        for layer in self.critic:
            c = jnp.tanh(layer(c))
        return self.policy_head(a), self.value_head(c)[:, 0]


@struct.dataclass
class Agent:
    """An actor-critic as a policy pytree.

    Attributes:
        graphdef: the network's ``nnx.GraphDef`` (static).
        params: ``nnx.Param`` state (trained).
        rest: every other variable of the network (static during training).
        values: ``[V]`` action value of each bin (inventory days or units).
        scale: ``[]`` or ``[R]`` demand level dividing the MLP's unit features.
        alpha: ``[]`` or ``[R]`` service target fed to the foundation model.
        target_turnover: ``[]`` or ``[R]`` target turnover days fed to the foundation model.
        net: ``"mlp"`` or ``"foundation"`` (static).
        action: ``"inventory_days"`` or ``"order_quantity"`` (static).
        window: forecast window of the inventory-days action (static).
        detach_critic: the foundation model's value head reads the shared encoder without
            gradient (static): the critic's loss, large while the fresh head learns the
            returns' scale, then cannot pull the pretrained encoder away from the policy.
        mode: what ``agent(obs, key)`` plays (static): ``"greedy"`` the argmax bin,
            ``"sample"`` a sampled bin, ``"expected"`` the expected action (the pathwise
            policy), ``"q0.8"`` (any level in (0, 1)) the bin where the policy's
            cumulative probability over the ascending action values first reaches 0.8.
    """

    graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    params: nnx.State
    rest: nnx.State
    values: jax.Array
    scale: jax.Array
    alpha: jax.Array
    target_turnover: jax.Array
    net: str = struct.field(pytree_node=False, default="mlp")
    action: str = struct.field(pytree_node=False, default="order_quantity")
    window: int = struct.field(pytree_node=False, default=28)
    mode: str = struct.field(pytree_node=False, default="greedy")
    detach_critic: bool = struct.field(pytree_node=False, default=True)

    @property
    def num_bins(self) -> int:
        return int(self.values.shape[0])

    def apply(self, params: nnx.State, obs: Observation) -> tuple[jax.Array, jax.Array]:
        """``([R, V] logits, [R] value)`` of the network with ``params`` (no dropout)."""
        model = nnx.merge(self.graphdef, params, self.rest, copy=True)
        if self.net == "foundation":
            x = make_inputs(obs, self.alpha, self.target_turnover)
            return model(x, deterministic=True, detach_value=self.detach_critic)
        return model(mlp_features(obs, self.scale), deterministic=True)

    def orders(self, obs: Observation, amount: jax.Array) -> jax.Array:
        """``[R]`` order quantities for ``amount`` (inventory days, or units) per row."""
        if self.action == "order_quantity":
            return jnp.maximum(amount, 0.0)
        return InventoryDays(v=amount, window=self.window)(obs, None)

    def orders_of_bins(self, obs: Observation, bins: Int[Array, " R"]) -> jax.Array:
        return self.orders(obs, self.values[bins])

    def expected_orders(self, obs: Observation, logits: jax.Array) -> jax.Array:
        """Orders of the expected action ``softmax(logits) @ values`` (differentiable)."""
        return self.orders(obs, jax.nn.softmax(logits, axis=-1) @ self.values)

    def quantile_bins(self, logits: jax.Array, level: float) -> jax.Array:
        """``[R]`` the bin at the ``level`` quantile of the policy's action distribution."""
        order = jnp.argsort(self.values)
        cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1)[:, order], axis=-1)
        first = jnp.argmax(cdf >= level, axis=-1)
        return order[first]

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        logits, _ = self.apply(self.params, obs)
        if self.mode == "expected":
            return self.expected_orders(obs, logits)
        if self.mode.startswith("q"):
            return self.orders_of_bins(obs, self.quantile_bins(logits, float(self.mode[1:])))
        if self.mode == "sample":
            bins = jax.random.categorical(key, logits, axis=-1)
        else:
            bins = jnp.argmax(logits, axis=-1)
        return self.orders_of_bins(obs, bins)

    def playing(self, mode: str) -> Agent:
        """This agent playing ``mode`` (``"greedy"``, ``"sample"``, ``"expected"`` or a
        quantile ``"q<level>"`` such as ``"q0.8"``)."""
        check_mode(mode)
        return self.replace(mode=mode)


def check_mode(mode: str) -> str:
    """``mode`` if it is a decoding an :class:`Agent` can play.

    Raises:
        ValueError: naming the mode and the allowed ones.
    """
    if mode in ("greedy", "sample", "expected"):
        return mode
    level = None
    if isinstance(mode, str) and mode.startswith("q"):
        try:
            level = float(mode[1:])
        except ValueError:
            level = None
    if level is None or not 0.0 < level < 1.0:
        raise ValueError(f"mode={mode!r} is not allowed; use 'greedy', 'sample', 'expected' "
                         "or a quantile 'q<level>' with level in (0, 1), e.g. 'q0.8'")
    return mode


def _split(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, params, rest


def _check_values(values, name: str = "values") -> jax.Array:
    arr = np.asarray(values, np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}={values!r} is not allowed; expected >= 2 finite action values")
    return jnp.asarray(arr, jnp.float32)


def make_mlp_agent(
    values,
    max_lead_time: int,
    key_or_seed: int = 0,
    *,
    scale=1.0,
    hidden: tuple[int, ...] = (64, 64),
    action: ActionKind = "order_quantity",
    window: int = 28,
) -> Agent:
    """A fresh :class:`MLPActorCritic` agent.

    Args:
        values: ``[V]`` action values (order quantities or inventory days).
        max_lead_time: the env's ``max_lead_time`` (sets the pipeline features).
        key_or_seed: initialisation seed.
        scale: ``[]`` or ``[R]`` demand level dividing unit features (e.g. mean demand).
        hidden: hidden widths of each torso.
        action: ``"order_quantity"`` or ``"inventory_days"``.
        window: forecast window of the inventory-days action.

    Raises:
        ValueError: for bad ``values``, ``action`` or ``scale``.
    """
    v = _check_values(values)
    if action not in ("order_quantity", "inventory_days"):
        raise ValueError(f"action={action!r} is not allowed; use 'order_quantity' or "
                         "'inventory_days'")
    scale_arr = np.asarray(scale, np.float64)
    if not np.all(np.isfinite(scale_arr)) or np.any(scale_arr <= 0):
        raise ValueError(f"scale={scale!r} is not allowed; expected finite values > 0")
    model = MLPActorCritic(mlp_feature_count(max_lead_time), int(v.shape[0]), hidden,
                           rngs=nnx.Rngs(int(key_or_seed)))
    graphdef, params, rest = _split(model)
    return Agent(graphdef=graphdef, params=params, rest=rest, values=v,
                 scale=jnp.asarray(scale_arr, jnp.float32),
                 alpha=jnp.asarray(0.95, jnp.float32),
                 target_turnover=jnp.asarray(14.0, jnp.float32),
                 net="mlp", action=action, window=window)


def make_foundation_agent(
    model: FoundationModel,
    values,
    *,
    alpha: float = 0.95,
    target_turnover: float = 14.0,
    window: int = 28,
) -> Agent:
    """An agent around a (pretrained) :class:`FoundationModel` playing inventory days.

    Raises:
        ValueError: if ``values`` does not have one entry per model bin.
    """
    v = _check_values(values)
    if v.shape[0] != model.config.num_bins:
        raise ValueError(f"values has {v.shape[0]} entries; the model has "
                         f"num_bins={model.config.num_bins}")
    graphdef, params, rest = _split(model)
    return Agent(graphdef=graphdef, params=params, rest=rest, values=v,
                 scale=jnp.asarray(1.0, jnp.float32), alpha=jnp.asarray(alpha, jnp.float32),
                 target_turnover=jnp.asarray(target_turnover, jnp.float32),
                 net="foundation", action="inventory_days", window=window)
