#!/usr/bin/env bash
# Installs XLA's CPU PJRT plugin (the trainer's `backend: xla` on the CPU) into .pjrt/ in the
# repository root, from PyPI, pinned by version and hash. The wheel is lammps-jax-pjrt-cpu
# 0.11.2: OpenXLA's //xla/pjrt/c:pjrt_c_api_cpu_plugin.so built from the XLA commit of jaxlib
# 0.11.2, Apache-2.0, PJRT C API 0.115 (docs/trainer.md says why this one). --no-deps: it
# declares jax, which the plugin does not need. Skipped when the plugin is already there;
# PJRT_CPU_SKIP=1 skips it altogether (the trainer then falls back to SimpleGo).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.pjrt
plugin="$dest/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so"
[ "${PJRT_CPU_SKIP:-}" = 1 ] && exit 0
[ -f "$plugin" ] && exit 0
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
req=$(mktemp)
trap 'rm -f "$req"' EXIT
cat >"$req" <<'REQ'
lammps-jax-pjrt-cpu==0.11.2 \
    --hash=sha256:1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1
REQ
echo "installing the XLA CPU PJRT plugin (lammps-jax-pjrt-cpu 0.11.2, 63 MB) into $dest/"
"$python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --root-user-action=ignore --require-hashes --target "$dest" -r "$req"
test -f "$plugin"
