"""Adapters to the RL ecosystem: one scenario row as a gymnax environment
(:mod:`~orpr_jax.adapters.gymnax_env`, registered as ``orpr/LostSales-v0`` and
``orpr/JDSynthetic-v0``), the rows of a scenario as a Gymnasium ``VectorEnv`` and one row
as a ``gymnasium.Env`` (:mod:`~orpr_jax.adapters.gymnasium_env`), and a Stable-Baselines3
``VecEnv`` bridge (:mod:`~orpr_jax.adapters.sb3`). What they share (row slicing, the flat
observation, the action spec) is in :mod:`~orpr_jax.adapters.rows`.

The peers are optional (``pip install -e .[peers]``): this package imports them only in
the module that needs them, on first use of a name that needs them
(``orpr_jax.adapters.make`` imports gymnax). When gymnax is installed, importing this
package registers the ids with gymnax's registry, so ``gymnax.make("orpr/LostSales-v0")``
works after ``import orpr_jax.adapters``. Imports ``sim``, ``policies``, ``scenarios``
and the validation helpers of the project.
"""

from __future__ import annotations

import importlib
from typing import Any

from orpr_jax.adapters.rows import ActionSpec, feature_bounds, row_config, split_rows, take_row

_LAZY = {
    "EnvParams": "gymnax_env", "EnvState": "gymnax_env", "InventoryRowEnv": "gymnax_env",
    "LegacyStep": "gymnax_env", "all_rows": "gymnax_env", "legacy_step": "gymnax_env",
    "make": "gymnax_env", "make_row_env": "gymnax_env", "register": "gymnax_env",
    "InventoryGymEnv": "gymnasium_env", "InventoryVectorEnv": "gymnasium_env",
    "SB3VecEnv": "sb3",
}

__all__ = ["ActionSpec", "feature_bounds", "row_config", "split_rows", "take_row",
           *sorted(_LAZY)]


def _register_with_gymnax() -> None:
    try:
        import gymnax  # noqa: F401
    except ImportError:  # the peers extra is not installed: nothing to register
        return
    importlib.import_module("orpr_jax.adapters.gymnax_env")  # registers on import


_register_with_gymnax()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"orpr_jax.adapters.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'orpr_jax.adapters' has no attribute {name!r}")
