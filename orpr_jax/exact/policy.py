""":class:`OptimalPolicy`: an optimal order table played in the simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import struct

from orpr_jax.sim.types import Observation

if TYPE_CHECKING:
    from orpr_jax.exact.results import OptimalResult


@struct.dataclass
class OptimalPolicy:
    """Plays an optimal order table: ``q = table[x, w_1, ..., w_{L-1}]``.

    A policy pytree like those of :mod:`orpr_jax.policies.heuristics`, called as
    ``policy(obs, key) -> [R] orders``. It reads the stock on hand and the outstanding
    orders due in 1..L-1 days from ``obs.pipeline`` (shared lead-time mode: column k - 1
    holds the units due in k days; column L - 1, due in L days, is empty before today's
    order). Each coordinate is rounded and clipped to the table: on hand to ``[0, S]``
    and outstanding orders to ``[0, A]``. Clipping on hand is exact (beyond S the table
    orders nothing, as it does at S); clipping an outstanding order only happens off the
    optimal path (an initial pipeline the optimal policy would never build).

    The table must come from the same lead time, costs and demand as the simulated
    scenario (``orpr_jax.make("lost_sales", lead_time=L, lost_sales_cost=p,
    demand_mean=mu, holding_cost=h)``).

    Attributes:
        table: ``[S + 1] + [A + 1] * (L - 1)`` float32 orders (see
            :attr:`OptimalResult.order_table`).
        lead_time: L (static).
    """

    table: jax.Array
    lead_time: int = struct.field(pytree_node=False, default=1)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        del key
        lead = self.lead_time
        if obs.pipeline.shape[1] < lead - 1:
            raise ValueError(
                f"lead_time={lead} is not allowed for this env; its pipeline shows only "
                f"{obs.pipeline.shape[1]} days ahead (need >= lead_time - 1)"
            )
        shape = self.table.shape
        coords = [obs.on_hand] + [obs.pipeline[:, k] for k in range(lead - 1)]
        flat = jnp.zeros(obs.on_hand.shape, jnp.int32)
        for size, value in zip(shape, coords, strict=True):
            idx = jnp.clip(jnp.round(value), 0, size - 1).astype(jnp.int32)
            flat = flat * size + idx
        return self.table.reshape(-1)[flat].astype(obs.on_hand.dtype)


def optimal_policy(result: OptimalResult) -> OptimalPolicy:
    """The :class:`OptimalPolicy` of ``result`` (same as ``result.policy()``)."""
    return result.policy()
