"""``orpr evaluate --policy PATH --data DIR``: a saved policy on a user's data folder,
against the tuned incumbent rule and base-stock.

The data folder (``docs/data_format.md``) is split in time as the pipeline does
(:func:`~orpr_jax.pipeline.stages.periods`: the first half after the history window is the
tuning period, the second half the test period). The incumbent rule (one safety-days
value) and base-stock (one level per row) are tuned on the tuning period
(:mod:`orpr_jax.evaluation.baselines`); then all three policies run on the test period
over every row with the same demand and lead-time draws, and the comparison table is
written to ``out/comparison.md`` (and ``comparison.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax

from orpr_jax.data.dataset import env_from_data
from orpr_jax.evaluation.baselines import evaluated, tune_base_stock, tune_incumbent
from orpr_jax.evaluation.tables import markdown_table
from orpr_jax.pipeline.stages import load_data_dir, periods
from orpr_jax.policies import BaseStock
from orpr_jax.policies.saved import load


def evaluate_saved(policy_path: str | Path, data_dir: str | Path, out: str | Path | None = None,
                   *, seed: int = 0, warmup_days: int = 28, log=print) -> dict:
    """Runs the saved policy in ``policy_path`` on the data folder ``data_dir``.

    Args:
        policy_path: a folder written by :func:`orpr_jax.policies.save`.
        data_dir: a data folder (``sales.*``, ``rows.*``, optionally ``capacity.*``).
        out: folder for ``comparison.md`` / ``comparison.json`` (not written if None).
        seed: PRNG seed of the tuning and evaluation draws.
        warmup_days: leading days of each period excluded from the metrics (>= 0).
        log: progress messages.

    Returns:
        ``{"table": markdown, "results": [{"policy", "metrics"}...], "train", "test",
        "rows", "seconds"}``.

    Raises:
        FileNotFoundError: a missing policy or data folder.
        ValueError: a policy whose features or bins do not fit the data (naming the
            mismatch), malformed data, or a bad ``warmup_days``.
    """
    if isinstance(warmup_days, bool) or not isinstance(warmup_days, int) or warmup_days < 0:
        raise ValueError(f"warmup_days={warmup_days!r} is not allowed; expected an integer >= 0")
    t0 = time.perf_counter()
    policy = load(policy_path)
    data = load_data_dir(data_dir)
    train, test = periods(data)
    if warmup_days >= min(train[1], test[1]):
        raise ValueError(f"warmup_days={warmup_days} is not allowed; expected an integer in "
                         f"[0, {min(train[1], test[1])}) (the shorter period's days)")
    history = int(policy.signature.get("history_length") or 28)
    env_tr, p_tr = env_from_data(data, start=train[0], num_days=train[1],
                                 history_length=history)
    env_te, p_te = env_from_data(data, start=test[0], num_days=test[1],
                                 history_length=history)
    policy.check_env(env_te)
    tune_key, eval_key = jax.random.split(jax.random.key(seed))
    log(f"data: {data.num_rows} rows, tuning days {train[0]}..{sum(train) - 1}, test days "
        f"{test[0]}..{sum(test) - 1}; tuning the incumbent and base-stock ...")
    incumbent = tune_incumbent(env_tr, p_tr, train, tune_key, warmup_days,
                               window=min(28, history))
    level = tune_base_stock(data, env_tr, p_tr, train, tune_key, warmup_days)
    meta = policy.meta
    name = f"saved policy ({meta['net']}, {meta['action']}, {meta['mode']})"
    results = [
        evaluated(f"incumbent rule (L + R + {float(incumbent.safety_days):g} days)", env_te,
                  p_te, incumbent, eval_key, test[1], warmup_days),
        evaluated("base-stock (tuned per row)", env_te, p_te, BaseStock(level), eval_key,
                  test[1], warmup_days),
        evaluated(name, env_te, p_te, policy, eval_key, test[1], warmup_days),
    ]
    table = markdown_table([(r.name, r.metrics) for r in results])
    report = {"policy": str(policy_path), "data": str(data_dir), "rows": data.num_rows,
              "train": list(train), "test": list(test), "warmup_days": warmup_days,
              "seed": seed, "table": table,
              "results": [{"policy": r.name, "metrics": r.metrics} for r in results],
              "seconds": time.perf_counter() - t0}
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "comparison.md").write_text(
            f"# Saved policy on {data_dir}\n\nPolicy: `{policy_path}`; {data.num_rows} rows, "
            f"test days {test[0]}..{sum(test) - 1} (tuning days {train[0]}..{sum(train) - 1}), "
            f"{warmup_days} warm-up days excluded.\n\n{table}\n")
        (folder / "comparison.json").write_text(json.dumps(report, indent=1, default=float)
                                                + "\n")
    return report
