"""Shared helpers for the benchmark scripts in ``benchmarks/`` (not a test module).

* :func:`env_info`: device, library versions and the environment variables that change
  timings, for the JSON header of every benchmark.
* :func:`time_jax` / :func:`time_host`: wall-clock timing. ``time_jax`` reports the first
  call (trace + compile + run) apart from the steady state (best of ``repeats`` calls),
  blocking on every output with :func:`jax.block_until_ready`.
* :func:`time_interleaved`: several contenders timed in alternating rounds (A, B, A, B,
  ...), so a machine whose load changes during the run biases none of them; the fair way
  to compute a speed ratio on a shared machine. Every timing also records the process CPU
  time, which shows multi-threading (CPU > wall) and contention (wall > CPU / threads).
* :func:`time_rounds` / :func:`time_pair`: alternating rounds of calls that block on
  their own outputs, stopped after ``repeats`` rounds or once a time budget is spent
  (``time_pair`` makes and times each contender's first call apart first).
* :func:`run_isolated`: runs a function in a fresh ``spawn``-ed child process, so peak
  memory (``ru_maxrss``) and JAX caches of one benchmark size do not leak into another.
* :func:`peak_rss_mb` / :func:`current_rss_mb`: memory of this process.
* :func:`write_json`: atomic JSON write (NumPy / JAX scalars converted, NaN/inf as null);
  :func:`save_report` writes a report there when asked and prints where.
* :func:`fmt`: a number for a table, ``"-"`` for ``None``; :func:`parse_rows`: ``--rows``.

Benchmarks are standalone scripts: nothing here is collected by pytest (no ``test_``
names, and ``benchmarks/`` is outside ``testpaths``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Environment variables recorded with every result because they change timings.
_ENV_VARS = (
    "JAX_PLATFORMS",
    "JAX_ENABLE_X64",
    "JAX_COMPILATION_CACHE_DIR",
    "XLA_FLAGS",
    "OPENBLAS_CORETYPE",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def env_info(dtype: str = "float32") -> dict[str, Any]:
    """Device, versions and timing-relevant environment of this process.

    Returns:
        ``{"device", "platform", "device_count", "versions", "dtype", "cpu_count",
        "machine", "env"}``; ``device`` is ``jax.devices()[0].device_kind`` (for a CPU,
        ``"cpu"``) and ``versions`` has ``jax``, ``jaxlib``, ``numpy`` and ``python``.
    """
    import jax
    import jaxlib
    import numpy as np

    dev = jax.devices()[0]
    return {
        "device": f"{dev.device_kind} / {dev.platform}",
        "platform": dev.platform,
        "device_count": jax.device_count(),
        "versions": {
            "jax": jax.__version__,
            "jaxlib": getattr(jaxlib, "__version__", "unknown"),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "dtype": dtype,
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()} ({platform.processor() or '?'})",
        "env": {k: os.environ[k] for k in _ENV_VARS if k in os.environ},
        "load_avg": load_avg(),
    }


def load_avg() -> list[float] | None:
    """1, 5 and 15 minute load averages (``None`` where unsupported)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


@dataclasses.dataclass
class Timing:
    """Wall-clock seconds of one benchmarked call.

    Attributes:
        first_s: the first call (for JAX: trace + compile + run; ``None`` for host code
            timed without a separate warm-up).
        steady_s: best of the steady-state calls.
        compile_s: ``first_s - steady_s`` (JAX only; ``None`` otherwise).
        runs_s: every steady-state call.
        cpu_runs_s: process CPU time (all threads) of every steady-state call.
        result: the output of the last call (already blocked on).
    """

    first_s: float | None
    steady_s: float
    compile_s: float | None
    runs_s: list[float]
    cpu_runs_s: list[float] = dataclasses.field(default_factory=list)
    result: Any = dataclasses.field(default=None, repr=False)

    @property
    def cpu_s(self) -> float | None:
        """CPU time of the fastest (wall-clock) steady call."""
        if not self.cpu_runs_s:
            return None
        return self.cpu_runs_s[self.runs_s.index(self.steady_s)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_s": self.first_s,
            "steady_s": self.steady_s,
            "compile_s": self.compile_s,
            "runs_s": self.runs_s,
            "cpu_s": self.cpu_s,
            "cpu_runs_s": self.cpu_runs_s,
        }


