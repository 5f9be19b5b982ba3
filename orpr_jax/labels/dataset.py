"""The label data set on disk: saved atomically, cached by a hash of its inputs.

A label set is a folder holding ``labels.npz`` (labels, selection problems and the model
features at each decision) and ``meta.json`` (configuration, solver, infeasibility counts
and the input hash). :func:`cached_labels` reuses a folder whose hash matches the inputs,
and rebuilds it, with a warning, when it is missing, corrupt or built from other inputs.
Folders are written to a temporary name and renamed, so an interrupted build never
leaves a half-written label set behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from orpr_jax.labels.labeller import LabelConfig, LabelSet, label_decisions
from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import Observation, SimParams

FORMAT_VERSION = 1
_ARRAYS = ("v", "choice", "days", "stock", "loss", "budget", "allowed", "active", "feasible")


def input_hash(env: InventoryEnv, params: SimParams, key: jax.Array,
               label_config: LabelConfig) -> str:
    """SHA-256 of everything a label set depends on (config, params, key, label config)."""
    h = hashlib.sha256()
    h.update(f"v{FORMAT_VERSION}".encode())
    h.update(repr(env.config).encode())
    h.update(json.dumps(dataclasses.asdict(label_config), sort_keys=True).encode())
    h.update(np.asarray(jax.random.key_data(key)).tobytes())
    for name, leaf in sorted(vars(params).items()):
        arr = np.ascontiguousarray(np.asarray(leaf))
        h.update(name.encode())
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def save_labels(labels: LabelSet, directory: str | Path, *, input_digest: str) -> Path:
    """Writes ``labels`` to ``directory`` atomically (temporary folder, then rename)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    arrays = {name: getattr(labels, name) for name in _ARRAYS}
    for name, value in vars(labels.features).items():
        arrays[f"features/{name}"] = value
    np.savez(tmp / "labels.npz", **arrays)
    meta = dict(labels.meta, input_hash=input_digest, format_version=FORMAT_VERSION)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_jsonable))
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory


def load_labels(directory: str | Path) -> LabelSet:
    """Reads a label set written by :func:`save_labels`.

    Raises:
        ValueError: a missing or unreadable folder, or files that do not fit together.
    """
    directory = Path(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text())
        with np.load(directory / "labels.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise ValueError(f"label set at {directory} is unreadable: {err}") from err
    missing = [n for n in _ARRAYS if n not in arrays]
    if missing:
        raise ValueError(f"label set at {directory} lacks arrays {missing}")
    fields = {f.name for f in dataclasses.fields(Observation)}
    feats = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("features/")}
    if set(feats) != fields:
        raise ValueError(f"label set at {directory} has features {sorted(feats)}; "
                         f"expected {sorted(fields)}")
    d, r = arrays["v"].shape
    if arrays["days"].shape != (d,) or feats["on_hand"].shape != (d, r):
        raise ValueError(f"label set at {directory} has inconsistent shapes")
    return LabelSet(features=Observation(**feats), meta=meta,
                    **{n: arrays[n] for n in _ARRAYS})


def cached_labels(
    env: InventoryEnv,
    params: SimParams,
    key: jax.Array,
    label_config: LabelConfig,
    cache_dir: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LabelSet, bool]:
    """Loads the label set for these inputs from ``cache_dir``, or builds and saves it.

    Returns:
        ``(labels, reused)``; ``reused`` is True when the cache was hit.
    """
    digest = input_hash(env, params, key, label_config)
    folder = Path(cache_dir) / f"labels-{digest[:16]}"
    if folder.exists():
        try:
            labels = load_labels(folder)
            if labels.meta.get("input_hash") != digest:
                raise ValueError("its input hash does not match")
            return labels, True
        except ValueError as err:
            warnings.warn(f"rebuilding the label set at {folder}: {err}", stacklevel=2)
    labels = label_decisions(env, params, key, label_config, progress=progress)
    save_labels(labels, folder, input_digest=digest)
    return load_labels(folder), False


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x)}")
