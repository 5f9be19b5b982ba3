"""Classic replenishment heuristics as policy pytrees.

Each policy is a ``flax.struct.dataclass`` whose numeric fields are traced leaves and
which is called as ``policy(obs, key) -> [R] orders``. Because the parameters are leaves,
``evaluate`` does not recompile when a level changes, and ``jax.vmap`` over a policy's
fields sweeps them (see :func:`orpr_jax.policies.tuning.grid_search`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from orpr_jax.sim.types import Observation


def _as_float(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


@struct.dataclass
class BaseStock:
    """Order up to ``level``: ``q = max(0, level - inventory_position)``.

    Attributes:
        level: ``[]`` or ``[R]`` order-up-to level (units).
    """

    level: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        return jnp.maximum(self.level - obs.inventory_position, 0.0)


@struct.dataclass
class SS:
    """(s, S): when the inventory position is at or below ``s``, order up to ``S``.

    Attributes:
        s: ``[]`` or ``[R]`` reorder point (units).
        S: ``[]`` or ``[R]`` order-up-to level (units), ``S >= s``.
    """

    s: jax.Array
    S: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        ip = obs.inventory_position
        return jnp.where(ip <= self.s, jnp.maximum(self.S - ip, 0.0), 0.0)


@struct.dataclass
class InventoryDays:
    """The paper's action: order up to ``v`` days of forecast demand.

    ``level = v * forecast`` with ``forecast`` the mean censored sales of the last
    ``window`` days, and ``q = max(0, level - inventory_position)``.

    Attributes:
        v: ``[]`` or ``[R]`` inventory days (may be fractional).
        window: moving-average window in days (static; at most ``history_length``).
    """

    v: jax.Array
    window: int = struct.field(pytree_node=False, default=28)

    def forecast(self, obs: Observation) -> jax.Array:
        """``[R]`` moving-average daily demand forecast from censored sales."""
        return obs.sales_history[:, -self.window :].mean(axis=1)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        level = self.v * self.forecast(obs)
        return jnp.maximum(level - obs.inventory_position, 0.0)


@struct.dataclass
class Constant:
    """Orders ``quantity`` on every review day.

    Attributes:
        quantity: ``[]`` or ``[R]`` units per review.
    """

    quantity: jax.Array

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        return jnp.broadcast_to(self.quantity, obs.on_hand.shape).astype(obs.on_hand.dtype)


@struct.dataclass
class IncumbentRule:
    """The industrial rule: order up to (lead time + review period + safety) days of cover.

    ``v_i = E[L_i] + R_i + safety_days`` applied as :class:`InventoryDays`; the one
    ``safety_days`` value for all rows is tuned on a training period.

    Attributes:
        safety_days: ``[]`` or ``[R]`` extra days of cover.
        window: moving-average window in days (static).
    """

    safety_days: jax.Array
    window: int = struct.field(pytree_node=False, default=28)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        v = obs.lead_time_mean + obs.review_period.astype(obs.lead_time_mean.dtype)
        return InventoryDays(v=v + self.safety_days, window=self.window)(obs, key)


@struct.dataclass
class LabelPolicy:
    """Plays a table of inventory-days decisions: ``v[d]`` from day ``days[d]`` on.

    Attributes:
        v: ``[D, R]`` inventory days per decision date and row.
        days: ``[D]`` int32 increasing decision days (the first applies before it too).
        window: moving-average window in days (static).
    """

    v: jax.Array
    days: jax.Array
    window: int = struct.field(pytree_node=False, default=28)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        t = obs.t[0]
        d = jnp.clip(jnp.searchsorted(self.days, t, side="right") - 1, 0, self.days.shape[0] - 1)
        return InventoryDays(v=self.v[d], window=self.window)(obs, key)


def label_policy(labels, window: int = 28) -> LabelPolicy:
    """The OR policy: plays a label set's inventory days (``labels.v`` ``[D, R]`` from
    ``labels.days`` ``[D]`` on; any object with those two fields, such as
    :class:`orpr_jax.labels.LabelSet`)."""
    return LabelPolicy(v=jnp.asarray(labels.v), days=jnp.asarray(labels.days), window=window)


def incumbent_rule(safety_days, window: int = 28) -> IncumbentRule:
    """Incumbent rule with ``safety_days`` (scalar or ``[R]``) on top of L + R."""
    return IncumbentRule(safety_days=_as_float(safety_days), window=window)


def base_stock(level) -> BaseStock:
    """Base-stock policy with a scalar or per-row ``[R]`` order-up-to level."""
    return BaseStock(level=_as_float(level))


def s_S(s, S) -> SS:  # noqa: N802 - the textbook name
    """(s, S) policy: at or below ``s``, order up to ``S`` (scalars or ``[R]``)."""
    s, S = _as_float(s), _as_float(S)
    if bool(jnp.any(S < s)):
        raise ValueError(f"S={S} is not allowed; expected S >= s={s}")
    return SS(s=s, S=S)


def inventory_days(v, window: int = 28) -> InventoryDays:
    """Inventory-days policy: order up to ``v`` x moving-average forecast.

    Args:
        v: scalar or ``[R]`` days of cover.
        window: forecast window in days (>= 1, at most the env's ``history_length``).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} is not allowed; expected an integer >= 1")
    v = _as_float(v)
    if bool(jnp.any(v < 0)):
        raise ValueError(f"v={v} is not allowed; expected inventory days >= 0")
    return InventoryDays(v=v, window=window)


def constant(quantity) -> Constant:
    """Orders a fixed ``quantity`` (scalar or ``[R]``) on every review day."""
    return Constant(quantity=_as_float(quantity))
