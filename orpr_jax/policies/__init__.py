"""Policies: heuristics (base-stock, (s, S), inventory days, constant) and their tuning."""

from orpr_jax.policies.heuristics import (
    SS,
    BaseStock,
    Constant,
    InventoryDays,
    base_stock,
    constant,
    inventory_days,
    s_S,
)
from orpr_jax.policies.tuning import grid_search

__all__ = [
    "SS",
    "BaseStock",
    "Constant",
    "InventoryDays",
    "base_stock",
    "constant",
    "grid_search",
    "inventory_days",
    "s_S",
]
