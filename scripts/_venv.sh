# Sourced by demo.sh and test.sh: create .venv when absent and install the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# Reinstall only when pyproject.toml changed since the last install.
STAMP=.venv/.orpr_installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || ! .venv/bin/python -c "import orpr_jax" 2>/dev/null; then
  echo "[setup] installing orpr-jax[dev] into .venv"
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$STAMP"
fi
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
