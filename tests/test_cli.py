"""The `orpr` command: end to end on the tiny preset, resume, config round trip, bad input."""

import json

import pytest

from orpr_jax.cli import EXIT_BAD_INPUT, main
from orpr_jax.pipeline import PRESETS, RunConfig


def test_config_round_trip_and_overrides(tmp_path):
    cfg = RunConfig.create("tiny", num_updates=3, algorithms="orpr,rloo")
    assert cfg.algorithms == ("orpr", "rloo") and cfg.num_updates == 3
    again = RunConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg
    assert RunConfig.create("cpu") == RunConfig(preset="cpu", **PRESETS["cpu"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--preset", "huge"], "preset='huge'"),
        (["run", "--set", "num_updates=0"], "num_updates=0"),
        (["run", "--set", "alpha=1.5"], "alpha=1.5"),
        (["run", "--set", "kl_coef=-0.1"], "kl_coef=-0.1"),
        (["run", "--set", "colour=red"], "unknown config key 'colour'"),
        (["run", "--set", "play_mode=median"], "play_mode='median'"),
        (["run", "--set", "gae_lambda=1.5"], "gae_lambda=1.5"),
        (["run", "--set", "algorithms=orpr,a2c"], "algorithms="),
        (["run", "--set", "oops"], "KEY=VALUE"),
        (["run", "--data", "/nonexistent/data.csv"], "does not exist"),
        (["run", "--config", "/nonexistent/config.json"], "does not exist"),
        (["run", "--resume", "/nonexistent/run"], "no run to resume"),
        (["sweep"], "--grid"),
        (["sweep", "--grid", "colour=1,2"], "not an HParams field"),
    ],
)
def test_bad_input_exits_2_with_message(args, message, tmp_path, capsys):
    args = [a.replace("/nonexistent", str(tmp_path / "missing")) for a in args]
    if args[0] == "run" and "--out" not in args and "--resume" not in args:
        args += ["--out", str(tmp_path / "run")]
    assert main(args) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "report.md").exists()


def test_bad_config_file_exits_2(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "r")]) == EXIT_BAD_INPUT
    assert "not valid JSON" in capsys.readouterr().err


def test_tiny_run_end_to_end_with_resume_and_no_overwrite(tmp_path, capsys, monkeypatch):
    from orpr_jax.pipeline import align as alignment

    seen = []  # the decision mode is chosen on the training rows and period only

    def spy(agent, env, params, key, num_days, warmup_days, mode="auto", **kw):
        seen.append((env.num_rows, num_days))
        return choose(agent, env, params, key, num_days, warmup_days, mode, **kw)

    choose = alignment.choose_play_mode
    monkeypatch.setattr(alignment, "choose_play_mode", spy)
    out = tmp_path / "run"
    common = ["--preset", "tiny", "--set", "algorithms=orpr", "--quiet", "--out", str(out)]
    assert main(["label", *common]) == 0  # the first stages only ...
    assert (out / "config.json").exists() and not (out / "report.md").exists()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0  # ... and the rest on resume
    report = (out / "report.md").read_text()
    assert "ORPR (pretrained + PPO)" in report and "incumbent rule" in report
    assert "Field test" in report or "field test" in report
    for png in ("learning_curves.png", "trajectories.png"):
        assert (out / png).stat().st_size > 1000
    results = json.loads((out / "results.json").read_text())
    assert results["field_test"] and results["config"]["preset"] == "tiny"
    from orpr_jax.pipeline.config import DECODINGS

    # Every learned policy (here the pretrained model and ORPR) decodes by the same rule:
    # the cheapest of the same candidates on the training rows and period.
    for name in ("pretrained", "orpr"):
        chosen = results["play_modes"][0][name]
        assert set(chosen["train_cost"]) == set(DECODINGS)
        assert chosen["mode"] == min(chosen["train_cost"], key=chosen["train_cost"].get)
        assert len(chosen["in_stock_by_group"]) == len(chosen["targets"])
    assert seen == [(results["train_rows"], results["train_period"][1])] * 2
    targets = results["service_targets"][0]
    assert "incumbent" in targets["source"] and targets["by_category_index"]
    assert "orpr plays" in report
    saved = (out / "config.json").read_text()
    # A folder holding a run is never overwritten.
    capsys.readouterr()
    assert main(["run", *common]) == EXIT_BAD_INPUT
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "config.json").read_text() == saved
    # The saved config starts another run.
    cfg_copy = tmp_path / "cfg.json"
    cfg_copy.write_text(saved)
    assert main(["data", "--config", str(cfg_copy), "--preset", "tiny", "--quiet",
                 "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "data.json").read_text())["rows"] == \
        json.loads((out / "data.json").read_text())["rows"]


def test_sweep_runs_grid_in_one_program(tmp_path, capsys):
    assert main(["sweep", "--grid", "learning_rate=1e-3,3e-4", "--seeds", "2",
                 "--updates", "2", "--rows", "8", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert len(rows) == 2 and rows[0]["objective"] <= rows[1]["objective"]
    assert "learning_rate" in capsys.readouterr().out


def test_user_data_folder_and_its_errors(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "jd_small"
    out = tmp_path / "run"
    assert main(["data", "--data", str(example), "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "data.json").read_text())
    assert summary["rows"] == 288 and summary["source"] == str(example)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "--data", str(empty), "--out", str(tmp_path / "r2")]) == EXIT_BAD_INPUT
    assert "no sales.parquet or sales.csv" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sales.csv").write_text("row_id,date,sales\nA,2024-01-01,not-a-number\n")
    (bad / "rows.csv").write_text("row_id\nA\n")
    assert main(["data", "--data", str(bad), "--out", str(tmp_path / "r3")]) == EXIT_BAD_INPUT
    assert "orpr: error:" in capsys.readouterr().err
