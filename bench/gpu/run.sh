#!/usr/bin/env bash
# The GPU machine's checks, in one call (device tool): build here, carry .device/, run there.
#
#   here:  go build -ldflags="-s -w" -o .device/pipeline ./cmd/pipeline
#          cp -L /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0 .device/lib/
#          (a shard of ImageNet-like JPEGs in .device/shards/, from make_imagenet_like.sh)
#   there: bash bench/gpu/run.sh        (results under $OUT)
#
# 1. pipeline bench: MoCo v2 twin views/s on 1, 8 and 16 cores;
# 2. pyarrow reads the fixed_shape_tensor batches pipeline writes;
# 3. the Python client pulls batches over the socket sink into the GPU;
# 4. pipeline run trains MoCo v2 ResNet-50 on the GPU fed by all cores: step time, data wait;
# 5. the PyTorch reference step on the same GPU (/work/shared/bench/moco_torch_reference.py).
set -u
cd "$(dirname "$0")/../.."
D=.device
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
SP=/opt/torch/.venv/lib/python3.12/site-packages
PY=/opt/torch/.venv/bin/python
LD=$(ls -d "$SP"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$PWD/$D/lib:${LD}/usr/local/nvidia/lib64"
export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/local/cuda-13.0
export PATH=/usr/local/cuda-13.0/bin:$PATH
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
P=$D/pipeline
nvidia-smi -L; echo "cores: $(nproc)"; $P version
echo "== 1. bench"
for w in 1 8 16; do
  $P bench --shards "$D/shards/*.tar" --workers $w --images $((w * 700)) --json | tee -a "$OUT/bench.jsonl"
done
echo "== 2. pyarrow reads the batches"
$P run examples/train.yaml --set sink.path="$OUT/train.arrow" --progress off 2>&1 | tail -2
$PY -c "
import pyarrow as pa
t = pa.ipc.open_stream('$OUT/train.arrow').read_all()
q = t.column('q').chunk(0)
print('q type:', t.schema.field('q').type, '| rows', t.num_rows, '| ndarray', q.to_numpy_ndarray().shape, q.to_numpy_ndarray().dtype)"
echo "== 3. python client over the socket"
timeout -k 5 -s INT 60 $P run bench/gpu/socket.yaml --progress off > "$OUT/socket-producer.log" 2>&1 &
PYTHONPATH=python timeout 60 $PY bench/gpu/socket_client.py unix:///tmp/pipeline-gpu.sock
wait
tail -3 "$OUT/socket-producer.log"
echo "== 4. MoCo v2 ResNet-50, pipeline run on all cores"
timeout -k 20 -s INT "${TRAIN_SECONDS:-200}" $P run bench/gpu/moco-r50.yaml --summary-json "$OUT/moco.json" --progress log 2>&1 | tail -25
echo "== 5. PyTorch reference, fp32 and bf16"
for amp in fp32 bf16; do
  timeout 40 $PY $D/moco_torch_reference.py --amp $amp --steps 15 --warmup 5 2>&1 | grep '^{'
done
