#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, if they are missing:
# gcc and libc6-dev (cgo: without a C compiler Go silently builds without libjpeg-turbo, and
# -race fails), libturbojpeg0-dev (the fast JPEG decoder, cgo), libjpeg62-turbo-dev (its
# jconfig.h, which libturbojpeg0-dev does not pull in) and dataset-fashion-mnist (the trainer's
# learning test). Uses sudo when not run as root.
# Then makes the Python virtual environment .venv/ (git-ignored) with the pinned packages of
# python/requirements-dev.txt and python/constraints.txt and the client installed editable;
# PYTHON picks the interpreter (default python3), SKIP_VENV=1 skips this part.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/pjrt-cpu.sh # XLA's CPU PJRT plugin into .pjrt/ (the trainer's backend)
need=()
for p in gcc libc6-dev libturbojpeg0-dev libjpeg62-turbo-dev dataset-fashion-mnist; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# versitygw, the S3 server of the remote-source tests, into .tools/bin (pinned, go install).
[ "${SKIP_VERSITYGW:-0}" = 1 ] || ./scripts/versitygw.sh

[ "${SKIP_VENV:-0}" = 1 ] && exit 0
# The venv is rebuilt only when the requirement files changed: their hash is kept in .venv/.stamp.
reqs=(python/requirements*.txt python/constraints.txt python/pyproject.toml)
stamp=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
if [ -f .venv/.stamp ] && [ "$(cat .venv/.stamp)" = "$stamp" ] && .venv/bin/python -c 'import pipeline_client' 2>/dev/null; then
  exit 0
fi
py=${PYTHON:-python3}
command -v "$py" >/dev/null || { echo "deps: $py not found; install Python 3.9+ (or set PYTHON)" >&2; exit 1; }
echo "making .venv/ with $("$py" --version) (torch with its CUDA wheels: ~2.5 GB download, ~5 GB on disk)"
"$py" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check -c python/constraints.txt)
[ -n "${TORCH_INDEX_URL:-}" ] && pip+=(--extra-index-url "$TORCH_INDEX_URL")
for r in python/requirements*.txt; do pip+=(-r "$r"); done
"${pip[@]}"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e python
echo "$stamp" > .venv/.stamp
