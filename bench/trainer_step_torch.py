#!/usr/bin/env python3
"""The trainer's MoCo v2 step in PyTorch on the CPU, for the step-time comparison of
bench/trainer-step.sh: the same models, batch, queue, split BN and SGD as the Go benchmark
BenchmarkStep (sink/moco/bench_test.go), MoCo itself from python/examples/train_moco.py.
Random uint8 views are normalised inside the step, as the Go trainer does. Prints one JSON line.
usage: python3 trainer_step_torch.py --model small-28-b64|resnet18-64-b32 [--steps 10] [--threads 2]
"""
import argparse
import json
import os
import sys
import time

# OpenMP's default busy-waiting made a step 10x slower on a 2-core machine shared with other
# work (1,650 ms against 120-150 ms); passive waiting is PyTorch's best there.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "examples"))
from train_moco import MoCo, SplitBatchNorm  # noqa: E402

# name: (arch, stem size, batch); all with K=1024, 4 BN splits, m=0.99 (BenchmarkStep).
MODELS = {"small-28-b64": ("small", 28, 64), "resnet18-64-b32": ("resnet18", 64, 32)}


def small_encoder(dim, splits):
    """sink/moco/model's small convnet: three conv(3x3, no bias)-BN-ReLU layers of 16, 32, 64
    channels (stride 1, 2, 2), global average pooling, the MoCo v2 MLP head."""
    layers, c_in = [], 3
    for i, c in enumerate((16, 32, 64)):
        layers += [nn.Conv2d(c_in, c, 3, 1 if i == 0 else 2, 1, bias=False), SplitBatchNorm(c, splits), nn.ReLU(inplace=True)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, dim)]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    arch, size, batch = MODELS[a.model]
    splits = 4
    model = MoCo(arch="resnet18" if arch == "small" else arch, dim=128, K=1024, m=0.99, T=0.2, mlp=True, bn_splits=splits)
    if arch == "small":
        model.encoder_q, model.encoder_k = small_encoder(128, splits), small_encoder(128, splits)
        for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
    opt = torch.optim.SGD(model.encoder_q.parameters(), lr=0.06, momentum=0.9, weight_decay=1e-4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    views = torch.randint(0, 256, (2, batch, size, size, 3), dtype=torch.uint8)

    def step():
        x = (views.permute(0, 1, 4, 2, 3).float() - mean) / std
        loss, _ = model(x[0], x[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    ms = (time.perf_counter() - start) * 1000 / a.steps
    print(json.dumps({"model": a.model, "backend": "pytorch-cpu", "torch": torch.__version__,
                      "threads": a.threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "steps": a.steps, "ms_per_step": round(ms, 2)}))


if __name__ == "__main__":
    main()
