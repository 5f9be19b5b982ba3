#!/usr/bin/env bash
# Set up .venv (if absent) and run the whole test suite on the CPU.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q -n 2 --durations=10 "$@"
