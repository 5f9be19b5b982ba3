#!/usr/bin/env bash
# Set up .venv (if absent) and run the main job, `orpr run`, on the built-in jd_synthetic data:
# OR labels -> pretraining -> alignment -> evaluation -> report in runs/orpr/report.md.
# A second call finishes (or re-reports) the same run folder instead of starting over.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
OUT="${ORPR_OUT:-runs/orpr}"
if [ -f "$OUT/config.json" ]; then
  exec .venv/bin/python -m orpr_jax run --resume "$OUT" "$@"
fi
exec .venv/bin/python -m orpr_jax run --out "$OUT" "$@"
