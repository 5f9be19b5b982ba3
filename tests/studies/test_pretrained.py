"""Pretraining on OR labels and the held-out comparison, end to end on a tiny data set."""

import jax
import numpy as np

from orpr_jax.data.synthetic import SyntheticSpec, generate
from orpr_jax.studies.pretrained import pretrain_and_compare
from orpr_jax.labels.labeller import LabelConfig
from orpr_jax.train import PretrainConfig


def test_pretrain_and_compare_on_held_out_rows(tmp_path):
    data = generate(jax.random.key(2), SyntheticSpec(num_skus=24, num_warehouses=2,
                                                     num_categories=3, num_days=140))
    lc = LabelConfig(v_max=12, max_horizon=20, stride=14, grouping="row", objective="units")
    pc = PretrainConfig(batch_size=64, total_steps=30, warmup_steps=5, eval_every=10,
                        checkpoint_every=10)
    rep = pretrain_and_compare(data, (28, 42), (70, 70), jax.random.key(0), tmp_path,
                               label_config=lc, pretrain_config=pc, progress=False)
    assert [r.name.split(" (")[0] for r in rep.results] == [
        "incumbent rule", "inventory days", "base-stock", "base-stock following the forecast",
        "(s, S)", "OR policy", "pretrained foundation model"]
    # One decoding, chosen on the training rows and period among the same candidates the
    # pipeline gives every learned policy.
    from orpr_jax.pipeline.config import DECODINGS
    assert set(rep.decoding["train_cost"]) == set(DECODINGS)
    assert rep.decoding["mode"] == min(rep.decoding["train_cost"],
                                       key=rep.decoding["train_cost"].get)
    assert rep.results[-1].name.endswith(f", {rep.decoding['mode']})")
    assert rep.train_rows + rep.held_out_rows == data.num_rows
    for r in rep.results:
        assert np.isfinite(r.metrics["total_cost"]) and 0 < r.metrics["fill_rate"] <= 1
    assert (tmp_path / "pretrain" / "metrics.jsonl").exists()
    assert rep.samples > 0 and rep.params > 0
