#!/usr/bin/env bash
# Set up .venv (if absent) and run the main job on the built-in jd_synthetic data.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec .venv/bin/python -m orpr_jax.demo "$@"
