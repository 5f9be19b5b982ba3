"""The ``orpr`` command (also ``python -m orpr_jax``).

Sub-commands::

    orpr run [--out DIR] [--preset cpu|tiny|paper] [--data PATH] [--set KEY=VALUE ...]
    orpr run --resume DIR                  finish an interrupted run
    orpr data | label | pretrain | align | evaluate [same options]   run up to that stage
    orpr evaluate --policy PATH --data DIR [--out DIR]   a saved policy on your data
    orpr sweep [--scenario lost_sales] --grid learning_rate=3e-4,1e-3 [--grid ...]
    orpr bench [--quick] [--out DIR]       run the benchmark scripts, one summary table

Configs are :class:`~orpr_jax.pipeline.RunConfig` dataclasses: start from ``--preset``,
then ``--config FILE`` (a saved ``config.json``), then ``--set key=value`` overrides.
Bad presets, keys, values or files, and an output folder holding another run, end with a
message naming the problem and exit code 2; nothing is overwritten. So do a run folder
that another process is using, and a file that cannot be written (no space, no
permission): one line naming the path, the reason and what to do; ``--debug`` prints the
traceback before it.
"""

from __future__ import annotations

import argparse
import errno
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: Exit code of bad input (as argparse's own errors).
EXIT_BAD_INPUT = 2


class _BadInput(Exception):
    pass


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise _BadInput(f"--set {pair!r}: expected KEY=VALUE")
        k, v = pair.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _config(args) -> Any:
    from orpr_jax.pipeline import RunConfig

    values: dict[str, Any] = {}
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise _BadInput(f"config file {path} is not valid JSON: {e}") from e
        values.pop("preset", None)
    values.update(_overrides(args.set or []))
    if args.data is not None:
        if not Path(args.data).exists():
            raise FileNotFoundError(f"data path {args.data} does not exist")
        values["data"] = str(args.data)
    return RunConfig.create(args.preset, **values)


def _add_run_options(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", type=Path, default=Path(default_out), help="run folder")
    p.add_argument("--preset", default="cpu", help="tiny | cpu (default) | paper")
    p.add_argument("--config", default=None, help="a saved config.json to start from")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one config value (repeatable)")
    p.add_argument("--data", default=None,
                   help="user data folder: sales.{parquet,csv} + rows.{parquet,csv}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_debug(p)


def _add_debug(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a sub-command's default must not overwrite ``orpr --debug CMD``.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="print the traceback of an error before its one-line message")


def _cmd_stage(args, stage: str) -> int:
    from orpr_jax.pipeline import run_pipeline
    from orpr_jax.pipeline.lock import RunDirInUse

    if getattr(args, "resume", None) is not None:
        out, config, resume = Path(args.resume), None, True
    else:
        out, config, resume = args.out, _config(args), False
    t0 = time.perf_counter()
    export = getattr(args, "export", None)
    if export is not None:
        from orpr_jax.data.loader import save_data
        from orpr_jax.pipeline import load_run_data

        if Path(export).exists() and any(Path(export).iterdir()):
            raise _BadInput(f"--export folder {export} is not empty")
        paths = save_data(load_run_data(config), export)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    try:
        results = run_pipeline(config, out, resume=resume, upto=stage,
                               progress=not args.quiet)
    except RunDirInUse as e:
        raise _BadInput(str(e)) from e
    except KeyboardInterrupt:
        print(f"\ninterrupted; finish it with: orpr run --resume {out}", file=sys.stderr)
        return 130
    if stage == "evaluate":
        print(f"report: {out / 'report.md'} [{time.perf_counter() - t0:.0f} s]")
        table = out / "summary.md"
        if table.exists():
            print(table.read_text())
    else:
        print(json.dumps({k: v for k, v in results.items() if k != "histories"}, indent=1,
                         default=str)[:2000])
    return 0


def _cmd_evaluate(args) -> int:
    """``orpr evaluate --policy PATH --data DIR [--out DIR]``: a saved policy on a data
    folder against the tuned incumbent and base-stock."""
    from orpr_jax.pipeline.evaluate_saved import evaluate_saved

    if args.data is None:
        raise _BadInput("--policy needs --data DIR (a data folder: sales.* and rows.*)")
    log = (lambda *a, **k: None) if args.quiet else print
    report = evaluate_saved(args.policy, args.data, args.out, log=log)
    print(report["table"])
    print(f"wrote {args.out / 'comparison.md'} [{report['seconds']:.0f} s]")
    return 0


def _cmd_sweep(args) -> int:
    import jax
    import numpy as np

    from orpr_jax.scenarios import make_lost_sales
    from orpr_jax.train.agents import make_mlp_agent
    from orpr_jax.train.rl import RLConfig, make_task
    from orpr_jax.train.sweep import sweep

    if args.scenario != "lost_sales":
        raise _BadInput(f"--scenario {args.scenario!r} is not allowed; use 'lost_sales'")
    grid: dict[str, list[float]] = {}
    for spec in args.grid or []:
        if "=" not in spec:
            raise _BadInput(f"--grid {spec!r}: expected FIELD=V1,V2,...")
        name, values = spec.split("=", 1)
        try:
            grid[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError as e:
            raise _BadInput(f"--grid {spec!r}: values must be numbers") from e
    if not grid:
        raise _BadInput("give at least one --grid FIELD=V1,V2,...")
    env, params = make_lost_sales(args.rows, lead_time=args.lead_time,
                                  lost_sales_cost=args.penalty)
    agent = make_mlp_agent(np.arange(0, 21), args.lead_time, 0, scale=5.0)
    cfg = RLConfig(algorithm=args.algorithm, num_updates=args.updates, num_steps=32,
                   num_epochs=4, num_minibatches=8, rloo_k=2, anneal_lr=True)
    rows = sweep(cfg, env, params, agent, grid, jax.random.key(args.seed), seeds=args.seeds,
                 mode=args.mode, num_samples=args.samples,
                 task=make_task(params, args.rows, reward_scale=5.0))
    names = sorted(grid)
    header = "| rank | " + " | ".join(names) + " | cost/row-day (mean ± std over seeds) |"
    lines = [header, "|" + "---|" * (len(names) + 2)]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | " + " | ".join(f"{r[n]:g}" for n in names)
                     + f" | {r['objective']:.4f} ± {r['objective_std']:.4f} |")
    text = "\n".join(lines)
    print(text)
    print(f"{len(rows)} settings x {args.seeds} seeds in one vmapped program: "
          f"{rows[0]['seconds']:.1f} s")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sweep.md").write_text(text + "\n")
        (args.out / "sweep.json").write_text(json.dumps(rows, indent=2))
    return 0


_BENCHES = ("bench_sim", "bench_labels", "bench_pretrain", "bench_train", "bench_scale")


def _cmd_bench(args) -> int:
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark scripts not found under {root} (run from a "
                                "source checkout)")
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in _BENCHES if (root / f"{n}.py").exists()
             and (not args.only or n in args.only.split(","))]
    summary = []
    for name in names:
        path = args.out / f"{name}.json"
        cmd = [sys.executable, str(root / f"{name}.py"), "--json", str(path)]
        if args.quick:
            cmd.append("--quick")
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, check=False).returncode
        summary.append((name, rc, time.perf_counter() - t0, path))
    print("\n| benchmark | status | seconds | key figures |\n|---|---|---|---|")
    for name, rc, sec, path in summary:
        figures = _key_figures(path) if rc == 0 and path.exists() else ""
        print(f"| {name} | {'ok' if rc == 0 else f'failed ({rc})'} | {sec:.0f} | {figures} |")
    return 0 if all(rc == 0 for _, rc, _, _ in summary) else 1


def _key_figures(path: Path) -> str:
    """A few headline numbers of a benchmark JSON (ratios and throughputs)."""
    obj = json.loads(path.read_text())
    found: list[str] = []

    def walk(x, prefix=""):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{prefix}{k}." if not isinstance(v, (int, float)) else f"{prefix}{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x[:2]):
                walk(v, f"{prefix}{i}.")
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and any(
                t in prefix for t in ("ratio", "per_s", "vs_")):
            found.append(f"{prefix}={x:.3g}")

    walk(obj)
    return "; ".join(found[:4])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orpr", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error before its one-line message")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole pipeline -> report")
    _add_run_options(run, "runs/orpr")
    run.add_argument("--resume", type=Path, default=None, help="finish the run in this folder")
    for stage, text in (("data", "load/generate the data and summarise it"),
                        ("label", "up to the OR labels"), ("pretrain", "up to pretraining"),
                        ("align", "up to alignment"),
                        ("evaluate", "everything, with evaluation and report")):
        p = sub.add_parser(stage, help=text)
        _add_run_options(p, "runs/orpr")
        p.add_argument("--resume", type=Path, default=None,
                       help="continue the run in this folder")
        if stage == "data":
            p.add_argument("--export", type=Path, default=None,
                           help="also write the data set in the documented format here")
        if stage == "evaluate":
            p.add_argument("--policy", type=Path, default=None,
                           help="a saved policy folder (orpr_jax.policies.save): evaluate it "
                                "on --data against the tuned incumbent and base-stock; "
                                "writes OUT/comparison.md")
    sw = sub.add_parser("sweep", help="vmapped hyperparameter sweep")
    sw.add_argument("--scenario", default="lost_sales")
    sw.add_argument("--algorithm", default="ppo", choices=("ppo", "rloo", "pathwise"))
    sw.add_argument("--grid", action="append", metavar="FIELD=V1,V2")
    sw.add_argument("--mode", default="grid", choices=("grid", "random"))
    sw.add_argument("--samples", type=int, default=8)
    sw.add_argument("--seeds", type=int, default=2)
    sw.add_argument("--updates", type=int, default=100)
    sw.add_argument("--rows", type=int, default=128)
    sw.add_argument("--lead-time", type=int, default=2)
    sw.add_argument("--penalty", type=float, default=9.0)
    sw.add_argument("--seed", type=int, default=0)
    sw.add_argument("--out", type=Path, default=None)
    _add_debug(sw)
    b = sub.add_parser("bench", help="run the benchmark scripts")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--only", default=None, help="comma-separated benchmark names")
    b.add_argument("--out", type=Path, default=Path("runs/bench"))
    _add_debug(b)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``orpr`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "evaluate" and args.policy is not None:
            return _cmd_evaluate(args)
        stage = "evaluate" if args.command == "run" else args.command
        return _cmd_stage(args, stage)
    except (_BadInput, ValueError) as e:
        error, message = e, str(e)
    except OSError as e:  # FileNotFoundError of a missing input has no errno
        error, message = e, str(e) if e.errno is None else _io_message(e, args)
    if args.debug:
        traceback.print_exception(error)
    print(f"orpr: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


#: errno -> what to do about a file that could not be written.
_IO_ADVICE = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space (the disk quota is full)",
    errno.EFBIG: "free space or raise the file size limit",
    errno.EACCES: "make the folder writable",
    errno.EPERM: "make the folder writable",
    errno.EROFS: "make the disk writable or move the run folder to a writable one",
}


def _io_message(error: OSError, args) -> str:
    """One line for a failed read or write: the path, the reason and what to do."""
    folder = getattr(args, "resume", None) or getattr(args, "out", None)
    path = error.filename if error.filename is not None else folder
    reason = error.strerror or str(error)
    advice = _IO_ADVICE.get(error.errno)
    what = "could not write" if advice else "I/O error on"
    resumable = args.command not in ("sweep", "bench") and folder is not None
    if resumable and (Path(folder) / "config.json").is_file():
        then = f"then orpr {args.command} --resume {folder}"
    else:
        then = "then run the command again"
    name = errno.errorcode.get(error.errno, str(error.errno))
    return f"{what} {path}: {reason} ({name}); {advice or 'fix the cause'}, {then}"


if __name__ == "__main__":
    raise SystemExit(main())
