"""Writes that fail for I/O reasons (no space, no permission, a read-only folder): a
checkpoint raises one ``OSError`` naming its folder, orbax's logged traceback is held
back, and ``orpr`` ends with one line (path, reason, what to do) and exit code 2, with the
traceback only under ``--debug``."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import jax.numpy as jnp
import pytest

from orpr_jax import cli
from orpr_jax.cli import EXIT_BAD_INPUT, main
from orpr_jax.pipeline import run as run_module
from orpr_jax.train import checkpoint as ckpt

# What orbax raises (and, from its writer thread, logs with a traceback) on a full disk.
NO_SPACE = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "p.000000/0" in OCDBT database at local file '
    '"/x/checkpoints/3.orbax-checkpoint-tmp/state/": Failed to write 698684 bytes to file '
    "7: No space left on device [os_error_code='28']"
)
META = {"data_hash": "d", "param_shapes": {}, "model_config": None}


def _arrays():
    return {"params": {"w": jnp.arange(4.0)}}


def _failing_save(error: BaseException):
    """A stand-in for ``CheckpointManager.save`` that fails as orbax does: it logs the
    error with its traceback through absl, then raises it."""

    def save(self, step, *args, **kwargs):
        try:
            raise error
        except BaseException:
            logging.getLogger("absl").exception("_SignalingThread.run() raised an exception")
        raise error

    return save


def test_no_space_in_orbax_is_one_oserror_without_the_logged_traceback(
        tmp_path, monkeypatch, capfd, caplog):
    ckpt.save_checkpoint(tmp_path, 1, _arrays(), META)
    capfd.readouterr()
    monkeypatch.setattr(ckpt.ocp.CheckpointManager, "save", _failing_save(NO_SPACE))
    with caplog.at_level(logging.INFO), pytest.raises(OSError) as info:
        ckpt.save_checkpoint(tmp_path, 3, _arrays(), META)
    assert info.value.errno == errno.ENOSPC
    assert info.value.strerror == os.strerror(errno.ENOSPC)
    assert info.value.filename == str(tmp_path.resolve() / "checkpoints" / "3")
    assert info.value.__cause__ is NO_SPACE  # the original, for --debug
    assert not [r for r in caplog.records if r.name == "absl"]
    assert "Traceback" not in capfd.readouterr().err
    assert not logging.getLogger("absl").filters  # the hold ends with the save
    assert ckpt.latest_step(tmp_path) == 1  # the earlier checkpoint is kept


@pytest.mark.parametrize(("error", "code"), [
    (PermissionError(errno.EACCES, "Permission denied", "/x/_CHECKPOINT_METADATA"),
     errno.EACCES),
    (OSError(errno.EROFS, "Read-only file system"), errno.EROFS),
    (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
    (ValueError("PERMISSION_DENIED: Error opening file"), errno.EACCES),
    (ValueError("RESOURCE_EXHAUSTED: out of space"), errno.ENOSPC),
])
def test_each_io_failure_names_the_checkpoint(tmp_path, monkeypatch, error, code):
    monkeypatch.setattr(ckpt.ocp.CheckpointManager, "save", _failing_save(error))
    with pytest.raises(OSError) as info:
        ckpt.save_checkpoint(tmp_path, 5, _arrays(), META)
    assert info.value.errno == code
    assert info.value.filename == str(tmp_path.resolve() / "checkpoints" / "5")
    if code == errno.EACCES:
        assert isinstance(info.value, PermissionError)


def test_other_errors_of_orbax_pass_unchanged(tmp_path, monkeypatch):
    other = ValueError("Tree structure mismatch")
    monkeypatch.setattr(ckpt.ocp.CheckpointManager, "save", _failing_save(other))
    with pytest.raises(ValueError) as info:
        ckpt.save_checkpoint(tmp_path, 1, _arrays(), META)
    assert info.value is other
    assert ckpt.io_errno(other) is None
    assert ckpt.io_errno(NO_SPACE) == errno.ENOSPC


def test_a_successful_save_passes_orbax_logs_on(tmp_path, monkeypatch, caplog):
    save = ckpt.ocp.CheckpointManager.save

    def chatty(self, *args, **kwargs):
        logging.getLogger("absl").warning("slow filesystem")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(ckpt.ocp.CheckpointManager, "save", chatty)
    with caplog.at_level(logging.WARNING):
        ckpt.save_checkpoint(tmp_path, 2, _arrays(), META)
    assert [r.getMessage() for r in caplog.records if r.name == "absl"] == ["slow filesystem"]
    assert ckpt.latest_step(tmp_path) == 2


def _read_only(folder: Path):
    """Makes ``folder`` read-only; skips the test where that does not bind (root)."""
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder.chmod(0o755)
        pytest.skip("chmod does not stop this user from writing (root)")


def test_read_only_folder_chmod(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _read_only(run_dir)
    try:
        with pytest.raises(PermissionError) as info:
            ckpt.save_checkpoint(run_dir, 1, _arrays(), META)
    finally:
        run_dir.chmod(0o755)
    assert info.value.filename == str(run_dir.resolve() / "checkpoints" / "1")


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _checkpointing_stage(monkeypatch, error):
    """The data stage replaced by one that writes a checkpoint into the run folder the
    way the pretraining stage does, through orbax failing with ``error``."""
    monkeypatch.setattr(ckpt.ocp.CheckpointManager, "save", _failing_save(error))

    def stage(config, out, log):
        ckpt.save_checkpoint(out / "seed0" / "pretrain", 1, _arrays(), META)

    monkeypatch.setattr(run_module, "data_stage", stage)


def test_cli_full_disk_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd):
    _checkpointing_stage(monkeypatch, NO_SPACE)
    out = tmp_path / "run"
    assert main(["run", "--preset", "tiny", "--quiet", "--out", str(out)]) == EXIT_BAD_INPUT
    line = _one_line(capfd.readouterr().err)
    target = out.resolve() / "seed0" / "pretrain" / "checkpoints" / "1"
    assert line == (f"orpr: error: could not write {target}: No space left on device "
                    f"(ENOSPC); free space, then orpr run --resume {out}")
    # --debug: the traceback (down to orbax's own error), then the same line.
    assert main(["run", "--resume", str(out), "--quiet", "--debug"]) == EXIT_BAD_INPUT
    err = capfd.readouterr().err
    assert "Traceback" in err and "RESOURCE_EXHAUSTED" in err
    assert err.strip().splitlines()[-1] == line
    assert main(["--debug", "run", "--resume", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert "Traceback" in capfd.readouterr().err


def test_cli_no_permission_on_a_report_file_is_one_line(tmp_path, monkeypatch, capfd):
    """The real data stage, its ``data.json`` write refused by a patched writer."""
    write_text = Path.write_text

    def refuse(self, *args, **kwargs):
        if self.name == "data.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", refuse)
    out = tmp_path / "run"
    assert main(["data", "--preset", "tiny", "--quiet", "--out", str(out)]) == EXIT_BAD_INPUT
    line = _one_line(capfd.readouterr().err)
    assert line == (f"orpr: error: could not write {out / 'data.json'}: Permission denied "
                    f"(EACCES); make the folder writable, then orpr data --resume {out}")


def test_cli_read_only_run_folder_chmod(tmp_path, capfd):
    out = tmp_path / "run"
    assert main(["data", "--preset", "tiny", "--quiet", "--out", str(out)]) == 0
    capfd.readouterr()
    (out / "data.json").unlink()
    _read_only(out)
    try:
        assert main(["data", "--resume", str(out), "--quiet"]) == EXIT_BAD_INPUT
    finally:
        out.chmod(0o755)
    line = _one_line(capfd.readouterr().err)
    assert line.startswith(f"orpr: error: could not write {out}/")
    assert line.endswith(f"make the folder writable, then orpr data --resume {out}")


@pytest.mark.parametrize(("error", "expected"), [
    (OSError(errno.EROFS, "Read-only file system", "/r/x"),
     "could not write /r/x: Read-only file system (EROFS); make the disk writable or move "
     "the run folder to a writable one, then orpr run --resume {out}"),
    (OSError(errno.EDQUOT, "Disk quota exceeded", "/r/x"),
     "could not write /r/x: Disk quota exceeded (EDQUOT); free space (the disk quota is "
     "full), then orpr run --resume {out}"),
    (OSError(errno.EIO, "Input/output error", "/r/x"),
     "I/O error on /r/x: Input/output error (EIO); fix the cause, then orpr run --resume "
     "{out}"),
    (OSError(errno.ENOSPC, "No space left on device"),  # no file name: the run folder
     "could not write {out}: No space left on device (ENOSPC); free space, then orpr run "
     "--resume {out}"),
])
def test_io_message(tmp_path, error, expected):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    args = cli.build_parser().parse_args(["run", "--resume", str(out)])
    assert cli._io_message(error, args) == expected.format(out=out)
    fresh = cli.build_parser().parse_args(["run", "--out", str(tmp_path / "new")])
    assert cli._io_message(error, fresh).endswith("then run the command again")
