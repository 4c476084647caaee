#!/usr/bin/env bash
# Trains examples/fashion-mnist.yaml with our Go trainer (sink/moco) and with the PyTorch
# reference, seed by seed and alternately (so both share the machine's state), then prints the
# comparison. The reference is fed the same views: the config's own pipeline with an arrow-file
# sink. A run whose summary is already in the output folder is skipped (rerun to resume).
#   bench/moco_reference/run.sh [SEED ...]        (default: 1 2 3)
# OUT (default out/moco_reference) is the output folder, PYTHON the interpreter (.venv's).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-out/moco_reference}
py=${PYTHON:-.venv/bin/python}
cfg=examples/fashion-mnist.yaml
mkdir -p "$out"
# GNU time's "User time" and "System time" lines end each log: CPU seconds, less noisy than wall
# time on a shared machine.
timed=""
[ -x /usr/bin/time ] && timed="/usr/bin/time -v"
[ -x bin/pipeline ] || go build -o bin/pipeline ./cmd/pipeline
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
for s in "${seeds[@]}"; do
  if [ ! -s "$out/go-seed$s.json" ]; then
    echo "seed $s: Go trainer" >&2
    $timed ./bin/pipeline run "$cfg" --set seed="$s" --set sink.log_every=1 --progress log \
      --summary-json "$out/go-seed$s.json" > "$out/go-seed$s.log" 2>&1
  fi
  if [ ! -s "$out/torch-seed$s.json" ]; then
    echo "seed $s: PyTorch reference" >&2
    views="$out/views-seed$s.arrow"
    ./bin/pipeline run "$cfg" --set seed="$s" --set "sink={kind: arrow-file, path: $views}" \
      --progress off > /dev/null 2>&1
    $timed "$py" bench/moco_reference/moco_reference.py --views "$views" --seed "$s" \
      --bank testdata/fashion-mnist/train-{000000..000001}.tar.gz \
      --test testdata/fashion-mnist/test-000000.tar.gz \
      --summary-json "$out/torch-seed$s.json" > "$out/torch-seed$s.log" 2>&1
    rm -f "$views"
  fi
done
"$py" bench/moco_reference/compare.py "$out"
