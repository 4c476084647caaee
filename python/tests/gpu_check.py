#!/usr/bin/env python3
"""Measures the input path on a GPU machine, against the Go producer named by PIPELINE_PRODUCER
(see run_gpu_check.sh): MoCo batches (256 x 2 views of 224x224x3, 77 MB) streamed over a Unix
socket and over Flight into pinned memory, copied to the GPU and normalised there; then a short
MoCo v2 ResNet-50 run fed by the socket, reporting the share of time it waited for data."""

import os
import socket
import subprocess
import sys
import tempfile
import time

import torch

from helpers import expected_view
from pipeline_client.dataset import PipelineDataset
from pipeline_client.producer import Producer
from pipeline_client.torch_io import normalize, to_device

PRODUCER = os.environ["PIPELINE_PRODUCER"]
ROWS, SIDE = 256, 224
HERE = os.path.dirname(os.path.abspath(__file__))


def producer_env(address, batches, cycle=4):
    return {"BATCHTEST_SERVE": address, "BATCHTEST_BATCHES": str(batches), "BATCHTEST_CYCLE": str(cycle),
            "BATCHTEST_SHAPE": f"{ROWS}x{SIDE}x{SIDE}", "BATCHTEST_WORLD": "1"}


def stream(address, batches):
    """Reads every batch to the GPU; checks two rows of each; returns twin views/s and GB/s,
    timed from the first batch's arrival (so the producer's start is not counted)."""
    n, t0, nbytes = 0, None, 0
    with Producer(PRODUCER, env=producer_env(address, batches), exit_timeout=120):
        for batch in PipelineDataset(address, 0, 1, pin_memory=True):
            if t0 is None:
                t0 = time.perf_counter()
            else:
                nbytes += batch["q"].numel() + batch["k"].numel()
            for r in (0, ROWS - 1):
                index = int(batch["index"][r])
                for v, name in enumerate(("q", "k")):
                    if not (batch[name][r].numpy().ravel() == expected_view(index, v, SIDE * SIDE * 3)).all():
                        raise AssertionError(f"{address}: sample {index} view {name} differs")
            gpu = to_device(batch, "cuda")
            normalize(gpu["q"], dtype=torch.bfloat16), normalize(gpu["k"], dtype=torch.bfloat16)
            n += 1
        torch.cuda.synchronize()
    if n != batches:
        raise AssertionError(f"{address}: read {n} batches, want {batches}")
    dt = time.perf_counter() - t0
    return (n - 1) * ROWS / dt, nbytes / dt / 1e9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        for address, batches in [(f"unix://{d}/p.sock", 60), (f"grpc://127.0.0.1:{free_port()}", 30)]:
            rate, gbs = stream(address, batches)
            print(f"{address.split(':')[0]}: {batches} batches to the GPU: {rate:.0f} twin views/s, {gbs:.2f} GB/s",
                  flush=True)
        address = f"unix://{d}/moco.sock"
        env = {**os.environ, **producer_env(address, 60)}
        cmd = [sys.executable, os.path.join(HERE, "..", "examples", "train_moco.py"), "--address", address,
               "--producer", PRODUCER, "--arch", "resnet50", "--bf16", "--steps", "50", "--log-every", "10"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
