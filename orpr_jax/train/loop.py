"""Host-driven training: jitted chunks of updates with progress, evaluation and checkpoints.

:func:`fit` runs the update of :func:`orpr_jax.train.rl.make_update` in jitted chunks of
``chunk`` updates (one ``lax.scan`` each), so a long run shows progress, logs every
update's metrics to ``run_dir/metrics.jsonl``, optionally evaluates the greedy policy, checkpoints the whole
training state (parameters, optimiser, simulator state, Lagrange multipliers, PRNG key)
with orbax after every chunk, and resumes from the last checkpoint. A non-finite loss
stops the run before anything is written for that chunk, so the last checkpoint stays the
last good one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import struct
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimParams
from orpr_jax.train import checkpoint as ckpt
from orpr_jax.train.agents import Agent
from orpr_jax.train.pretrain import NonFiniteLossError
from orpr_jax.train.rl import HParams, RLConfig, Runner, Task, make_update, trained_agent

_LOSS_KEYS = ("policy_loss", "value_loss", "loss", "reward")


@struct.dataclass
class FitResult:
    """Outcome of :func:`fit`: the trained agent, the final runner and the metric history."""

    agent: Agent
    runner: Runner
    history: list = struct.field(pytree_node=False)
    seconds: float = struct.field(pytree_node=False)


def agent_signature(agent: Agent, env: InventoryEnv, config: RLConfig) -> dict[str, Any]:
    """What a checkpoint must match: parameter shapes, bins, features and the algorithm."""
    model_config = {
        "net": agent.net,
        "action": agent.action,
        "values": [float(v) for v in np.asarray(agent.values)],
        "window": agent.window,
        "num_rows": env.num_rows,
        "max_lead_time": env.config.max_lead_time,
        "history_length": env.config.history_length,
        "algorithm": config.algorithm,
        "num_groups": config.num_groups,
        "rloo_k": config.rloo_k if config.algorithm == "rloo" else None,
        # The critic's output scale (raw or standardised returns) and the Runner layout.
        "normalize_values": config.normalize_values if config.algorithm == "ppo" else None,
        "runner_format": 3,  # 3: separate actor and critic optimiser states
    }
    return ckpt.model_signature(agent.params, model_config)


def fit(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    hparams: HParams,
    key: jax.Array,
    run_dir: str | Path | None = None,
    *,
    task: Task | None = None,
    chunk: int = 10,
    evaluate_fn: Callable[[Agent], dict] | None = None,
    resume: bool = False,
    data_hash: str = "",
    progress: bool = True,
    stop_at_update: int | None = None,
) -> FitResult:
    """Trains ``agent`` for ``config.num_updates`` updates in jitted chunks.

    Args:
        config: static training settings.
        env: the training environment.
        sim_params: its parameters.
        agent: the initial agent (its parameters are also the KL reference).
        hparams: traced hyperparameters.
        key: PRNG key of the run.
        run_dir: folder for ``checkpoints/`` and ``metrics.jsonl`` (None: nothing written).
        task: reward scale, constraint groups, expert bins.
        chunk: updates per jitted call (and per checkpoint).
        evaluate_fn: called with the current agent after each chunk; its floats are logged.
        resume: continue from the latest checkpoint in ``run_dir``.
        data_hash: identifies the training data; a checkpoint of other data is not resumed.
        progress: show a progress bar.
        stop_at_update: stop (as if interrupted) after this many updates, with a
            checkpoint written; ``resume=True`` continues the run.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: for a bad ``chunk``, an existing run without ``resume``, or a
            checkpoint whose bins, features, parameters or data do not match.
        NonFiniteLossError: when a loss or reward turns NaN/inf.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk={chunk!r} is not allowed; expected an integer >= 1")
    t0 = time.perf_counter()
    init, update = make_update(config, env, sim_params, agent, task)
    runner = jax.jit(init)(key, hparams)
    run_dir = None if run_dir is None else Path(run_dir)
    expected = {"data_hash": data_hash, **agent_signature(agent, env, config)}
    history: list[dict[str, float]] = []
    if run_dir is not None:
        existing = ckpt.latest_step(run_dir)
        if existing is not None and not resume:
            raise ValueError(f"{run_dir} already holds checkpoints (latest update {existing}); "
                             "pass resume=True or use a fresh run_dir")
        if existing is not None:
            arrays, _ = ckpt.restore_checkpoint(run_dir, {"runner": runner}, expected)
            runner = arrays["runner"]
            lines = (run_dir / "metrics.jsonl").read_text().splitlines() if (
                run_dir / "metrics.jsonl").exists() else []
            history = [e for e in map(json.loads, filter(None, lines))
                       if e["update"] <= int(runner.update)]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))

    @functools.partial(jax.jit, static_argnames="n")
    def run_chunk(runner: Runner, hp: HParams, n: int):
        return jax.lax.scan(lambda r, _: update(r, hp), runner, None, length=n)

    done = int(runner.update)
    end = config.num_updates if stop_at_update is None else min(stop_at_update,
                                                                config.num_updates)
    columns = (TextColumn(f"align ({config.algorithm})"), BarColumn(), MofNCompleteColumn(),
               TextColumn("cost/row-day {task.fields[cost]:.3f}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task_id = bar.add_task("align", total=config.num_updates, completed=done, cost=0.0)
        while done < end:
            n = min(chunk, end - done)
            new_runner, metrics = run_chunk(runner, hparams, n)
            metrics = jax.tree.map(np.asarray, metrics)
            for name in _LOSS_KEYS:
                if name in metrics and not np.all(np.isfinite(metrics[name])):
                    last = ckpt.latest_step(run_dir) if run_dir is not None else None
                    raise NonFiniteLossError(
                        f"{name} is not finite in updates {done + 1}..{done + n}; stopped. "
                        f"The last good checkpoint (update {last}) in {run_dir} is untouched.")
            runner = new_runner
            first, done = done, int(runner.update)
            # Every update of the chunk is logged (the scan stacked their metrics).
            entries = [{"update": first + i + 1, **{k: float(v[i]) for k, v in metrics.items()},
                        "seconds": time.perf_counter() - t0} for i in range(n)]
            entry = entries[-1]
            if evaluate_fn is not None:
                entry.update({f"eval_{k}": float(v) for k, v in
                              evaluate_fn(trained_agent(agent, runner, config)).items()
                              if np.ndim(v) == 0})
            history.extend(entries)
            if run_dir is not None:
                with (run_dir / "metrics.jsonl").open("a") as f:
                    f.write("".join(json.dumps(e) + "\n" for e in entries))
                ckpt.save_checkpoint(run_dir, done, {"runner": runner},
                                     {**expected, "config": dataclasses.asdict(config)})
            bar.update(task_id, completed=done, cost=entry.get("cost_per_row_day", math.nan))
    return FitResult(agent=trained_agent(agent, runner, config), runner=runner,
                     history=history, seconds=time.perf_counter() - t0)
