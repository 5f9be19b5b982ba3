"""Foundation-model throughput: training samples/s and inference decisions/s per preset.

Usage::

    python benchmarks/bench_pretrain.py --json PATH [--batch 1024] [--quick]

JSON: ``{"device", "versions", "models": [{"preset", "params", "train_samples_per_s",
"infer_decisions_per_s", ...}]}``. A training step is the one ``orpr_jax.train.pretrain``
runs (cross-entropy, AdamW with warm-up cosine decay and clipping, dropout on); inference
is the forward pass in eval mode. Inputs are real: the features of the built-in data
set's observations. Each is jitted, warmed up, timed with ``block_until_ready``; compile
time is reported apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from _common import env_info, time_jax, write_json  # noqa: E402
from flax import nnx  # noqa: E402

import orpr_jax  # noqa: E402
from orpr_jax.policies.features import make_inputs  # noqa: E402
from orpr_jax.policies.foundation import (  # noqa: E402
    FoundationConfig,
    FoundationModel,
    count_params,
)
from orpr_jax.sim.dynamics import observe  # noqa: E402
from orpr_jax.train.pretrain import PretrainConfig, cross_entropy_loss, make_optimizer  # noqa: E402


def _inputs(batch: int):
    env, params = orpr_jax.make("jd_synthetic", period="train")
    _, state = env.reset(jax.random.key(0), params)
    obs = observe(env.config, params, state)
    idx = jnp.arange(batch) % env.num_rows
    obs = jax.tree.map(lambda x: x[idx], obs)
    return make_inputs(obs, 0.95, 14.0), env.config.history_length


def _time(fn, repeats):
    """``(steady_s, compile_s)`` of ``fn``: :func:`_common.time_jax` (first call apart,
    then the best of ``repeats`` calls, each blocked on)."""
    timing = time_jax(fn, repeats=repeats)
    return timing.steady_s, timing.compile_s


def bench_preset(preset: str, batch: int, repeats: int) -> dict:
    inputs, history = _inputs(batch)
    cfg = FoundationConfig.preset(preset, 30, history, 12)
    model = FoundationModel(cfg, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(PretrainConfig(batch_size=batch))
    opt_state = tx.init(params)
    y = jnp.arange(batch, dtype=jnp.int32) % cfg.num_bins

    @jax.jit
    def train_step(params, rest, opt_state):
        def loss_fn(p):
            m = nnx.merge(graphdef, p, rest, copy=True)
            logits, _ = m(inputs, deterministic=False)
            return cross_entropy_loss(logits, y, cfg.num_bins, 1.0), nnx.state(m, ...)

        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        # optax's bias correction mixes weak-typed scalars (see orpr_jax.train.pretrain).
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def infer(params, rest):
        logits, _ = nnx.merge(graphdef, params, rest, copy=True)(inputs, deterministic=True)
        return jnp.argmax(logits, axis=-1)

    train_s, train_compile = _time(lambda: train_step(params, rest, opt_state), repeats)
    infer_s, infer_compile = _time(lambda: infer(params, rest), repeats)
    return {
        "preset": preset, "params": count_params(model), "batch": batch,
        "tokens": cfg.num_tokens, "d_model": cfg.d_model, "layers": cfg.num_layers,
        "train_samples_per_s": batch / train_s, "train_step_s": train_s,
        "train_compile_s": train_compile,
        "infer_decisions_per_s": batch / infer_s, "infer_s": infer_s,
        "infer_compile_s": infer_compile,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batch 64, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 64, 2
    out = env_info()
    out["models"] = []
    for preset in ("default", "small"):
        r = bench_preset(preset, args.batch, args.repeats)
        out["models"].append(r)
        print(f"{preset}: {r['params']:,} params, train {r['train_samples_per_s']:,.0f} "
              f"samples/s, inference {r['infer_decisions_per_s']:,.0f} decisions/s "
              f"(batch {args.batch}; compile {r['train_compile_s']:.1f} s / "
              f"{r['infer_compile_s']:.1f} s)", flush=True)
    if args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
