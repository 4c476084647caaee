#!/usr/bin/env bash
# The GPU machine's checks, in one call (device tool): build here, carry .device/, run there.
#
#   here:  go build -ldflags="-s -w" -o .device/pipeline ./cmd/pipeline
#          cp -L /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0 .device/lib/
#          (a shard of ImageNet-like JPEGs in .device/shards/, from make_imagenet_like.sh)
#          for step 6 also: CGO_ENABLED=0 go test -c -ldflags="-s -w" -o .device/arrowsocket.test ./sink/arrowsocket
#          The carry limit is 64 MiB: gzip the binaries (.device/*.gz are unpacked here).
#   there: STEPS="1 4" bash bench/gpu/run.sh        (default: all steps; results under $OUT)
#
# 0. the machine: GPU, cores and threads per core (SMT halves what 16 "cores" can do);
# 1. pipeline bench: MoCo v2 twin views/s on 1, 8 and 16 cores; pipeline profile on all cores;
# 2. pyarrow reads the fixed_shape_tensor batches pipeline writes;
# 3. the Python client pulls batches over the socket sink into the GPU;
# 4. pipeline run trains MoCo v2 ResNet-50 on the GPU fed by all cores, once per dtype in
#    TRAIN_DTYPES (default "float32 bfloat16"), TRAIN_SECONDS each (default 200): compile time
#    (first_step_s), step time, data-wait fraction. XLA_DUMP=1 keeps XLA's optimised HLO and any
#    module named in a slow-compile alarm under $OUT/xla-<dtype>.tgz;
# 5. the PyTorch reference step on the same GPU (/work/shared/bench/moco_torch_reference.py);
# 6. the Python client's pytest suite and gpu_check.py (python/tests/run_gpu_check.sh).
set -u
cd "$(dirname "$0")/../.."
D=.device
OUT=${OUT:-/tmp/gpu-out}
STEPS=${STEPS:-0 1 2 3 4 5 6}
mkdir -p "$OUT"
for gz in "$D"/*.gz; do
  [ -e "$gz" ] && gunzip -kf "$gz" && chmod +x "${gz%.gz}"
done
SP=/opt/torch/.venv/lib/python3.12/site-packages
PY=/opt/torch/.venv/bin/python
LD=$(ls -d "$SP"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$PWD/$D/lib:${LD}/usr/local/nvidia/lib64"
export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/local/cuda-13.0
export PATH=/usr/local/cuda-13.0/bin:$PATH
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
P=$D/pipeline
step() { [[ " $STEPS " == *" $1 "* ]]; }

if step 0; then
  echo "== 0. machine"
  nvidia-smi -L; echo "cores: $(nproc)"; $P version
  lscpu | grep -E '^(Model name|Socket|Core|Thread)' | tee "$OUT/lscpu.txt"
fi
if step 1; then
  echo "== 1. bench"
  for w in 1 8 16; do
    $P bench --shards "$D/shards/*.tar" --workers $w --images $((w * 700)) --json | tee -a "$OUT/bench.jsonl"
  done
  # The default worker split on all cores, per stage: which stage, if any, caps the scaling.
  $P profile bench/imagenet-like.yaml --set source.shards="$D/shards/*.tar" --duration 15s \
    2>&1 | tee "$OUT/profile-all-cores.txt" | tail -22
fi
if step 2; then
  echo "== 2. pyarrow reads the batches"
  $P run examples/train.yaml --set sink.path="$OUT/train.arrow" --progress off 2>&1 | tail -2
  $PY -c "
import pyarrow as pa
t = pa.ipc.open_stream('$OUT/train.arrow').read_all()
q = t.column('q').chunk(0)
print('q type:', t.schema.field('q').type, '| rows', t.num_rows, '| ndarray', q.to_numpy_ndarray().shape, q.to_numpy_ndarray().dtype)"
  rm -f "$OUT/train.arrow"
fi
if step 3; then
  echo "== 3. python client over the socket"
  timeout -k 5 -s INT 60 $P run bench/gpu/socket.yaml --progress off > "$OUT/socket-producer.log" 2>&1 &
  PYTHONPATH=python timeout 60 $PY bench/gpu/socket_client.py unix:///tmp/pipeline-gpu.sock
  wait
  tail -3 "$OUT/socket-producer.log"
fi
if step 4; then
  for dtype in ${TRAIN_DTYPES:-float32 bfloat16}; do
    echo "== 4. MoCo v2 ResNet-50 ($dtype), pipeline run on all cores"
    flags=$XLA_FLAGS
    if [ "${XLA_DUMP:-0}" = 1 ]; then
      rm -rf /tmp/xla && flags="$flags --xla_dump_to=/tmp/xla --xla_dump_hlo_as_text"
    fi
    XLA_FLAGS=$flags timeout -k 20 -s INT "${TRAIN_SECONDS:-200}" $P run bench/gpu/moco-r50.yaml \
      --set sink.dtype="$dtype" --summary-json "$OUT/moco-$dtype.json" --progress log 2>&1 |
      tee "$OUT/moco-$dtype.log" | tail -12
    if [ "${XLA_DUMP:-0}" = 1 ] && [ -d /tmp/xla ]; then
      keep='after_optimizations\.txt$'
      for m in $(grep -o 'Compiling module [^ ]* for GPU' "$OUT/moco-$dtype.log" | awk '{print $3}' | sort -u); do
        keep="$keep|$(echo "$m" | sed 's/\./\\./g')"
      done
      (cd /tmp/xla && ls | grep -E "$keep" | head -50 | tar czf "$OUT/xla-$dtype.tgz" -T -)
      ls -la "$OUT/xla-$dtype.tgz"
    fi
  done
fi
if step 5; then
  echo "== 5. PyTorch reference, fp32 and bf16"
  for amp in fp32 bf16; do
    timeout 40 $PY $D/moco_torch_reference.py --amp $amp --steps 15 --warmup 5 2>&1 | grep '^{'
  done
fi
if step 6 && [ -x "$D/arrowsocket.test" ]; then
  echo "== 6. Python client tests"
  # SIGINT, not SIGTERM: Python then unwinds and stops the producer it started in its own session.
  PATH=$(dirname $PY):$PATH OUT=$OUT timeout -k 15 -s INT 240 bash python/tests/run_gpu_check.sh \
    "$D/arrowsocket.test -test.run '^TestServeSynthetic\$' -test.v" 2>&1 | tail -15
fi
