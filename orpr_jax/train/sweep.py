"""Hyperparameter sweeps as one vmapped training program.

Every :class:`~orpr_jax.train.rl.HParams` field is traced, so a grid (or a random sample)
of learning rates, clip ranges, entropy and KL coefficients, reward weights, ... over one
or more seeds runs as ``jax.vmap(train)`` in a single compiled program. The objective of a
setting is the mean training cost per row-day over the last quarter of its updates
(lower is better).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np

from orpr_jax.sim.env import InventoryEnv
from orpr_jax.sim.types import SimParams
from orpr_jax.train.agents import Agent
from orpr_jax.train.rl import HParams, RLConfig, Task, make_train


def _settings(grid: dict[str, list[float]], mode: str, num_samples: int, seed: int):
    names = sorted(grid)
    if mode == "grid":
        return [dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(grid[n] for n in names))]
    rng = np.random.default_rng(seed)
    return [{n: float(rng.choice(grid[n])) for n in names} for _ in range(num_samples)]


def sweep(
    config: RLConfig,
    env: InventoryEnv,
    sim_params: SimParams,
    agent: Agent,
    grid: dict[str, list[float]],
    key: jax.Array,
    *,
    base: dict[str, float] | None = None,
    seeds: int = 1,
    mode: str = "grid",
    num_samples: int = 8,
    task: Task | None = None,
) -> list[dict]:
    """Trains every setting of ``grid`` (x ``seeds``) in one vmapped program.

    Args:
        config: static training settings (shared by every setting).
        env, sim_params, agent, task: as in :func:`~orpr_jax.train.rl.make_train`.
        grid: HParams field -> values to try.
        key: PRNG key; seed ``s`` of every setting uses ``split(key, seeds)[s]``.
        base: HParams values shared by every setting.
        seeds: training seeds per setting.
        mode: ``"grid"`` (every combination) or ``"random"`` (``num_samples`` draws).
        num_samples: settings drawn in random mode.

    Returns:
        One dict per setting (its values, ``objective`` mean and std over seeds, ``seconds``
        of the whole sweep), sorted by objective (best first).

    Raises:
        ValueError: for an unknown field, an empty value list, a bad value or mode.
    """
    fields = {f.name for f in dataclasses.fields(HParams)}
    for name, values in grid.items():
        if name not in fields:
            raise ValueError(f"grid field {name!r} is not an HParams field; use one of "
                             f"{sorted(fields)}")
        if len(values) == 0:
            raise ValueError(f"grid field {name!r} has no values")
    if mode not in ("grid", "random"):
        raise ValueError(f"mode={mode!r} is not allowed; use 'grid' or 'random'")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not allowed; expected an integer >= 1")
    settings = _settings(grid, mode, num_samples, int(jax.random.randint(key, (), 0, 2**30)))
    hps = [HParams.create(**{**(base or {}), **s}) for s in settings]  # validates each value
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *hps)
    n = len(settings)
    hp_batch = jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), stacked)
    keys = jnp.tile(jax.random.split(key, seeds), n)  # setting-major, seed-minor
    train = make_train(config, env, sim_params, agent, task)
    t0 = time.perf_counter()
    _, metrics = jax.block_until_ready(jax.jit(jax.vmap(train))(keys, hp_batch))
    seconds = time.perf_counter() - t0
    cost = np.asarray(metrics["cost_per_row_day"]).reshape(n, seeds, -1)
    tail = max(1, cost.shape[-1] // 4)
    objective = cost[:, :, -tail:].mean(axis=-1)  # [n, seeds]
    rows = [{**s, "objective": float(objective[i].mean()),
             "objective_std": float(objective[i].std()), "seeds": seeds}
            for i, s in enumerate(settings)]
    rows.sort(key=lambda r: r["objective"])
    for r in rows:
        r["seconds"] = seconds
    return rows
