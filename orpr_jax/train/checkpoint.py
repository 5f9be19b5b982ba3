"""Atomic orbax checkpoints of a pre-training run: arrays plus JSON metadata.

A checkpoint at step ``s`` lives in ``run_dir/checkpoints/<s>/`` and holds two items:

* ``state``: every array of the run (parameters, optimiser state, non-parameter model
  state such as dropout RNG counters, the best parameters so far), each pytree saved as
  its flat list of leaves. PRNG key arrays are stored as their raw ``uint32`` key data and
  re-wrapped on restore.
* ``meta``: a JSON object with at least ``data_hash``, ``param_shapes`` (parameter path ->
  shape) and ``model_config``; the caller adds the training config, best-loss bookkeeping
  and the batch position.

Restoring checks ``data_hash``, ``param_shapes`` and ``model_config`` against what the
caller expects *before* any array is read, and raises ``ValueError`` naming the first
mismatch. Orbax writes into a temporary directory and renames it on success, so a crash
mid-save never leaves a half-written step that ``latest_step`` would return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

__all__ = [
    "CHECKPOINT_SUBDIR",
    "io_errno",
    "latest_step",
    "model_signature",
    "read_metadata",
    "restore_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_SUBDIR = "checkpoints"


def _checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).resolve() / CHECKPOINT_SUBDIR


def _manager(run_dir: str | Path, *, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        # Synchronous saves: the run is small and a checkpoint must be on disk before the
        # next step can fail with a non-finite loss.
        enable_async_checkpointing=False,
        create=True,
    )
    return ocp.CheckpointManager(
        _checkpoint_dir(run_dir), options=options, item_names=("state", "meta")
    )


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _flatten(tree: Any) -> dict[str, Any]:
    """Leaves of ``tree`` keyed by zero-padded position, PRNG keys as raw key data."""
    leaves = jax.tree.leaves(tree)
    return {
        f"{i:06d}": (jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        for i, leaf in enumerate(leaves)
    }


def _unflatten(template: Any, flat: Mapping[str, Any]) -> Any:
    leaves, treedef = jax.tree.flatten(template)
    if len(flat) != len(leaves):
        raise ValueError(
            f"checkpoint holds {len(flat)} arrays but the model/optimiser has {len(leaves)}"
        )
    out = []
    for i, leaf in enumerate(leaves):
        value = flat[f"{i:06d}"]
        if _is_key(leaf):
            value = jax.random.wrap_key_data(jnp.asarray(value), impl=jax.random.key_impl(leaf))
        else:
            value = jnp.asarray(value, dtype=leaf.dtype)
        out.append(value)
    return jax.tree.unflatten(treedef, out)


def _path_str(path: tuple[Any, ...]) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    # nnx Variables flatten through their ``value`` attribute; that adds nothing.
    if parts and parts[-1] == "value":
        parts.pop()
    return "/".join(parts)


def model_signature(params: Any, model_config: Any = None) -> dict[str, Any]:
    """JSON-able description of a model that a checkpoint must match to be restored.

    Args:
        params: the parameter pytree (an ``nnx.State``).
        model_config: the model's config (a dataclass, a mapping, or None).

    Returns:
        ``{"param_shapes": {path: [dims...]}, "model_config": <JSON object or None>}``.
    """
    shapes = {
        _path_str(path): [int(d) for d in np.shape(leaf)]
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    if dataclasses.is_dataclass(model_config) and not isinstance(model_config, type):
        config_json: Any = dataclasses.asdict(model_config)
    elif isinstance(model_config, Mapping):
        config_json = dict(model_config)
    else:
        config_json = None if model_config is None else repr(model_config)
    # Round-trip through JSON so tuples compare equal to the lists read back from disk.
    config_json = json.loads(json.dumps(config_json, default=str))
    return {"param_shapes": shapes, "model_config": config_json}


def latest_step(run_dir: str | Path) -> int | None:
    """The newest complete checkpoint step under ``run_dir``, or None if there is none."""
    if not _checkpoint_dir(run_dir).exists():
        return None
    with _manager(run_dir) as manager:
        return manager.latest_step()


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    arrays: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    max_to_keep: int | None = 3,
) -> None:
    """Write checkpoint ``step`` atomically.

    Args:
        run_dir: the run directory; checkpoints go under ``run_dir/checkpoints``.
        step: the number of optimiser steps taken so far.
        arrays: named pytrees of arrays (e.g. ``{"params": ..., "opt_state": ...}``).
        meta: JSON-serialisable metadata; must contain ``data_hash``, ``param_shapes`` and
            ``model_config`` (see ``model_signature``).
        max_to_keep: how many of the newest checkpoints to keep on disk.

    Raises:
        ValueError: if ``meta`` lacks a required key or is not JSON-serialisable.
        OSError: if the checkpoint cannot be written (no space, no permission, a
            read-only folder), with the ``errno`` of the cause and ``filename`` the
            checkpoint's folder; orbax's own I/O errors (tensorstore's
            ``ValueError('RESOURCE_EXHAUSTED: ...')``) are raised as this OSError. Earlier
            checkpoints are kept.
    """
    for key in ("data_hash", "param_shapes", "model_config"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs key {key!r}")
    meta_json = json.loads(json.dumps(dict(meta), default=_json_default))
    state = {name: _flatten(tree) for name, tree in arrays.items()}
    target = _checkpoint_dir(run_dir) / str(int(step))
    try:
        with _held_orbax_logs(), _manager(run_dir, max_to_keep=max_to_keep) as manager:
            manager.save(
                int(step),
                args=ocp.args.Composite(
                    state=ocp.args.PyTreeSave(state),
                    meta=ocp.args.JsonSave({**meta_json, "step": int(step)}),
                ),
                force=True,
            )
            manager.wait_until_finished()
    except OSError as e:
        if e.errno is None:
            raise
        raise _write_error(e.errno, e.strerror or str(e), target) from e
    except ValueError as e:  # tensorstore reports I/O failures as ValueError
        code = io_errno(e)
        if code is None:
            raise
        raise _write_error(code, os.strerror(code), target) from e


#: tensorstore's status codes of failed writes -> the errno they stand for when the
#: message carries no ``[os_error_code=...]``.
_STATUS_ERRNO = {"RESOURCE_EXHAUSTED": errno.ENOSPC, "PERMISSION_DENIED": errno.EACCES}
_OS_ERROR_CODE = re.compile(r"\[os_error_code='?(\d+)'?\]")


def io_errno(error: BaseException) -> int | None:
    """The errno of an I/O failure that orbax/tensorstore raised as another exception
    (``ValueError('RESOURCE_EXHAUSTED: ... No space left on device [os_error_code=28]')``),
    or None if ``error`` is no such failure."""
    text = str(error)
    found = _OS_ERROR_CODE.search(text)
    if found:
        return int(found.group(1))
    for status, code in _STATUS_ERRNO.items():
        if text.startswith(status):
            return code
    return None


def _write_error(code: int | None, reason: str, path) -> OSError:
    """``OSError(code, reason, path)`` (its subclass for ``code``, e.g. PermissionError)
    naming the checkpoint that could not be written."""
    return OSError(code, reason, str(path))


class _Hold(logging.Filter):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def _held_orbax_logs():
    """Holds back what orbax logs (through absl) while a checkpoint is written.

    A failed write makes orbax log the exception with its traceback from a worker thread
    (about 160 lines of asyncio and tensorstore frames) before it raises the same
    exception here. The records are dropped if the write fails (the exception that is
    raised carries that traceback) and passed on unchanged if it succeeds.
    """
    logger = logging.getLogger("absl")
    hold = _Hold()
    logger.addFilter(hold)
    try:
        yield
    except BaseException:
        logger.removeFilter(hold)
        raise
    logger.removeFilter(hold)
    for record in hold.records:
        logger.handle(record)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray | jax.Array):
        return np.asarray(obj).tolist()
    raise TypeError(f"cannot write {type(obj).__name__} into checkpoint metadata")


def read_metadata(run_dir: str | Path, step: int | None = None) -> dict[str, Any]:
    """The JSON metadata of checkpoint ``step`` (default: the latest).

    Raises:
        FileNotFoundError: if there is no such checkpoint.
    """
    with _manager(run_dir) as manager:
        step = manager.latest_step() if step is None else step
        if step is None or step not in manager.all_steps():
            raise FileNotFoundError(f"no checkpoint {step} under {_checkpoint_dir(run_dir)}")
        restored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])


def _check_compatible(meta: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    if meta["data_hash"] != expected["data_hash"]:
        raise ValueError(
            f"checkpoint was written for data hash {meta['data_hash']!r} but this run's data "
            f"hash is {expected['data_hash']!r}"
        )
    saved, current = meta["param_shapes"], expected["param_shapes"]
    for path in sorted(set(saved) | set(current)):
        if path not in current:
            raise ValueError(f"checkpoint has parameter {path!r} that the model lacks")
        if path not in saved:
            raise ValueError(f"model has parameter {path!r} that the checkpoint lacks")
        if list(saved[path]) != list(current[path]):
            raise ValueError(
                f"parameter {path!r} has shape {tuple(saved[path])} in the checkpoint but "
                f"{tuple(current[path])} in the model (different model config?)"
            )
    if meta["model_config"] != expected["model_config"]:
        raise ValueError(
            f"checkpoint model config {meta['model_config']!r} differs from the current "
            f"model config {expected['model_config']!r}"
        )


def restore_checkpoint(
    run_dir: str | Path,
    templates: Mapping[str, Any],
    expected: Mapping[str, Any],
    *,
    step: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore checkpoint ``step`` (default: the latest) into the structure of ``templates``.

    Args:
        run_dir: the run directory given to ``save_checkpoint``.
        templates: named pytrees with the structure, dtypes and shapes to restore into
            (the freshly initialised model's state, optimiser state, ...).
        expected: ``data_hash``, ``param_shapes`` and ``model_config`` of the current run.
        step: which checkpoint; None for the latest.

    Returns:
        ``(arrays, meta)``: the restored pytrees by name, and the JSON metadata.

    Raises:
        FileNotFoundError: if there is no such checkpoint.
        ValueError: if the data hash, a parameter's shape or the model config differs.
    """
    meta = read_metadata(run_dir, step)
    _check_compatible(meta, expected)
    flat_templates = {name: _flatten(tree) for name, tree in templates.items()}
    with _manager(run_dir) as manager:
        restored = manager.restore(
            int(meta["step"]),
            args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(
                    flat_templates,
                    restore_args=ocp.checkpoint_utils.construct_restore_args(flat_templates),
                    # Callers may restore a subset of the saved groups (e.g. params only).
                    partial_restore=True,
                )
            ),
        )
    state = restored["state"]
    arrays = {name: _unflatten(templates[name], state[name]) for name in templates}
    return arrays, meta
