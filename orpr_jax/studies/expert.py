"""Expert guidance in promotion windows: the aligned policy with and without the expert
term, measured inside and outside promotion windows on held-out rows.

Run ``python -m orpr_jax.studies.expert --json PATH``.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from orpr_jax.data.dataset import InventoryData, env_from_data
from orpr_jax.pipeline.align import alignment_task
from orpr_jax.pipeline.config import AlignSettings
from orpr_jax.train.agents import make_foundation_agent
from orpr_jax.train.loop import fit
from orpr_jax.train.pretrain import PretrainConfig
from orpr_jax.train.rl import HParams, RLConfig


def expert_guidance_effect(
    data: InventoryData,
    train: tuple[int, int],
    test: tuple[int, int],
    key: jax.Array,
    run_dir: str | Path,
    *,
    weights: tuple[float, ...] = (0.0, 1.0),
    algorithm: str = "pathwise",
    settings: AlignSettings | None = None,
    preset: str = "small",
    pretrain_config: PretrainConfig | None = None,
    warmup_days: int = 28,
    progress: bool = False,
) -> dict[float, dict]:
    """Aligns the pretrained model once per expert weight and measures, on the held-out
    rows over ``test``, the in-stock and fill rates inside and outside promotion windows.

    Returns:
        ``{weight: {"promo": metrics, "regular": metrics, "total_cost": float}}``.
    """
    from orpr_jax.pipeline.stages import pretrain_stage
    from orpr_jax.evaluation.report import promotion_window_metrics
    from orpr_jax.sim.rollout import rollout

    s = settings or AlignSettings()
    run_dir = Path(run_dir)
    stage = pretrain_stage(data, train, key, run_dir, preset=preset,
                           pretrain_config=pretrain_config, resume=True, progress=progress)
    lc = stage.label_config
    values = np.asarray(lc.candidates, np.float32)
    seen = stage.seen[: s.max_train_rows] if s.max_train_rows else stage.seen
    d_seen = data.select_rows(seen)
    env_tr, p_tr = env_from_data(d_seen, start=train[0], num_days=train[1])
    task = alignment_task(d_seen, p_tr, values, train, s.safety_days_expert)
    d_held = data.select_rows(stage.held)
    env_te, p_te = env_from_data(d_held, start=test[0], num_days=test[1])
    promo = d_held.promo[test[0]: test[0] + test[1]]
    pretrained = make_foundation_agent(stage.result.model, values, alpha=lc.alpha,
                                       window=lc.window)
    out = {}
    for w in weights:
        cfg = RLConfig(algorithm=algorithm, num_updates=s.num_updates, num_steps=s.num_steps,
                       num_epochs=s.num_epochs, num_minibatches=s.num_minibatches,
                       rloo_k=s.rloo_k, num_groups=int(np.max(np.asarray(task.group))) + 1)
        hp = HParams.create(learning_rate=s.learning_rate, kl_coef=s.kl_coef,
                            expert_weight=w, lagrange_lr=0.0)
        res = fit(cfg, env_tr, p_tr, pretrained, hp, jax.random.fold_in(key, 7),
                  run_dir / f"expert_{w:g}", task=task, chunk=max(1, s.num_updates // 4),
                  resume=True, progress=progress)
        _, outcomes, _ = rollout(env_te, p_te, res.agent, jax.random.key(1), test[1])
        outcomes = jax.tree.map(np.asarray, outcomes)
        windows = promotion_window_metrics(outcomes, promo, warmup_days=warmup_days)
        out[w] = {**windows, "total_cost": float(outcomes.cost[warmup_days:].sum())}
    return out


def main(argv: list[str] | None = None) -> int:
    """Promotion-window behaviour of aligned policies with and without expert guidance."""
    import argparse
    import json

    from orpr_jax.scenarios import jd_period, jd_synthetic_data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--skus", type=int, default=150)
    parser.add_argument("--updates", type=int, default=24)
    parser.add_argument("--weights", default="0,1")
    parser.add_argument("--out", type=Path, default=Path("runs/expert"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    data = jd_synthetic_data(seed=0, num_skus=args.skus)
    train, test = jd_period(data, "train"), jd_period(data, "test")
    pc = PretrainConfig(total_steps=800, eval_every=100, patience=8, ordinal_sigma=1.0)
    res = expert_guidance_effect(
        data, train, test, jax.random.key(0), args.out,
        weights=tuple(float(w) for w in args.weights.split(",")),
        settings=AlignSettings(num_updates=args.updates, max_train_rows=256),
        pretrain_config=pc)
    print("| expert weight | in-stock (promotion windows) | fill (promotion windows) | "
          "in-stock (other days) | fill (other days) | total cost |")
    print("|---:|---:|---:|---:|---:|---:|")
    for w, r in res.items():
        print(f"| {w:g} | {r['promo']['in_stock_rate']:.2%} | {r['promo']['fill_rate']:.2%} | "
              f"{r['regular']['in_stock_rate']:.2%} | {r['regular']['fill_rate']:.2%} | "
              f"{r['total_cost']:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in res.items()}, indent=2,
                                        default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
