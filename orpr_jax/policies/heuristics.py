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

from orpr_jax.policies.forecast import censored_forecast
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

    ``level = v * forecast`` with ``forecast`` the mean sales of the days of the last
    ``window`` that ended in stock, shrunk to the long-run level
    (:func:`orpr_jax.policies.forecast.censored_forecast`), and
    ``q = max(0, level - inventory_position)``.

    Attributes:
        v: ``[]`` or ``[R]`` inventory days (may be fractional).
        window: moving-average window in days (static; at most ``history_length``).
    """

    v: jax.Array
    window: int = struct.field(pytree_node=False, default=28)

    def forecast(self, obs: Observation) -> jax.Array:
        """``[R]`` daily demand forecast from the in-stock days of the window."""
        return censored_forecast(obs, self.window)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        level = self.v * self.forecast(obs)
        return jnp.maximum(level - obs.inventory_position, 0.0)


@struct.dataclass
class ForecastBaseStock:
    """Base-stock whose level follows the forecast: cover of the protection period plus
    safety stock.

    ``level = (E[L] + R) * f + z * sigma * sqrt(E[L] + R)`` with ``f`` the censored
    forecast (:func:`~orpr_jax.policies.forecast.censored_forecast`) and ``sigma`` the
    standard deviation of the in-stock days' sales in the window, at least ``sqrt(f)``
    (Poisson); ``q = max(0, level - inventory_position)``.

    Attributes:
        z: ``[]`` or ``[R]`` safety factor (standard deviations of protection-period
            demand).
        window: forecast window in days (static).
    """

    z: jax.Array
    window: int = struct.field(pytree_node=False, default=28)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        f = censored_forecast(obs, self.window)
        sales = obs.sales_history[:, -self.window :]
        ok = 1.0 - obs.stockout_history[:, -self.window :]
        n = jnp.maximum(ok.sum(axis=1), 1.0)
        mean = (sales * ok).sum(axis=1) / n
        var = ((sales - mean[:, None]) ** 2 * ok).sum(axis=1) / n
        sigma = jnp.sqrt(jnp.maximum(var, f))
        cover = obs.lead_time_mean + obs.review_period.astype(obs.lead_time_mean.dtype)
        level = cover * f + self.z * sigma * jnp.sqrt(cover)
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


def forecast_base_stock(z, window: int = 28) -> ForecastBaseStock:
    """Base-stock that follows the forecast with safety factor ``z`` (scalar or ``[R]``)."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} is not allowed; expected an integer >= 1")
    return ForecastBaseStock(z=_as_float(z), window=window)


def constant(quantity) -> Constant:
    """Orders a fixed ``quantity`` (scalar or ``[R]``) on every review day."""
    return Constant(quantity=_as_float(quantity))
