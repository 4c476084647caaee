#!/usr/bin/env bash
# Per-core MoCo v2 twin views/s: pipeline bench vs torchvision, alternated on one pinned core.
#
#   bash bench/compare_torchvision.sh SHARD_DIR [ROUNDS] [IMAGES]
#
# SHARD_DIR holds the ImageNet-like shards (bash ../shared/bench/make_imagenet_like.sh DIR).
# Needs bin/pipeline (make build) and Debian's python3-torchvision. Prints one JSON line per
# run and the medians; compare the ratio, which the machine's noise affects far less.
set -euo pipefail
dir=${1:?usage: compare_torchvision.sh SHARD_DIR [ROUNDS] [IMAGES]}
rounds=${2:-3}
images=${3:-500}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
baseline="$here/../shared/bench/torchvision_baseline.py"
[ -f "$baseline" ] || { echo "missing $baseline" >&2; exit 1; }
core=${CORE:-0}
ours=() theirs=()
for r in $(seq "$rounds"); do
  o=$(taskset -c "$core" "$here/bin/pipeline" bench --shards "$dir/*.tar" --workers 1 --images "$images" --json)
  t=$(taskset -c "$core" /usr/bin/python3 "$baseline" "$dir" --images "$images")
  echo "round $r pipeline:    $o"
  echo "round $r torchvision: $t"
  ours+=("$(echo "$o" | python3 -c 'import json,sys; print(json.load(sys.stdin)["twin_views_per_s"])')")
  theirs+=("$(echo "$t" | python3 -c 'import json,sys; print(json.load(sys.stdin)["twin_views_per_s"])')")
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
ratios = [a / b for a, b in zip(o, t)]
print(f"median twin views/s on one core: pipeline {statistics.median(o):.0f}, "
      f"torchvision {statistics.median(t):.0f}, ratio {statistics.median(ratios):.2f}x "
      f"(per-round ratios {', '.join(f'{r:.2f}' for r in ratios)})")
PY
