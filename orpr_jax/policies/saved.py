"""Trained policies as files: :func:`save` a trained agent to a folder, :func:`load` it
back as a policy pytree in one call.

A saved policy is a folder of two files:

* ``policy.json``: the format version, the network (``"mlp"`` or ``"foundation"`` with its
  :class:`~orpr_jax.policies.foundation.FoundationConfig`), the action (order quantities
  or inventory days), its bins ``values``, the forecast window, the decision mode
  (greedy / sample / expected), the fixed inputs (demand ``scale``, service target
  ``alpha``, target turnover) and the **signature** an environment must match: the
  observation features the network reads (``max_lead_time`` for the MLP's pipeline
  slots, the sales-history length) and the parameter shapes;
* ``params.npz``: every trained array, keyed by its path in the network.

Anything trained by :mod:`orpr_jax.train` saves: an ``Agent`` after PPO, RLOO or pathwise
training (``trained_agent(...)``), the pretrained foundation model as an agent, a
:class:`~orpr_jax.policies.foundation.FoundationPolicy`, or a bare
:class:`~orpr_jax.policies.foundation.FoundationModel` with its bins. This module never
imports ``orpr_jax.train`` (the layout rule): an agent is read through its attributes, and
the MLP actor is played by :class:`MLPPolicy`, a pure function of the saved weights over
:func:`flat_features` (the same features as ``orpr_jax.train.agents.mlp_features``; a test
checks they agree). Critic weights are saved too, but playing needs only the actor.

Example:
    >>> orpr_jax.policies.save(trained, "runs/ppo_policy", env=env)
    >>> policy = orpr_jax.policies.load("runs/ppo_policy", env=env)
    >>> orpr_jax.evaluate(env, params, policy, jax.random.key(0), 365, 28)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jaxtyping import Array, Float

from orpr_jax.policies.foundation import (
    FoundationConfig,
    FoundationModel,
    FoundationPolicy,
    make_foundation_policy,
)
from orpr_jax.policies.heuristics import InventoryDays
from orpr_jax.sim.types import Observation

#: Version of the folder layout written by :func:`save`.
FORMAT_VERSION = 1
POLICY_FILE = "policy.json"
PARAMS_FILE = "params.npz"
#: Days of recent sales in :func:`flat_features` (``orpr_jax.train.agents.MLP_SALES_DAYS``).
SALES_DAYS = 7
ACTIONS = ("order_quantity", "inventory_days")
MODES = ("greedy", "sample", "expected")


def flat_feature_count(max_lead_time: int) -> int:
    """Width of :func:`flat_features` for an env with ``max_lead_time``."""
    return 7 + max_lead_time + SALES_DAYS


def flat_features(obs: Observation, scale) -> Float[Array, "R F"]:
    """``[R, F]`` flat features of an observation, ``F = 14 + max_lead_time``.

    On hand, backlog, inventory position, the pipeline due in 1..max_lead_time days and the
    last :data:`SALES_DAYS` days of sales, each divided by the row's fixed demand
    ``scale`` and clipped to [-50, 50]; then ``clip(log(p / h), -10, 10) / 5``, the
    review-day flag, the promotion flag of today and the share of promotion days ahead.
    The MLP agent's inputs (``orpr_jax.train.agents.mlp_features``) and the gymnax /
    Gymnasium adapters' observation.
    """
    dtype = obs.on_hand.dtype
    s = jnp.maximum(jnp.asarray(scale, dtype), 1e-6)
    s = jnp.broadcast_to(s, obs.on_hand.shape)[:, None]
    units = jnp.concatenate(
        [obs.on_hand[:, None], obs.backlog[:, None], obs.inventory_position[:, None],
         obs.pipeline, obs.sales_history[:, -SALES_DAYS:]],
        axis=1,
    ).astype(dtype) / s
    ratio = jnp.log(jnp.maximum(obs.penalty_cost, 1e-6) / jnp.maximum(obs.holding_cost, 1e-6))
    promo_ahead = obs.promo_ahead.mean(axis=1) if obs.promo_ahead.shape[1] else 0.0 * ratio
    flags = jnp.stack(
        [jnp.clip(ratio, -10.0, 10.0) / 5.0, obs.is_review_day, obs.promo_today, promo_ahead],
        axis=1,
    ).astype(dtype)
    return jnp.nan_to_num(jnp.concatenate([jnp.clip(units, -50.0, 50.0), flags], axis=1),
                          nan=0.0)


def _amount_to_orders(obs: Observation, amount: jax.Array, action: str, window: int):
    if action == "order_quantity":
        return jnp.maximum(amount, 0.0)
    return InventoryDays(v=amount, window=window)(obs, None)


@struct.dataclass
class MLPPolicy:
    """The MLP agent's actor as a pure function of its weights.

    ``logits = W_p tanh(... tanh(x W_1 + b_1) ...) + b_p`` over ``x = flat_features(obs,
    scale)``; bin ``a`` plays ``values[a]`` units (or inventory days).

    Attributes:
        layers: ``((kernel [F_in, F_out], bias [F_out]), ...)`` of the actor torso.
        head: ``(kernel [F_last, V], bias [V])`` of the policy head.
        values: ``[V]`` action value of each bin.
        scale: ``[]`` or ``[R]`` demand level dividing the unit features.
        action: ``"order_quantity"`` or ``"inventory_days"`` (static).
        window: forecast window of the inventory-days action (static).
        mode: ``"greedy"``, ``"sample"`` or ``"expected"`` (static).
    """

    layers: tuple
    head: tuple
    values: jax.Array
    scale: jax.Array
    action: str = struct.field(pytree_node=False, default="order_quantity")
    window: int = struct.field(pytree_node=False, default=28)
    mode: str = struct.field(pytree_node=False, default="greedy")

    def logits(self, obs: Observation) -> Float[Array, "R V"]:
        x = flat_features(obs, self.scale)
        for kernel, bias in self.layers:
            x = jnp.tanh(x @ kernel.astype(x.dtype) + bias.astype(x.dtype))
        return x @ self.head[0].astype(x.dtype) + self.head[1].astype(x.dtype)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        logits = self.logits(obs)
        if self.mode == "expected":
            amount = jax.nn.softmax(logits, axis=-1) @ self.values.astype(logits.dtype)
        elif self.mode == "sample":
            amount = self.values[jax.random.categorical(key, logits, axis=-1)]
        else:
            amount = self.values[jnp.argmax(logits, axis=-1)]
        return _amount_to_orders(obs, amount, self.action, self.window)


@struct.dataclass
class SavedPolicy:
    """A policy read by :func:`load`: ``policy(obs, key) -> [R]`` orders.

    Attributes:
        inner: the playing policy (:class:`MLPPolicy` or
            :class:`~orpr_jax.policies.foundation.FoundationPolicy`).
        arrays: every saved array (critic included) by its path, for re-saving.
        meta_json: the folder's ``policy.json`` (static, as a string so it hashes).
    """

    inner: Any
    arrays: dict
    meta_json: str = struct.field(pytree_node=False)

    @property
    def meta(self) -> dict:
        """The ``policy.json`` content."""
        return json.loads(self.meta_json)

    @property
    def signature(self) -> dict:
        """What an environment must match (features, history length, rows)."""
        return self.meta["signature"]

    @property
    def values(self) -> np.ndarray:
        """``[V]`` the action bins."""
        return np.asarray(self.meta["values"], np.float64)

    def check_env(self, env, values=None) -> None:
        """Raises ValueError naming the mismatch if ``env`` (an ``InventoryEnv``, or
        anything with a ``config: SimConfig``; an adapter's ``action_values`` are
        compared with the bins) or ``values`` does not fit this policy."""
        check_signature(self.meta, env, values)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        _check_obs(self.meta, obs)
        return self.inner(obs, key)


def _mismatch(what: str, saved, env_value, allowed: str) -> ValueError:
    return ValueError(f"{what}={env_value!r} of the environment does not match the saved "
                      f"policy ({what}={saved!r}); {allowed}")


def check_signature(meta: dict, env=None, values=None) -> None:
    """The checks of :meth:`SavedPolicy.check_env` on a ``policy.json`` dict."""
    sig = meta["signature"]
    if values is not None:
        want = [float(v) for v in np.asarray(values, np.float64).ravel()]
        if len(want) != len(meta["values"]) or not np.allclose(want, meta["values"]):
            raise ValueError(f"values (bins)={want} do not match the saved policy's bins "
                             f"{meta['values']} (V={len(meta['values'])}); allowed: exactly "
                             "the saved bins")
    if env is None:
        return
    env_values = getattr(env, "action_values", None)
    if env_values is not None:
        check_signature(meta, None, env_values)
    config = getattr(env, "config", None)
    if config is None:
        raise ValueError(f"env={env!r} has no config; expected an InventoryEnv or an adapter")
    lead = sig.get("max_lead_time")
    if lead is not None and config.max_lead_time != lead:
        raise _mismatch("max_lead_time", lead, config.max_lead_time,
                        f"the MLP reads exactly {lead} pipeline slots")
    h_min = sig.get("min_history_length", 1)
    h_exact = sig.get("history_length")
    if h_exact is not None and config.history_length != h_exact:
        raise _mismatch("history_length", h_exact, config.history_length,
                        f"the foundation model reads exactly {h_exact} days of sales")
    if config.history_length < h_min:
        raise _mismatch("history_length", f">= {h_min}", config.history_length,
                        f"allowed: integers >= {h_min}")
    rows = sig.get("num_rows")
    if rows is not None and config.num_rows != rows:
        raise _mismatch("num_rows", rows, config.num_rows,
                        "the saved per-row demand scale has exactly that many rows")


def _check_obs(meta: dict, obs: Observation) -> None:
    """Trace-time shape checks (shapes are static, so this raises before any compute)."""
    sig = meta["signature"]
    lead = sig.get("max_lead_time")
    if lead is not None and obs.pipeline.shape[1] != lead:
        raise _mismatch("max_lead_time", lead, obs.pipeline.shape[1],
                        f"the MLP reads exactly {lead} pipeline slots")
    h = obs.sales_history.shape[1]
    if sig.get("history_length") is not None and h != sig["history_length"]:
        raise _mismatch("history_length", sig["history_length"], h,
                        "the foundation model reads exactly that many days")
    if h < sig.get("min_history_length", 1):
        raise _mismatch("history_length", f">= {sig['min_history_length']}", h,
                        f"allowed: integers >= {sig['min_history_length']}")
    rows = sig.get("num_rows")
    if rows is not None and obs.on_hand.shape[0] != rows:
        raise _mismatch("num_rows", rows, obs.on_hand.shape[0],
                        "the saved per-row demand scale has exactly that many rows")


# --------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------


def _path_key(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _flat_arrays(state) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    return {_path_key(p): np.asarray(x) for p, x in leaves}


def _as_list(x) -> Any:
    arr = np.asarray(x, np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"a fixed input has non-finite values {arr.tolist()}; expected finite")
    return arr.tolist()


def _describe(policy, values) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta without signature, arrays)`` of any supported trained policy."""
    if isinstance(policy, SavedPolicy):
        raise AssertionError("handled by save")
    if isinstance(policy, FoundationModel):
        if values is None:
            raise ValueError("values=None is not allowed for a bare FoundationModel; give "
                             "its [V] inventory-days bins")
        policy = make_foundation_policy(policy, values)
    if isinstance(policy, FoundationPolicy):
        model = policy.model
        params = nnx.state(model, nnx.Param)
        mode = "expected" if policy.expected_v else ("greedy" if policy.greedy else "sample")
        meta = {"net": "foundation", "action": "inventory_days",
                "values": _as_list(policy.v_values), "window": int(policy.window),
                "mode": mode, "scale": 1.0, "alpha": _as_list(policy.alpha),
                "target_turnover": _as_list(policy.target_turnover),
                "model_config": dataclasses.asdict(model.config)}
        return meta, _flat_arrays(params)
    needed = ("graphdef", "params", "rest", "values", "net", "action", "window", "mode")
    missing = [a for a in needed if not hasattr(policy, a)]
    if missing:
        raise ValueError(f"policy of type {type(policy).__name__} cannot be saved (no "
                         f"{', '.join(missing)}); expected a trained Agent, a "
                         "FoundationPolicy or a FoundationModel")
    meta = {"net": policy.net, "action": policy.action, "values": _as_list(policy.values),
            "window": int(policy.window), "mode": policy.mode,
            "scale": _as_list(policy.scale), "alpha": _as_list(policy.alpha),
            "target_turnover": _as_list(policy.target_turnover)}
    if policy.net == "foundation":
        model = nnx.merge(policy.graphdef, policy.params, policy.rest, copy=True)
        meta["model_config"] = dataclasses.asdict(model.config)
    elif policy.net != "mlp":
        raise ValueError(f"net={policy.net!r} is not allowed; expected 'mlp' or 'foundation'")
    return meta, _flat_arrays(policy.params)


