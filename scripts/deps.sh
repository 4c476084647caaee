#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, if they are missing:
# gcc and libc6-dev (cgo: without a C compiler Go silently builds without libjpeg-turbo, and
# -race fails), libturbojpeg0-dev (the fast JPEG decoder, cgo), libjpeg62-turbo-dev (its
# jconfig.h, which libturbojpeg0-dev does not pull in) and dataset-fashion-mnist (the trainer's
# learning test). Uses sudo when not run as root.
set -euo pipefail
"$(dirname "$0")/pjrt-cpu.sh" # XLA's CPU PJRT plugin into .pjrt/ (the trainer's backend)
need=()
for p in gcc libc6-dev libturbojpeg0-dev libjpeg62-turbo-dev dataset-fashion-mnist; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