def _timed_call(fn: Callable[[], Any], block: bool) -> tuple[float, float, Any]:
    """``(wall_s, cpu_s, output)`` of one call; ``block`` waits on JAX outputs."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    if block:
        import jax

        out = jax.block_until_ready(out)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, out


@dataclasses.dataclass
class Contender:
    """One entry of :func:`time_interleaved`.

    Attributes:
        fn: zero-argument callable (close over the arguments; make it draw fresh random
            numbers itself if every call must).
        repeats: steady-state calls (>= 1).
        jax: the output is waited for with ``jax.block_until_ready`` and a first call
            (trace + compile + run) is made and timed apart before the rounds.
    """

    fn: Callable[[], Any]
    repeats: int
    jax: bool = False


def time_interleaved(
    contenders: dict[str, Contender],
    after_first_run: Callable[[str], Any] | None = None,
) -> dict[str, Timing]:
    """Times several contenders in alternating rounds.

    First every JAX contender's first call (compile) is made, in order; then rounds
    ``A, B, ..., A, B, ...`` until each has made its ``repeats`` steady calls. Best-of
    statistics from alternating rounds see the same machine conditions, so their ratio is
    fair even when other processes come and go.

    Args:
        contenders: name -> :class:`Contender` (dict order is the order within a round).
        after_first_run: called with the name after each contender's first steady call
            (e.g. to read the peak memory before the next contender runs).

    Returns:
        name -> :class:`Timing` (``first_s`` / ``compile_s`` are ``None`` for host code).
    """
    for name, c in contenders.items():
        if isinstance(c.repeats, bool) or not isinstance(c.repeats, int) or c.repeats < 1:
            raise ValueError(
                f"repeats={c.repeats!r} of {name!r} is not allowed; expected an integer >= 1"
            )
    first: dict[str, float | None] = {name: None for name in contenders}
    outs: dict[str, Any] = {}
    for name, c in contenders.items():
        if c.jax:
            first[name], _, outs[name] = _timed_call(c.fn, True)
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(max(c.repeats for c in contenders.values())):
        for name, c in contenders.items():
            if i >= c.repeats:
                continue
            wall, cpu, outs[name] = _timed_call(c.fn, c.jax)
            runs[name].append(wall)
            cpus[name].append(cpu)
            if i == 0 and after_first_run is not None:
                after_first_run(name)
    result = {}
    for name in contenders:
        steady = min(runs[name])
        f = first[name]
        compile_s = None if f is None else max(f - steady, 0.0)
        result[name] = Timing(f, steady, compile_s, runs[name], cpus[name], outs[name])
    return result


def time_jax(fn: Callable[..., Any], *args, repeats: int = 3, **kwargs) -> Timing:
    """Times a JAX call: first call apart, then the best of ``repeats`` steady calls.

    Every output pytree is waited for with :func:`jax.block_until_ready`, so
    asynchronous dispatch does not hide device time.

    Args:
        fn: the function (jitted or calling jitted code).
        *args, **kwargs: its arguments (the same for every call, so a cached compiled
            program is reused after the first call).
        repeats: steady-state calls after the first (>= 1).

    Returns:
        A :class:`Timing`; ``compile_s = first_s - steady_s`` (clamped at 0).
    """
    contender = Contender(lambda: fn(*args, **kwargs), repeats, jax=True)
    return time_interleaved({"jax": contender})["jax"]


def time_host(
    fn: Callable[..., Any], *args, repeats: int = 2, warmup: int = 0, **kwargs
) -> Timing:
    """Times a host (NumPy / Python) call: best of ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn(*args, **kwargs)
    contender = Contender(lambda: fn(*args, **kwargs), repeats, jax=False)
    return time_interleaved({"host": contender})["host"]


