#!/usr/bin/env python3
"""A PyTorch MoCo v2 written after the paper's code, to judge `sink/moco` by.

It follows facebookresearch/moco (main_moco.py, moco/builder.py) and its CIFAR-10 demo
notebook (SplitBatchNorm, single-device key shuffle, kNN monitor), with the encoder and the
hyper-parameters of examples/fashion-mnist.yaml:

- encoder: three 3x3 conv (bias-free, Kaiming-normal fan_out) + split BN + ReLU layers of 16,
  32, 64 channels at strides 1, 2, 2, global average pooling, MLP head 64 -> 64 -> ReLU -> 128
  (nn.Linear's default init); the key encoder starts as a copy and moves by EMA (m = 0.99) of
  the query *parameters* only;
- split BN with 4 groups (sample n in group n mod 4), keys shuffled by a random permutation
  before the key encoder and unshuffled after it;
- InfoNCE at T = 0.2 against a queue of K = 1024 unit keys (N(0,1) columns normalised), the
  positive at index 0, enqueue after the loss;
- SGD momentum 0.9, weight decay 1e-4 on every query parameter, lr 0.24 per 256 (0.06 at
  batch 64), cosine per epoch (main_moco.py: epoch 0 .. E-1);
- kNN monitor: encoder_q in eval mode, L2-normalised 128-d output, k = 200 cosine neighbours
  weighted by exp(sim / 0.1), at init and after every epoch.

The training views are read from an Arrow IPC stream written by the pipeline's arrow-file sink
with the same config and seed as the Go run (`pipeline run examples/fashion-mnist.yaml --set
seed=S --set 'sink={kind: arrow-file, path: V.arrow}'`): the views are a pure function of
(seed, epoch, sample, group, view), so both trainers see identical batches in the same order
and any gap between them comes from the trainer, not from augmentation. The kNN bank and test
images are read straight from the shards with Pillow (PNG, converted to RGB as the pipeline
decodes them).

    python bench/moco_reference/moco_reference.py --views out/views-seed1.arrow --seed 1 \
        --bank testdata/fashion-mnist/train-00000{0,1}.tar.gz \
        --test testdata/fashion-mnist/test-000000.tar.gz --summary-json out/torch-seed1.json
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import time

import numpy as np
import pyarrow as pa
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SplitBatchNorm(nn.BatchNorm2d):
    """The CIFAR demo's SplitBatchNorm: in training, statistics per group of N/S samples
    (sample n in group n mod S, from viewing [N, C] as [N/S, S*C]); the running statistics are
    updated per group and then averaged. Eval mode is plain BN."""

    def __init__(self, num_features: int, num_splits: int):
        super().__init__(num_features)
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.num_splits
        if not self.training or s == 1:
            return super().forward(x)
        mean = self.running_mean.repeat(s)
        var = self.running_var.repeat(s)
        out = F.batch_norm(x.reshape(n // s, c * s, h, w), mean, var,
                           self.weight.repeat(s), self.bias.repeat(s), True, self.momentum, self.eps)
        self.running_mean.copy_(mean.view(s, c).mean(dim=0))
        self.running_var.copy_(var.view(s, c).mean(dim=0))
        return out.view(n, c, h, w)


class SmallEncoder(nn.Module):
    """sink/moco/model's "small" encoder with the MoCo v2 MLP head."""

    widths = (16, 32, 64)

    def __init__(self, dim: int, bn_splits: int):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate(self.widths):
            conv = nn.Conv2d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers += [conv, SplitBatchNorm(cout, bn_splits), nn.ReLU(inplace=True)]
            cin = cout
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).mean(dim=(2, 3)))


class MoCo(nn.Module):
    """builder.MoCo for one device: the demo's single-GPU batch shuffle instead of DDP's."""

    def __init__(self, dim: int, K: int, m: float, T: float, bn_splits: int):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = SmallEncoder(dim, bn_splits)
        self.encoder_k = SmallEncoder(dim, bn_splits)
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.queue_ptr = 0

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.mul_(self.m).add_(pq.data, alpha=1 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor):
        n = keys.shape[0]
        assert self.K % n == 0
        self.queue[:, self.queue_ptr:self.queue_ptr + n] = keys.T
        self.queue_ptr = (self.queue_ptr + n) % self.K

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor, perm: torch.Tensor | None = None):
        """The loss and logits of one step; perm (default: random) is the key shuffle."""
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            if perm is None:
                perm = torch.randperm(im_k.shape[0])
            k = F.normalize(self.encoder_k(im_k[perm]), dim=1)
            k = k[torch.argsort(perm)]
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)
        loss = F.cross_entropy(logits, labels)
        self._dequeue_and_enqueue(k)
        return loss, logits


