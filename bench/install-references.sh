#!/usr/bin/env bash
# Installs bench/compare's references into the given Python (default python3): PyTorch and JAX
# from PyPI (CPU). PyPI's torch for Linux pulls its CUDA libraries too (about 6 GB installed,
# about 6 minutes here); it runs on the CPU all the same. Not part of tools/install-deps.sh:
# the tests never need them.
set -euo pipefail
PY=${1:-python3}
if "$PY" -c "import torch, jax, numpy" 2>/dev/null; then
  exit 0
fi
echo "install-references: pip install torch jax jaxlib numpy into $("$PY" -c 'import sys; print(sys.executable)')"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "install-references: $PY has no pip; installing Debian's python3-pip"
  apt-get install -y -qq python3-pip >/dev/null
fi
if ! "$PY" -m pip install --quiet torch jax jaxlib numpy; then
  # Debian's own Python refuses pip installs into the system (PEP 668); PyTorch 1.13 from
  # Debian is the fallback the issue names (no JAX package in Debian).
  echo "install-references: pip failed; falling back to Debian's python3-torch (PyTorch 1.13, no JAX)"
  apt-get install -y -qq python3-torch python3-numpy >/dev/null
fi
"$PY" -c "import torch; print('install-references: torch', torch.__version__)"
"$PY" -c "import jax; print('install-references: jax', jax.__version__)" || echo "install-references: no JAX"