def _signature(meta: dict, arrays: dict[str, np.ndarray]) -> dict:
    sig: dict[str, Any] = {"param_shapes": {k: list(v.shape) for k, v in sorted(arrays.items())}}
    if meta["net"] == "mlp":
        width = int(arrays["actor/0/kernel/value"].shape[0])
        if width - flat_feature_count(0) < 1:
            raise ValueError(f"the MLP reads {width} features; expected "
                             f"{flat_feature_count(1)} or more (14 + max_lead_time)")
        sig.update(num_features=width, max_lead_time=width - flat_feature_count(0),
                   min_history_length=max(SALES_DAYS, meta["window"]
                                          if meta["action"] == "inventory_days" else 1))
        scale = np.asarray(meta["scale"])
        if scale.ndim == 1:
            sig["num_rows"] = int(scale.size)
    else:
        sig["history_length"] = int(meta["model_config"]["history_length"])
        sig["min_history_length"] = int(meta["window"])
    return sig


def save(policy, path: str | Path, *, env=None, values=None, overwrite: bool = False) -> Path:
    """Saves a trained policy to the folder ``path`` (created; see the module docstring).

    Args:
        policy: a trained ``Agent`` (PPO, RLOO, pathwise or the pretrained foundation
            agent), a :class:`FoundationPolicy`, a :class:`FoundationModel` (with
            ``values``) or a :class:`SavedPolicy`.
        path: the folder.
        env: the environment it was trained on; when given it must match the policy's
            features (checked as :meth:`SavedPolicy.check_env` does).
        values: the ``[V]`` bins (required for a bare FoundationModel; otherwise checked
            against the policy's).
        overwrite: replace an existing saved policy in ``path``.

    Returns:
        The folder.

    Raises:
        ValueError: an unsupported policy, a mismatch with ``env`` / ``values``, a
            non-empty ``path`` without ``overwrite``, non-finite weights or inputs.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path={str(folder)!r} is a file; expected a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (
            overwrite and (folder / POLICY_FILE).exists()):
        raise ValueError(f"path={str(folder)!r} is not empty; pass overwrite=True to replace "
                         "a saved policy, or choose an empty folder")
    if isinstance(policy, SavedPolicy):
        meta = policy.meta
        arrays = {k: np.asarray(v) for k, v in policy.arrays.items()}
    else:
        meta, arrays = _describe(policy, values)
        if meta["mode"] not in MODES or meta["action"] not in ACTIONS:
            raise ValueError(f"mode={meta['mode']!r}, action={meta['action']!r} are not "
                             f"allowed; expected one of {MODES} and one of {ACTIONS}")
        for name, arr in arrays.items():
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"parameter {name} has non-finite values; refusing to save")
        meta = {"format_version": FORMAT_VERSION, **meta, "signature": _signature(meta, arrays)}
    check_signature(meta, env, values if not isinstance(policy, FoundationModel) else None)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (PARAMS_FILE + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(folder / PARAMS_FILE)
    (folder / POLICY_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return folder


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _read(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not (folder / POLICY_FILE).is_file() or not (folder / PARAMS_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a saved policy folder (needs {POLICY_FILE} "
                                f"and {PARAMS_FILE})")
    try:
        meta = json.loads((folder / POLICY_FILE).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{folder / POLICY_FILE} is not valid JSON: {e}") from e
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"format_version={version!r} is not allowed; this version reads "
                         f"format_version={FORMAT_VERSION}")
    with np.load(folder / PARAMS_FILE) as z:
        arrays = {k: np.asarray(z[k]) for k in z.files}
    shapes = meta["signature"]["param_shapes"]
    if sorted(arrays) != sorted(shapes):
        missing = sorted(set(shapes) - set(arrays))
        extra = sorted(set(arrays) - set(shapes))
        raise ValueError(f"{PARAMS_FILE} does not match {POLICY_FILE}: missing {missing}, "
                         f"unexpected {extra}")
    for k, shape in shapes.items():
        if list(arrays[k].shape) != shape:
            raise ValueError(f"parameter {k} has shape {list(arrays[k].shape)}; "
                             f"{POLICY_FILE} says {shape}")
    return meta, arrays


def _mlp_policy(meta: dict, arrays: dict[str, np.ndarray]) -> MLPPolicy:
    def pair(prefix):
        return (jnp.asarray(arrays[f"{prefix}/kernel/value"]),
                jnp.asarray(arrays[f"{prefix}/bias/value"]))

    n_layers = len({k.split("/")[1] for k in arrays if k.startswith("actor/")})
    layers = tuple(pair(f"actor/{i}") for i in range(n_layers))
    return MLPPolicy(layers=layers, head=pair("policy_head"),
                     values=jnp.asarray(meta["values"], jnp.float32),
                     scale=jnp.asarray(meta["scale"], jnp.float32), action=meta["action"],
                     window=int(meta["window"]), mode=meta["mode"])


def _foundation_policy(meta: dict, arrays: dict[str, np.ndarray]) -> FoundationPolicy:
    config = FoundationConfig(**meta["model_config"])
    model = FoundationModel(config, rngs=nnx.Rngs(0))
    graphdef, template, rest = nnx.split(model, nnx.Param, ...)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [_path_key(p) for p, _ in leaves]
    if sorted(keys) != sorted(arrays):
        raise ValueError(f"the saved parameters do not fit FoundationConfig "
                         f"{meta['model_config']}: missing {sorted(set(keys) - set(arrays))}")
    for (p, x), k in zip(leaves, keys, strict=True):
        if tuple(x.shape) != arrays[k].shape:
            raise ValueError(f"parameter {k} has shape {list(arrays[k].shape)}; the model "
                             f"expects {list(x.shape)}")
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[k]) for k in keys])
    model = nnx.merge(graphdef, params, rest)
    mode = meta["mode"]
    return make_foundation_policy(
        model, meta["values"], greedy=mode != "sample",
        alpha=jnp.asarray(meta["alpha"], jnp.float32),
        target_turnover=jnp.asarray(meta["target_turnover"], jnp.float32),
        window=int(meta["window"]), expected_v=mode == "expected")


def load(path: str | Path, env=None, *, values=None) -> SavedPolicy:
    """Loads the policy saved in the folder ``path`` (one call).

    Args:
        path: a folder written by :func:`save`.
        env: the environment to play on; refused with a ValueError naming the mismatch
            when its features (pipeline slots, sales-history length, rows of a per-row
            scale) or an adapter's action bins differ from the saved policy's.
        values: bins the caller expects (e.g. the label config's candidates); a
            mismatch is a ValueError.

    Returns:
        A :class:`SavedPolicy`, ``policy(obs, key) -> [R]`` orders, playing as saved.

    Raises:
        FileNotFoundError: ``path`` is not a saved policy folder.
        ValueError: a corrupted or foreign folder, or a mismatch with ``env`` / ``values``.
    """
    meta, arrays = _read(Path(path))
    check_signature(meta, env, values)
    if meta["net"] == "mlp":
        inner = _mlp_policy(meta, arrays)
    elif meta["net"] == "foundation":
        inner = _foundation_policy(meta, arrays)
    else:
        raise ValueError(f"net={meta['net']!r} is not allowed; expected 'mlp' or 'foundation'")
    return SavedPolicy(inner=inner, arrays={k: jnp.asarray(v) for k, v in arrays.items()},
                       meta_json=json.dumps(meta, sort_keys=True))
