#!/usr/bin/env bash
# Step time of the MoCo trainer on SimpleGo, on XLA's CPU PJRT plugin and in PyTorch on the
# CPU, the three alternated REPS times (default 3) per model, on the same cores (docs/trainer.md).
# Go: BenchmarkStep (sink/moco/bench_test.go); PyTorch: bench/trainer_step_torch.py.
# usage: bench/trainer-step.sh [PYTHON]   PYTHON has torch and torchvision (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
reps=${REPS:-3}
mkdir -p out
go test -c -o out/moco.test ./sink/moco
cd sink/moco # the plugin search starts in the working directory
gobench() { # model backend steps
  GOMAXPROCS=2 ../../out/moco.test -test.run '^$' -test.bench "BenchmarkStep/$1/$2\$" -test.benchtime "$3x" | grep '^Benchmark'
}
for rep in $(seq "$reps"); do
  echo "# round $rep"
  gobench small-28-b64 go 5
  gobench small-28-b64 xla 30
  gobench small-28-b64 xla-native 30
  "$py" ../../bench/trainer_step_torch.py --model small-28-b64 --steps 30
  gobench resnet18-64-b32 go 1
  gobench resnet18-64-b32 xla 5
  "$py" ../../bench/trainer_step_torch.py --model resnet18-64-b32 --steps 5
done
