#!/usr/bin/env bash
# Throughput of `pipeline run` from local shards against the same shards in S3 (versitygw on
# 127.0.0.1, uploaded by boto3) and over HTTP, in one run, alternating: local, s3, http, x ROUNDS.
# Prints samples/s of each run (summary JSON). Needs scripts/deps.sh (versitygw, .venv).
#   bench/remote_vs_local.sh [ROUNDS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
epochs=${2:-10}
go build -o bin/pipeline ./cmd/pipeline
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/s3"
export AWS_ACCESS_KEY_ID=benchaccess AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
.tools/bin/versitygw --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$port" posix "$tmp/s3" >"$tmp/gw.log" 2>&1 &
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
tool=internal/s3test/s3tool.py
.venv/bin/python $tool mkbucket bench
args=()
for f in testdata/imagenet-like/train-00000{0,1,2}.tar; do args+=("imagenet-like/$(basename "$f")" "$f"); done
.venv/bin/python $tool put bench "${args[@]}"
hport=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd testdata/imagenet-like && exec ../../.venv/bin/python -m http.server -b 127.0.0.1 "$hport" >/dev/null 2>&1) &
sleep 1
declare -A pattern=(
  [local]="testdata/imagenet-like/train-{000000..000002}.tar"
  [s3]="s3://bench/imagenet-like/train-{000000..000002}.tar"
  [http]="http://127.0.0.1:$hport/train-{000000..000002}.tar"
)
for r in $(seq "$rounds"); do
  for kind in local s3 http; do
    ./bin/pipeline run examples/train.yaml --set 'sink={kind: null}' --set "epochs=$epochs" \
      --set "source.shards=${pattern[$kind]}" --summary-json "$tmp/$kind.json" >/dev/null 2>"$tmp/err.log" ||
      { cat "$tmp/err.log"; exit 1; }
    .venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(f'round $r $kind: {d[\"samples\"]} samples, {d[\"samples_per_s\"]:.0f} samples/s ({2*d[\"samples_per_s\"]:.0f} views/s)')" "$tmp/$kind.json"
  done
done
