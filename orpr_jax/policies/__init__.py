"""Policies: heuristics (base-stock, (s, S), inventory days, constant) and their tuning."""

from orpr_jax.policies.heuristics import (
    SS,
    BaseStock,
    Constant,
    IncumbentRule,
    InventoryDays,
    LabelPolicy,
    base_stock,
    constant,
    incumbent_rule,
    inventory_days,
    s_S,
)
from orpr_jax.policies.tuning import grid_search

__all__ = [
    "SS",
    "BaseStock",
    "Constant",
    "IncumbentRule",
    "InventoryDays",
    "LabelPolicy",
    "base_stock",
    "constant",
    "grid_search",
    "incumbent_rule",
    "inventory_days",
    "s_S",
]
