#!/usr/bin/env bash
# Trains examples/fashion-mnist-full.yaml: shards Debian's Fashion-MNIST IDX files into
# out/fashion-mnist/ (once), then runs the trainer; extra arguments go to `pipeline run`.
set -euo pipefail
cd "$(dirname "$0")/.."
idx=/usr/share/datasets/fashion-mnist
[ -x bin/pipeline ] || go build -o bin/pipeline ./cmd/pipeline
for split in train:train t10k:test; do
  from=${split%%:*} to=${split##*:}
  if ! ls out/fashion-mnist/"$to"-*.tar >/dev/null 2>&1; then
    ./bin/pipeline shard --idx-images "$idx/$from-images-idx3-ubyte.gz" --idx-labels "$idx/$from-labels-idx1-ubyte.gz" \
      --out "out/fashion-mnist/$to-%06d.tar"
  fi
done
exec ./bin/pipeline run examples/fashion-mnist-full.yaml --summary-json out/fmnist-full.json "$@"
