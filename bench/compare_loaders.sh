#!/usr/bin/env bash
# MoCo v2 twin views/s delivered into a Python loop as uint8 torch tensors, three loaders on the
# same tar shards and the same cores, alternated within each round:
#   wds   torchvision DataLoader over webdataset 1.0.2 (MoCo v2 two-crop transform, PIL path)
#   dali  NVIDIA DALI 2.4.0's CPU-only pipeline with the closest MoCo v2 ops
#   ours  `pipeline run` with the arrow-socket sink, read by python/pipeline_client
# Once per core (taskset -c 0, 1 worker each) and on two cores (taskset -c 0,1, 2 workers each).
#
#   bash bench/compare_loaders.sh SHARD_DIR [ROUNDS] [IMAGES]
#
# SHARD_DIR: bash ../shared/bench/make_imagenet_like.sh DIR --install (1000 JPEGs in 4 tars).
# Installs what is missing: .venv/ (scripts/deps.sh), bin/pipeline (make build), and DALI into
# the bench-only .bench-dali/ (bench/requirements-dali.txt). LOADERS="wds ours" leaves one out;
# SETTINGS="0:1" runs the one-core setting only. Prints one JSON line per run, then medians and
# the per-round ratios of views/s and of views per CPU-second (the loader's processes' CPU time,
# which other work on a shared machine does not inflate): compare those, not absolute figures.
set -euo pipefail
dir=${1:?usage: compare_loaders.sh SHARD_DIR [ROUNDS] [IMAGES]}
rounds=${2:-3}
images=${3:-400}
loaders=(${LOADERS:-wds dali ours})
settings=(${SETTINGS:-0:1 0,1:2})
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ls "$dir"/*.tar >/dev/null
[ -x .venv/bin/python ] || ./scripts/deps.sh
[ -x bin/pipeline ] || make build
if [[ " ${loaders[*]} " == *" dali "* ]] && [ ! -d .bench-dali/nvidia/dali ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --target .bench-dali -r bench/requirements-dali.txt
fi
py=(env PYTHONPATH="$root/.bench-dali" "$root/.venv/bin/python" "$root/bench/loaders.py")
log=$(mktemp)
for r in $(seq "$rounds"); do
  for s in "${settings[@]}"; do
    cores=${s%%:*} workers=${s##*:}
    n=${#loaders[@]}
    for i in $(seq 0 $((n - 1))); do
      l=${loaders[$(((i + r - 1) % n))]}  # rotate the order from round to round
      out=$(taskset -c "$cores" "${py[@]}" "$l" --shards "$dir" --workers "$workers" --images "$images" 2>"$log.err" | tail -1) ||
        { echo "round $r $l on cores $cores failed:" >&2; tail -20 "$log.err" >&2; exit 1; }
      echo "round $r cores $cores: $out"
      echo "$r $cores $out" >> "$log"
    done
  done
done
.venv/bin/python - "$log" <<'PY'
import collections, json, statistics, sys
runs = collections.defaultdict(dict)  # cores -> round -> loader -> its JSON line
for line in open(sys.argv[1]):
    r, cores, js = line.split(" ", 2)
    j = json.loads(js)
    runs[cores].setdefault(r, {})[j["loader"]] = j
for cores, by_round in runs.items():
    loaders = sorted({l for d in by_round.values() for l in d})
    for metric in ("twin_views_per_s", "twin_views_per_cpu_s"):
        med = {l: statistics.median(d[l][metric] for d in by_round.values() if l in d) for l in loaders}
        print(f"cores {cores}, {metric}: median " + ", ".join(f"{l} {med[l]:.1f}" for l in loaders))
        for other in ("wds", "dali"):
            if "ours" in loaders and other in loaders:
                rs = [d["ours"][metric] / d[other][metric] for d in by_round.values() if "ours" in d and other in d]
                print(f"  ours/{other}: median {statistics.median(rs):.2f}x, per round "
                      + ", ".join(f"{x:.2f}" for x in rs) + f" (min {min(rs):.2f}, max {max(rs):.2f})")
PY
rm -f "$log" "$log.err"
