#!/usr/bin/env bash
# Records the GPU figures (run by hand on a GPU machine with the project's dependencies):
# training throughput (bench_train) and an `orpr run` at a GPU-sized configuration.
# Usage: OUT=dir bash scripts/gpu_record.sh
set -uo pipefail
OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT"
nvidia-smi -L || true
python3 -c "import jax; print(jax.devices())"
timeout "${BENCH_TIMEOUT:-120}" python3 benchmarks/bench_train.py --quick --seeds 8 \
  --json "$OUT/bench_train_gpu.json" > "$OUT/bench_train.log" 2>&1 || echo "bench_train rc=$?"
tail -20 "$OUT/bench_train.log"
timeout "${RUN_TIMEOUT:-420}" python3 -m orpr_jax run --out "$OUT/run" --quiet \
  --set num_skus=1000 --set pretrain_steps=3000 --set pretrain_batch=1024 \
  --set num_updates=150 --set max_train_rows=2048 > "$OUT/run.log" 2>&1 || echo "run rc=$?"
tail -40 "$OUT/run.log"
