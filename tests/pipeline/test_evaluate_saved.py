"""``orpr evaluate --policy PATH --data DIR``: a trained, saved policy runs on the example
data folder from the command line and is compared with the tuned incumbent and
base-stock; mismatched policies and missing arguments end with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import orpr_jax
from orpr_jax.cli import main
from orpr_jax.data.dataset import env_from_data
from orpr_jax.pipeline.evaluate_saved import evaluate_saved
from orpr_jax.pipeline.stages import load_data_dir, periods
from orpr_jax.policies import FoundationConfig, FoundationModel
from orpr_jax.train.agents import make_foundation_agent, make_mlp_agent
from orpr_jax.train.rl import HParams, RLConfig, make_train, trained_agent

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jd_small"
DAYS = np.arange(1, 13, dtype=np.float32)


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory) -> Path:
    """A tiny foundation agent trained with PPO on the example data's tuning period."""
    data = load_data_dir(EXAMPLE)
    train, _ = periods(data)
    env, params = env_from_data(data, start=train[0], num_days=train[1])
    cfg = FoundationConfig(num_bins=len(DAYS), history_length=28, patch_len=7, d_model=16,
                           num_heads=2, num_layers=1, mlp_dim=32, num_categories=16,
                           dropout_rate=0.0)
    agent = make_foundation_agent(FoundationModel(cfg, rngs=nnx.Rngs(0)), DAYS)
    rl = RLConfig(num_updates=2, num_steps=8, num_epochs=1, num_minibatches=2)
    runner, _ = jax.jit(make_train(rl, env, params, agent))(jax.random.key(0),
                                                           HParams.create(learning_rate=1e-3))
    path = tmp_path_factory.mktemp("policy") / "ppo"
    orpr_jax.policies.save(trained_agent(agent, runner, rl), path, env=env)
    return path


def test_cli_evaluates_a_saved_policy_on_the_example_folder(saved_policy, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--policy", str(saved_policy), "--data", str(EXAMPLE),
               "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    table = (out / "comparison.md").read_text()
    for name in ("incumbent rule", "base-stock (tuned per row)", "saved policy (foundation"):
        assert name in table and name in printed
    report = json.loads((out / "comparison.json").read_text())
    assert [r["policy"].split(" (")[0] for r in report["results"]] == [
        "incumbent rule", "base-stock", "saved policy"]
    # The saved policy's row is a real run of the loaded policy on the test period.
    data = load_data_dir(EXAMPLE)
    _, test = periods(data)
    env_te, p_te = env_from_data(data, start=test[0], num_days=test[1])
    eval_key = jax.random.split(jax.random.key(0))[1]
    m = orpr_jax.evaluate(env_te, p_te, orpr_jax.policies.load(saved_policy), eval_key,
                          test[1], 28)
    saved = report["results"][2]["metrics"]
    assert saved["total_cost"] == pytest.approx(float(m["total_cost"]), rel=1e-6)
    costs = [r["metrics"]["total_cost"] for r in report["results"]]
    assert all(np.isfinite(costs)) and len(set(costs)) == 3


def test_mismatched_policy_is_refused(tmp_path, capsys):
    path = orpr_jax.policies.save(make_mlp_agent(np.arange(0, 21), 2, 0, scale=5.0),
                                  tmp_path / "lost_sales_mlp")
    rc = main(["evaluate", "--policy", str(path), "--data", str(EXAMPLE), "--out",
               str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "of the environment does not match the saved policy " \
           "(max_lead_time=2)" in err and "max_lead_time=" in err


def test_bad_arguments(saved_policy, tmp_path, capsys):
    assert main(["evaluate", "--policy", str(saved_policy), "--quiet"]) == 2
    assert "--policy needs --data DIR" in capsys.readouterr().err
    assert main(["evaluate", "--policy", str(tmp_path / "none"), "--data", str(EXAMPLE)]) == 2
    assert "is not a saved policy folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"warmup_days=-1 is not allowed"):
        evaluate_saved(saved_policy, EXAMPLE, warmup_days=-1)
