#!/usr/bin/env bash
# Builds .device/ (git-ignored), what bench/gpu/run.sh needs on the GPU machine, which has no Go:
# the pipeline binary and the Python client's producer (gzipped), libturbojpeg, half a shard of
# ImageNet-like JPEGs and the PyTorch reference step. The device tool carries it:
#   run(command="STEPS='0 1 4' bash bench/gpu/run.sh", carry=[".device"])
#
# usage: bash bench/gpu/prepare.sh [IMAGENET_LIKE_DIR]
#   IMAGENET_LIKE_DIR holds the shards of ../shared/bench/make_imagenet_like.sh (default
#   out/imagenet-like, built there when missing: a few minutes, and apt-get for its photos).
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.device
SHARED=$(cd .. && pwd)/shared
DATA=${1:-out/imagenet-like}
LIMIT=$((64 << 20)) # the device tool's carry limit

rm -rf "$D" && mkdir -p "$D/lib" "$D/shards"
go build -ldflags="-s -w" -o "$D/pipeline" ./cmd/pipeline
CGO_ENABLED=0 go test -c -ldflags="-s -w" -o "$D/arrowsocket.test" ./sink/arrowsocket
gzip -9 "$D/pipeline" "$D/arrowsocket.test"
cp -L "$(ldconfig -p | awk '/libturbojpeg.so.0 .*x86-64/ {print $NF; exit}')" "$D/lib/libturbojpeg.so.0"
cp "$SHARED/bench/moco_torch_reference.py" "$D/"

if ! ls "$DATA"/*.tar >/dev/null 2>&1; then
  bash "$SHARED/bench/make_imagenet_like.sh" "$DATA" --install
fi
# The first 125 samples (a .jpg and a .cls each) of the first shard, in their order.
first=$(ls "$DATA"/*.tar | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xf "$first" -C "$tmp"
tar -tf "$first" > "$tmp/.all"
head -250 "$tmp/.all" > "$tmp/.members"
tar -cf "$D/shards/imagenet-like-half-000000.tar" -C "$tmp" -T "$tmp/.members"

size=$(du -sb "$D" | cut -f1)
ls -la "$D" "$D/shards"
if [ "$size" -gt "$LIMIT" ]; then
  echo "prepare: $D holds $size bytes, over the carry limit of $LIMIT" >&2
  exit 1
fi
echo "prepare: $D ready, $((size >> 20)) MiB"
