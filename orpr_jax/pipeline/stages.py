"""The pipeline's stages before alignment: data (:func:`data_stage`), OR labels
(:func:`label_stage`) and pretraining (:func:`pretrain_stage`).

Rows are split once (:func:`split_rows`): the foundation model is pretrained on the OR
labels of the training rows over the first year; the held-out rows are only evaluated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.labels.dataset import cached_labels
from orpr_jax.labels.labeller import LabelConfig
from orpr_jax.pipeline.config import RunConfig
from orpr_jax.policies.features import inputs_from_labels
from orpr_jax.policies.foundation import FoundationConfig, FoundationModel
from orpr_jax.train.pretrain import PretrainConfig, pretrain


def _data_hash(data: InventoryData) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.demand).tobytes())
    h.update(np.ascontiguousarray(data.promo).tobytes())
    h.update(data.rows.to_csv(index=False).encode())
    return h.hexdigest()[:16]


def load_run_data(config: RunConfig) -> InventoryData:
    """The run's data set: the user's files, or the built-in jd_synthetic data.

    Raises:
        FileNotFoundError / ValueError: from the loader for missing or malformed files.
    """
    if config.data is not None:
        return load_data_dir(config.data)
    from orpr_jax.scenarios import jd_synthetic_data

    return jd_synthetic_data(seed=config.seed, num_skus=config.num_skus,
                             num_warehouses=config.num_warehouses, num_days=config.num_days)


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".pq", ".csv", ".csv.gz"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def load_data_dir(path: str | Path) -> InventoryData:
    """Reads a data folder in the documented format (``docs/data_format.md``):
    ``sales.{parquet,csv}``, ``rows.{parquet,csv}`` and optionally ``capacity.*``.

    Raises:
        FileNotFoundError: if the folder or one of the two required tables is missing.
        ValueError: from the loader, for malformed tables.
    """
    from orpr_jax.data.loader import load_data

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"data path {folder} is not a folder holding sales.* and "
                                "rows.* tables")
    sales, rows = _find(folder, "sales"), _find(folder, "rows")
    for name, found in (("sales", sales), ("rows", rows)):
        if found is None:
            raise FileNotFoundError(f"data folder {folder} has no {name}.parquet or "
                                    f"{name}.csv")
    return load_data(sales, rows, capacity_path=_find(folder, "capacity"))


def periods(data: InventoryData) -> tuple[tuple[int, int], tuple[int, int]]:
    from orpr_jax.scenarios import jd_period

    return jd_period(data, "train"), jd_period(data, "test")


def data_stage(config: RunConfig, out: Path, log=print):
    """The data stage: loads the run's data, writes ``out/data.json`` (size, periods and
    hash) and returns ``(data, train, test, summary)``."""
    data = load_run_data(config)
    train, test = periods(data)
    summary = {"rows": data.num_rows, "days": data.num_days, "train": train, "test": test,
               "categories": len(data.categories), "warehouses": len(data.warehouses),
               "data_hash": _data_hash(data), "source": config.data or "jd_synthetic"}
    (out / "data.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"data: {data.num_rows} rows x {data.num_days} days ({summary['source']}), train days "
        f"{train[0]}..{sum(train) - 1}, test days {test[0]}..{sum(test) - 1}")
    return data, train, test, summary


@dataclasses.dataclass
class PretrainStage:
    """The pretraining stage shared by the comparisons: the row split, the OR labels of
    the training rows, and the pretrained model.

    Attributes:
        seen: sorted indices of the training rows.
        held: sorted indices of the held-out rows.
        label_config: the OR model that labelled the training rows.
        labels: the training rows' label set.
        model_config: the foundation model's config.
        result: the pretraining result (``result.model`` holds the best parameters).
        samples: labelled decisions used.
    """

    seen: np.ndarray
    held: np.ndarray
    label_config: LabelConfig
    labels: object
    model_config: FoundationConfig
    result: object
    samples: int


def split_rows(data: InventoryData, key: jax.Array,
               held_out_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(training rows, held-out rows)``: sorted indices, the held-out share drawn with
    the first of ``key``'s four stage keys (every stage splits the same way)."""
    split_key = jax.random.split(key, 4)[0]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(split_key)).ravel())
    perm = rng.permutation(data.num_rows)
    n_held = max(1, int(round(held_out_fraction * data.num_rows)))
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def label_stage(
    data: InventoryData,
    train: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    label_config: LabelConfig | None = None,
    held_out_fraction: float = 0.2,
):
    """The OR labels of the training rows on ``train`` (cached under ``run_dir/labels``);
    the row split and the key use are those of :func:`pretrain_stage`."""
    lc = label_config or LabelConfig(alpha=0.98, grouping="row", objective="units")
    seen, _ = split_rows(data, key, held_out_fraction)
    label_key = jax.random.split(key, 4)[1]
    env_tr, p_tr = env_from_data(data.select_rows(seen), start=train[0], num_days=train[1])
    labels, _ = cached_labels(env_tr, p_tr, label_key, lc, Path(run_dir) / "labels")
    return labels


def pretrain_stage(
    data: InventoryData,
    train: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    label_config: LabelConfig | None = None,
    preset: str = "small",
    pretrain_config: PretrainConfig | None = None,
    held_out_fraction: float = 0.2,
    resume: bool = False,
    progress: bool = True,
) -> PretrainStage:
    """Splits the rows, labels the training rows on ``train`` (cached under
    ``run_dir/labels``) and pretrains the foundation model (``run_dir/pretrain``).

    ``key`` is split as in :func:`split_rows`, so every stage sees the same split.
    """
    run_dir = Path(run_dir)
    lc = label_config or LabelConfig(alpha=0.98, grouping="row", objective="units")
    pc = pretrain_config or PretrainConfig()
    seen, held = split_rows(data, key, held_out_fraction)
    labels = label_stage(data, train, key, run_dir, label_config=lc,
                         held_out_fraction=held_out_fraction)
    inputs, y, row_ids = inputs_from_labels(labels)
    mcfg = FoundationConfig.preset(preset, len(lc.candidates), data_history_length(labels),
                                   len(data.categories))
    result = pretrain(
        lambda rngs: FoundationModel(mcfg, rngs=rngs), inputs, y, row_ids, pc,
        run_dir / "pretrain", resume=resume, data_hash=labels.meta.get("input_hash", ""),
        progress=progress,
    )
    return PretrainStage(seen=seen, held=held, label_config=lc, labels=labels,
                         model_config=mcfg, result=result, samples=int(y.shape[0]))


def data_history_length(labels) -> int:
    """H of the observations the labels were computed from."""
    return int(np.shape(labels.features.sales_history)[-1])