def normalize_uint8(views: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> ImageNet-normalised NCHW of the default dtype (float32: ToTensor +
    Normalize)."""
    x = views.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def read_views(path: str):
    """The arrow-file sink's stream: a list of (q, k, epoch) with uint8 NHWC tensors."""
    out = []
    with pa.OSFile(path, "rb") as f:
        for rb in pa.ipc.open_stream(f):
            epochs = np.unique(rb.column("epoch").to_numpy())
            if len(epochs) != 1:
                raise ValueError(f"{path}: a batch spans epochs {epochs.tolist()}")
            q = torch.from_numpy(rb.column("q").to_numpy_ndarray().copy())
            k = torch.from_numpy(rb.column("k").to_numpy_ndarray().copy())
            out.append((q, k, int(epochs[0])))
    return out


def read_shards(paths: list[str]):
    """Labelled images of webdataset-style tar shards ({key}.png + {key}.cls), in shard order,
    as uint8 RGB NHWC and int64 labels."""
    images, labels = [], []
    for path in paths:
        pending: dict[str, dict[str, bytes]] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.rpartition(".")
                pending.setdefault(key, {})[ext] = tar.extractfile(member).read()
                sample = pending[key]
                if "png" in sample and "cls" in sample:
                    img = Image.open(io.BytesIO(sample["png"])).convert("RGB")
                    images.append(np.asarray(img, dtype=np.uint8))
                    labels.append(int(sample["cls"].decode().strip()))
                    del pending[key]
        if pending:
            raise ValueError(f"{path}: samples without image or label: {sorted(pending)[:5]}")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


@torch.no_grad()
def knn_accuracy(encoder: nn.Module, bank, test, k: int, t: float, classes: int) -> float:
    """The demo's kNN monitor (knn_predict): weighted vote of the k nearest bank features."""
    encoder.eval()

    def features(images):
        return torch.cat([F.normalize(encoder(normalize_uint8(images[i:i + 256])), dim=1)
                          for i in range(0, len(images), 256)])

    bank_feats, test_feats = features(bank[0]), features(test[0])
    sim = test_feats @ bank_feats.T
    sim_weight, sim_idx = sim.topk(k=min(k, len(bank_feats)), dim=-1)
    sim_labels = bank[1][sim_idx]
    one_hot = F.one_hot(sim_labels, classes).to(sim_weight.dtype)
    scores = (one_hot * (sim_weight / t).exp().unsqueeze(-1)).sum(dim=1)
    encoder.train()
    return (scores.argmax(dim=1) == test[1]).float().mean().item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--views", required=True, help="Arrow IPC stream of the training views (arrow-file sink)")
    p.add_argument("--bank", nargs="+", required=True, help="kNN bank shards (training images)")
    p.add_argument("--test", nargs="+", required=True, help="kNN test shards")
    p.add_argument("--seed", type=int, default=1, help="torch seed: init, queue, key shuffle")
    p.add_argument("--epochs", type=int, default=6, help="length of the cosine schedule")
    p.add_argument("--lr", type=float, default=0.24, help="per 256, scaled linearly by the batch")
    p.add_argument("--K", type=int, default=1024)
    p.add_argument("--m", type=float, default=0.99)
    p.add_argument("--T", type=float, default=0.2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--bn-splits", type=int, default=4)
    p.add_argument("--sgd-momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--knn-k", type=int, default=200)
    p.add_argument("--knn-t", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--summary-json", help="write the run's figures here")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = read_views(args.views)
    bank, test = read_shards(args.bank), read_shards(args.test)
    classes = int(bank[1].max()) + 1
    model = MoCo(args.dim, args.K, args.m, args.T, args.bn_splits)
    opt = torch.optim.SGD(model.encoder_q.parameters(), lr=args.lr, momentum=args.sgd_momentum,
                          weight_decay=args.wd)

    knn_at_init = knn_accuracy(model.encoder_q, bank, test, args.knn_k, args.knn_t, classes)
    print(f"kNN at init {knn_at_init:.4f}", flush=True)
    knn, losses, step_s, epoch_lr = [], [], [], []
    for i, (q, k, epoch) in enumerate(batches):
        lr = args.lr * q.shape[0] / 256 * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        loss, logits = model(normalize_uint8(q), normalize_uint8(k))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_s.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if (i + 1) % args.log_every == 0:
            acc = (logits.argmax(dim=1) == 0).float().mean().item()
            print(f"step {i + 1} epoch {epoch} loss {loss.item():.4f} acc {acc:.3f} lr {lr:.5f} "
                  f"step {1000 * step_s[-1]:.1f}ms", flush=True)
        if i + 1 == len(batches) or batches[i + 1][2] != epoch:
            knn.append(knn_accuracy(model.encoder_q, bank, test, args.knn_k, args.knn_t, classes))
            epoch_lr.append(lr)
            print(f"epoch {epoch} kNN {knn[-1]:.4f}", flush=True)

    summary = {
        "trainer": "pytorch-reference",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "steps": len(batches),
        "batch": int(batches[0][0].shape[0]) if batches else 0,
        "knn_accuracy_at_init": knn_at_init,
        "knn_accuracy_per_epoch": knn,
        "knn_accuracy": knn[-1] if knn else None,
        "losses": losses,
        "final_loss": losses[-1] if losses else None,
        "lr_per_epoch": epoch_lr,
        "first_step_s": step_s[0] if step_s else None,
        "mean_step_ms": 1000 * float(np.mean(step_s[1:])) if len(step_s) > 1 else None,
    }
    print(json.dumps(summary), flush=True)
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