def time_rounds(fns: dict[str, Any], repeats: int, budget_s: float) -> dict:
    """Alternating steady rounds (one call of each of ``fns``, in order, each blocked on)
    until ``repeats`` rounds are done or, after the first, once the rounds so far have
    taken ``budget_s`` seconds (the foundation model at 4096 rows on 2 CPU cores makes
    one). Returns name -> :class:`Timing` (``steady_s`` = best call)."""
    import jax

    # Each fn blocks on its own output, so the contenders are timed as host code.
    contenders = {name: Contender(lambda fn=fn: jax.block_until_ready(fn()), 1)
                  for name, fn in fns.items()}
    timings = time_interleaved(contenders)
    spent = sum(t.steady_s for t in timings.values())
    for _ in range(repeats - 1):
        if spent >= budget_s:
            break
        more = time_interleaved(contenders)
        for name, t in timings.items():
            t.runs_s += more[name].runs_s
            t.cpu_runs_s += more[name].cpu_runs_s
            t.result = more[name].result
            spent += more[name].steady_s
    for t in timings.values():
        t.steady_s = min(t.runs_s)
    return timings


def time_pair(fns: dict[str, Any], repeats: int, budget_s: float) -> tuple[dict, dict]:
    """First call of each contender, then :func:`time_rounds`.

    Returns ``(first, timings)``: ``first[name] = (wall_s, output)`` of the first call
    (trace + compile + run) and ``timings[name]`` the :class:`Timing` of the steady
    calls (``compile_s = first - steady``).
    """
    import jax

    first = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        first[name] = (time.perf_counter() - t0, out)
    timings = time_rounds(fns, repeats, budget_s)
    for name, t in timings.items():
        t.first_s = first[name][0]
        t.compile_s = max(t.first_s - t.steady_s, 0.0)
    return first, timings


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> float | None:
    """Current resident set size in MiB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def run_isolated(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Runs ``fn(*args, **kwargs)`` in a fresh ``spawn``-ed process and returns its result.

    ``fn`` must be importable by name (a module-level function of an importable module
    or of the running script) and its arguments and result picklable. The child inherits
    the environment (``JAX_PLATFORMS``, ``XLA_FLAGS``, ...), so measure memory inside
    ``fn`` with :func:`peak_rss_mb`: the child starts from an empty heap, so its
    ``ru_maxrss`` covers only this call (plus interpreter and imports).

    Raises:
        Whatever ``fn`` raised in the child.
    """
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, (str, bool)) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj
    if hasattr(obj, "tolist"):  # NumPy / JAX arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Writes ``data`` as indented JSON (atomically: a ``.tmp`` file, then a rename).

    NumPy / JAX values become Python numbers; NaN and infinities become ``null``.
    """
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def row_days_per_s(rows: int, days: int, seconds: float | None) -> float | None:
    """Throughput in row-days per second (``None`` when not measured)."""
    if seconds is None or seconds <= 0:
        return None
    return rows * days / seconds


def save_report(path: str | os.PathLike | None, report: dict[str, Any], tag: str) -> None:
    """Writes ``report`` with :func:`write_json` when ``path`` is given and prints
    ``[tag] wrote PATH (wall_s s)``; does nothing when ``path`` is ``None``."""
    if path:
        written = write_json(path, report)
        print(f"[{tag}] wrote {written} ({report['wall_s']:.1f} s)")


def fmt(x, spec: str) -> str:
    """``format(x, spec)``, or ``"-"`` for ``None`` (a value that was not measured)."""
    return "-" if x is None else format(x, spec)


__all__ = [
    "Contender",
    "Timing",
    "current_rss_mb",
    "env_info",
    "fmt",
    "peak_rss_mb",
    "row_days_per_s",
    "run_isolated",
    "load_avg",
    "parse_rows",
    "save_report",
    "time_host",
    "time_interleaved",
    "time_jax",
    "time_pair",
    "time_rounds",
    "write_json",
]


def parse_rows(text: str) -> list[int]:
    """``--rows`` values: comma-separated integers >= 1 (``1e5`` allowed), for argparse."""
    try:
        rows = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows={text!r}: expected integers, e.g. 256,4096")
    if not rows or any(r < 1 for r in rows):
        raise argparse.ArgumentTypeError(f"--rows={text!r}: expected integers >= 1")
    return rows
