"""The run-folder lock: a second OS process on a folder is refused at once (by the lock
function and by ``orpr``), the lock is held for the whole run and released on any exit,
and a crashed holder leaves a stale lock that the next process takes over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orpr_jax.cli import EXIT_BAD_INPUT, main
from orpr_jax.pipeline import RunConfig, prepare_run_dir, run_pipeline
from orpr_jax.pipeline import run as run_module
from orpr_jax.pipeline.lock import LOCK_NAME, RunDirInUse, lock_run_dir

ROOT = Path(__file__).resolve().parents[2]
LOCK_PY = ROOT / "orpr_jax" / "pipeline" / "lock.py"

# The second process loads lock.py by its path (it imports only the standard library), so
# it starts in a fraction of a second instead of importing jax with the package.
_LOAD = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('lock', {str(LOCK_PY)!r})\n"
    "lock = importlib.util.module_from_spec(spec); spec.loader.exec_module(lock)\n"
)
HOLD = _LOAD + (
    "held = lock.lock_run_dir(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()  # hold until the test closes stdin (or kills us)\n"
)
TRY = _LOAD + (
    "try:\n"
    "    lock.lock_run_dir(sys.argv[1])\n"
    "except lock.RunDirInUse as e:\n"
    "    print(e, flush=True)\n"
    "    sys.exit(3)\n"
    "print('locked', flush=True)\n"
)


@pytest.fixture
def holder():
    """``start(folder)`` starts a second OS process that holds the lock on ``folder``."""
    procs: list[subprocess.Popen] = []

    def start(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def _new_run(folder: Path) -> Path:
    return prepare_run_dir(folder, RunConfig.create("tiny"), resume=False)


def test_second_process_is_refused_at_once(tmp_path, holder):
    proc = holder(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(RunDirInUse) as info:
        lock_run_dir(tmp_path)
    assert time.perf_counter() - t0 < 2.0  # refused, not waited
    message = str(info.value)
    assert message.startswith(f"{tmp_path} is in use by process {proc.pid} since ")
    assert info.value.pid == proc.pid
    since = datetime.fromisoformat(info.value.since)
    assert abs(datetime.now().astimezone() - since) < timedelta(minutes=5)
    proc.stdin.close()  # the holder exits normally ...
    assert proc.wait(timeout=10) == 0
    with lock_run_dir(tmp_path) as lock:  # ... and its lock went with it
        assert lock.held
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_a_crashed_holder_leaves_a_stale_lock(tmp_path, holder):
    proc = holder(tmp_path)
    with pytest.raises(RunDirInUse):
        lock_run_dir(tmp_path)
    proc.kill()  # SIGKILL: no cleanup of any kind runs
    proc.wait(timeout=10)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == proc.pid  # stale file
    lock = lock_run_dir(tmp_path)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.held


def test_cli_refuses_a_folder_another_process_uses(tmp_path, holder, capsys):
    out = _new_run(tmp_path / "run")
    proc = holder(out)
    t0 = time.perf_counter()
    assert main(["run", "--resume", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert time.perf_counter() - t0 < 5.0  # before any stage
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()], err  # one line
    assert f"orpr: error: {out} is in use by process {proc.pid} since " in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "config.json"]
    # A new run into a folder that a starting run has locked (still empty) is refused
    # too, and writes nothing.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    proc2 = holder(fresh)
    assert main(["data", "--preset", "tiny", "--quiet", "--out", str(fresh)]) == EXIT_BAD_INPUT
    assert f"{fresh} is in use by process {proc2.pid}" in capsys.readouterr().err
    assert [p.name for p in fresh.iterdir()] == [LOCK_NAME]


def test_cli_as_the_second_process(tmp_path):
    """``python -m orpr_jax run --resume DIR`` in another process, while this one holds DIR."""
    out = _new_run(tmp_path / "run")
    with lock_run_dir(out):
        done = subprocess.run([sys.executable, "-m", "orpr_jax", "run", "--resume", str(out)],
                              capture_output=True, text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"orpr: error: {out} is in use by process {os.getpid()} since")
    assert not (out / "data.json").exists()


def test_the_run_holds_the_lock_while_it_runs_and_releases_it(tmp_path, monkeypatch):
    seen = {}

    def stage(config, out, log):
        # Another process tries the folder while the pipeline is inside a stage.
        tried = subprocess.run([sys.executable, "-c", TRY, str(out)], capture_output=True,
                               text=True, timeout=60)
        seen["rc"], seen["out"] = tried.returncode, tried.stdout
        return None, None, None, {"stage": "data"}

    monkeypatch.setattr(run_module, "data_stage", stage)
    out = tmp_path / "run"
    assert run_pipeline(RunConfig.create("tiny"), out, upto="data") == {"stage": "data"}
    assert seen["rc"] == 3, seen
    assert f"{out} is in use by process {os.getpid()} since" in seen["out"]
    with lock_run_dir(out):  # released after the run
        pass

    def failing(config, out, log):
        raise RuntimeError("stage failed")

    monkeypatch.setattr(run_module, "data_stage", failing)
    with pytest.raises(RuntimeError, match="stage failed"):
        run_pipeline(None, out, resume=True, upto="data")
    with lock_run_dir(out):  # released after an error
        pass


def test_one_lock_per_folder_within_a_process_too(tmp_path):
    with lock_run_dir(tmp_path):
        with pytest.raises(RunDirInUse, match=f"in use by process {os.getpid()}"):
            lock_run_dir(tmp_path)
    lock_run_dir(tmp_path).release()


def test_a_stale_lock_file_does_not_make_a_folder_hold_a_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text('{"pid": 1, "since": "2000-01-01T00:00:00"}\n')  # a crash
    monkeypatch.setattr(run_module, "data_stage",
                        lambda config, out, log: (None, None, None, {"stage": "data"}))
    run_pipeline(RunConfig.create("tiny"), out, upto="data")
    assert (out / "config.json").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        run_pipeline(RunConfig.create("tiny"), other, upto="data")
    assert not (other / LOCK_NAME).exists()  # no lock file dropped into a stranger's folder
