"""One loader of the loader comparison (bench/compare_loaders.sh): MoCo v2 twin views from the
ImageNet-like tar shards, delivered into this Python loop as uint8 torch tensors.

usage: python bench/loaders.py {wds,dali,ours} --shards DIR --workers N --images M [--batch B]

Prints one JSON line. The clock starts when the --warmup'th batch has arrived (start-up, and the
batches each loader made ahead while Python was still importing torch, are left out the same way
for every loader) and stops when M more images have arrived: twin_views_per_s = M / seconds, and
twin_views_per_cpu_s = M / the CPU time this process and its children (workers, the producer)
used meanwhile, which is what a core makes when other work shares the machine.
Each loader keeps about two batches ahead: DataLoader's prefetch_factor 2 per worker, DALI's
prefetch_queue_depth 2, the socket sink's queue_bytes of 2 batches.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import sys
import tempfile
import time


def mocov2_two_crop():
    """main_moco.py --aug-plus, torchvision's PIL path, ending in uint8 CHW tensors."""
    import random

    import torchvision.transforms as T
    from PIL import ImageFilter

    def blur(img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

    aug = T.Compose([
        T.RandomResizedCrop(224, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([blur], p=0.5),
        T.RandomHorizontalFlip(),
        T.PILToTensor(),
    ])
    return lambda img: (aug(img), aug(img))


def wds_batches(shards, workers, batch):
    """(a) torchvision's DataLoader over a webdataset WebDataset of the tar shards."""
    import torch
    import webdataset as wds

    two_crop = mocov2_two_crop()
    ds = (wds.WebDataset(shards, shardshuffle=False, workersplitter=wds.split_by_worker, empty_check=False)
          .repeat()
          .decode("pil")
          .to_tuple("jpg", "cls")
          .map_tuple(two_crop, lambda c: c))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers)
    for (q, k), label in loader:
        yield q, k


def dali_batches(shards, workers, batch):
    """(b) NVIDIA DALI's CPU-only pipeline (device_id=None) with the closest MoCo v2 ops."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    def view(images):
        images = fn.random_resized_crop(images, size=(224, 224), random_area=(0.2, 1.0),
                                        random_aspect_ratio=(3 / 4, 4 / 3))
        if fn.random.coin_flip(probability=0.8):
            # DALI's colour twist applies its four adjustments in one fixed order, not a random one.
            images = fn.color_twist(images, brightness=fn.random.uniform(range=(0.6, 1.4)),
                                    contrast=fn.random.uniform(range=(0.6, 1.4)),
                                    saturation=fn.random.uniform(range=(0.6, 1.4)),
                                    hue=fn.random.uniform(range=(-36.0, 36.0)))  # degrees: 0.1 turn
        if fn.random.coin_flip(probability=0.2):
            images = fn.color_twist(images, saturation=0.0)  # grey, still 3 channels
        if fn.random.coin_flip(probability=0.5):
            images = fn.gaussian_blur(images, sigma=fn.random.uniform(range=(0.1, 2.0)))
        return fn.flip(images, horizontal=fn.random.coin_flip(probability=0.5))

    @pipeline_def(enable_conditionals=True)
    def two_crop():
        jpegs, labels = fn.readers.webdataset(paths=shards, ext=["jpg", "cls"], random_shuffle=False,
                                              missing_component_behavior="error", name="reader")
        images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
        return view(images), view(images)

    pipe = two_crop(batch_size=batch, num_threads=workers, device_id=None, seed=0,
                    prefetch_queue_depth=2)
    pipe.build()
    # Leaving size unset, the iterator restarts the reader at each epoch's end (auto_reset).
    it = DALIGenericIterator([pipe], ["q", "k"], reader_name="reader", auto_reset=True)
    while True:
        for out in it:
            yield out[0]["q"], out[0]["k"]


def ours_batches(shards, workers, batch):
    """(c) `pipeline run` with the arrow-socket sink, read by python/pipeline_client."""
    from pipeline_client import PipelineDataset, Producer

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tempfile.mkdtemp(prefix="compare-loaders-")
    sock = os.path.join(tmp, "p.sock")
    cfg = os.path.join(tmp, "run.yaml")
    with open(cfg, "w") as f:
        f.write(f"""source:
  shards: {shards}/*.tar
  shuffle_buffer: 256
epochs: 1000  # more than any measurement reads: the producer is stopped
views: mocov2
batch:
  size: {batch}
sink:
  kind: arrow-socket
  path: unix://{sock}
  world_size: 1
  queue_bytes: {2 * batch * 2 * 224 * 224 * 3}
workers:
  decode: {2 * workers}
  augment: {2 * workers}
memory_budget: 2GiB
""")
    log = os.path.join(tmp, "pipeline.log")
    cmd = shlex.join([os.path.join(root, "bin", "pipeline"), "run", cfg, "--progress", "off"]) + " 2>" + shlex.quote(log)
    with Producer(cmd) as producer:
        try:
            ds = PipelineDataset("unix://" + sock, rank=0, world_size=1, pin_memory=False, timeout=60)
            for b in ds:
                yield b["q"], b["k"]
        finally:
            # The measurement stops reading before the stream ends: stop the producer first.
            producer.stop()


def tree_cpu_seconds() -> float:
    """User + system CPU time of this process and every live descendant (DataLoader workers,
    the pipeline producer): on a shared machine, views per CPU-second is what one core makes."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(pid)] = int(fields[1])
        cpu[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += cpu[pid]
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("loader", choices=["wds", "dali", "ours"])
    p.add_argument("--shards", required=True, help="folder of imagenet-like-*.tar")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--images", type=int, default=600)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--warmup", type=int, default=8, help="batches read before the clock starts")
    a = p.parse_args()
    if a.warmup < 1:
        p.error("--warmup: at least 1 batch (the clock starts at its arrival)")
    shards = sorted(glob.glob(os.path.join(a.shards, "*.tar")))
    if not shards:
        sys.exit(f"no .tar shards in {a.shards}")
    if a.loader == "wds":
        batches = wds_batches(shards, a.workers, a.batch)
    elif a.loader == "dali":
        batches = dali_batches(shards, a.workers, a.batch)
    else:
        batches = ours_batches(os.path.abspath(a.shards), a.workers, a.batch)

    import torch

    seen, t0, shape, n = 0, None, None, 0
    for q, k in batches:
        n += 1
        if q.dtype != torch.uint8 or k.dtype != torch.uint8 or q.shape != k.shape:
            sys.exit(f"{a.loader}: want two uint8 view tensors of one shape, got {q.dtype} {tuple(q.shape)}, {k.dtype} {tuple(k.shape)}")
        if n <= a.warmup:
            if n == a.warmup:
                t0, c0, shape = time.perf_counter(), tree_cpu_seconds(), tuple(q.shape)
            continue
        seen += q.shape[0]
        if seen >= a.images:
            break
    dt, cpu = time.perf_counter() - t0, tree_cpu_seconds() - c0
    batches.close()
    print(json.dumps({"loader": a.loader, "workers": a.workers, "batch": a.batch, "images": seen,
                      "seconds": round(dt, 3), "twin_views_per_s": round(seen / dt, 1),
                      "cpu_seconds": round(cpu, 2), "twin_views_per_cpu_s": round(seen / cpu, 1),
                      "view_batch_shape": shape, "affinity": sorted(os.sched_getaffinity(0))}))


if __name__ == "__main__":
    main()
