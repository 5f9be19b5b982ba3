"""Policies: heuristics (base-stock, (s, S), inventory days, constant, label tables), their
tuning, the foundation model with its policy adapter, and trained policies saved to and
loaded from folders (``save`` / ``load``). Imports only ``sim`` and the
validation helpers of the project (never ``train``).
"""

from orpr_jax.policies.capped import CappedBaseStock, capped_base_stock
from orpr_jax.policies.features import ModelInputs, inputs_from_labels, make_inputs
from orpr_jax.policies.forecast import censored_forecast, censoring_features
from orpr_jax.policies.foundation import (
    FoundationConfig,
    FoundationModel,
    FoundationPolicy,
    count_params,
    make_foundation_policy,
)
from orpr_jax.policies.heuristics import (
    SS,
    BaseStock,
    Constant,
    ForecastBaseStock,
    IncumbentRule,
    InventoryDays,
    LabelPolicy,
    base_stock,
    constant,
    forecast_base_stock,
    incumbent_rule,
    inventory_days,
    label_policy,
    s_S,
)
from orpr_jax.policies.saved import (
    MLPPolicy,
    SavedPolicy,
    flat_feature_count,
    flat_features,
    load,
    save,
)
from orpr_jax.policies.tuning import grid_search

__all__ = [
    "CappedBaseStock",
    "capped_base_stock",
    "FoundationConfig",
    "FoundationModel",
    "FoundationPolicy",
    "ModelInputs",
    "count_params",
    "inputs_from_labels",
    "make_foundation_policy",
    "make_inputs",
    "SS",
    "BaseStock",
    "Constant",
    "ForecastBaseStock",
    "IncumbentRule",
    "InventoryDays",
    "LabelPolicy",
    "base_stock",
    "censored_forecast",
    "censoring_features",
    "constant",
    "forecast_base_stock",
    "grid_search",
    "incumbent_rule",
    "inventory_days",
    "label_policy",
    "s_S",
    "MLPPolicy",
    "SavedPolicy",
    "flat_feature_count",
    "flat_features",
    "load",
    "save",
]
