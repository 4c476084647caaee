#!/usr/bin/env python3
"""Replays the first steps of our trainer in the PyTorch reference, from the same weights,
batches and key permutations (written by `go run ./bench/moco_reference/onestep`), and prints
how far apart the two are, piece by piece: the losses and learning rates, the last keys (key
encoder after the EMA, split BN, unshuffle), the SGD momentum buffers (on step 1: gradient +
weight decay), the parameters after the updates, the BN running statistics of both encoders
and the queue. With --bank and --test it then trains on to the end of the views and prints the
kNN curve of the reference started from our initial state.

    python bench/moco_reference/onestep.py --dump out/onestep --views out/views-seed1.arrow \
        [--bank testdata/fashion-mnist/train-00000{0,1}.tar.gz --test testdata/fashion-mnist/test-000000.tar.gz]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moco_reference as ref  # noqa: E402


def load_dump(prefix: str) -> dict[str, np.ndarray]:
    with open(prefix + ".json") as f:
        index = json.load(f)
    raw = open(prefix + ".bin", "rb").read()
    out = {}
    for e in index:
        shape = e["shape"] or []
        count = int(np.prod(shape)) if shape else 1
        a = np.frombuffer(raw, dtype=e["dtype"], count=count, offset=e["offset"])
        out[e["name"]] = a.reshape(shape)
    return out


def torch_name(go_name: str) -> tuple[str, str] | None:
    """/q/backbone/conv1/bn/gamma -> ("q", "backbone.4.weight"), with what maps the array."""
    parts = go_name.strip("/").split("/")
    enc, rest = parts[0], parts[1:]
    if enc == "opt":
        enc, rest = "opt:" + parts[1], parts[2:]
    if enc not in ("q", "k", "opt:q"):
        return None
    if rest[0] == "backbone":
        layer = int(rest[1][len("conv"):])
        if rest[2] == "weight":
            return enc, f"backbone.{3 * layer}.weight"
        field = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}[rest[3]]
        return enc, f"backbone.{3 * layer + 1}.{field}"
    fc = {"fc1": 0, "fc2": 2}[rest[1]]
    return enc, f"head.{fc}.{rest[2]}"


def to_torch_layout(name: str, a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(a.copy())
    if a.ndim == 4:  # conv [k, k, in, out] -> [out, in, k, k]
        return t.permute(3, 2, 0, 1).contiguous()
    if a.ndim == 2:  # dense [in, out] -> [out, in]
        return t.T.contiguous()
    return t


def tensors_of(model: ref.MoCo, enc: str) -> dict[str, torch.Tensor]:
    module = model.encoder_q if enc.endswith("q") else model.encoder_k
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / max(b.abs().max(), 1e-12))


def main(argv=None) -> int:
    replay(argv)
    return 0


def replay(argv=None) -> dict:
    """Runs the comparison of main (printing it) and returns report's figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", required=True, help="onestep's output folder")
    p.add_argument("--views", required=True, help="the views file onestep read")
    p.add_argument("--sgd-momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--lr", type=float, default=0.24, help="per 256")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--double", action="store_true", help="run the reference in float64: how far float32 "
                   "rounding alone takes it from ours")
    p.add_argument("--bank", nargs="*", help="with --test: after the compared steps, train on to the "
                   "end of the views with our permutations and print the kNN curve")
    p.add_argument("--test", nargs="*")
    args = p.parse_args(argv)
    if args.double:
        torch.set_default_dtype(torch.float64)

    before, after = load_dump(os.path.join(args.dump, "before")), load_dump(os.path.join(args.dump, "after"))
    with open(os.path.join(args.dump, "steps.json")) as f:
        go = json.load(f)
    torch.manual_seed(0)
    model = ref.MoCo(dim=before["/queue/keys"].shape[1], K=before["/queue/keys"].shape[0], m=0.99, T=0.2, bn_splits=4)
    with torch.no_grad():
        for name, a in before.items():
            mapped = torch_name(name)
            if mapped and not mapped[0].startswith("opt"):
                tensors_of(model, mapped[0])[mapped[1]].copy_(to_torch_layout(name, a))
        model.queue.copy_(torch.from_numpy(before["/queue/keys"].T.copy()))
    batches = ref.read_views(args.views)
    opt = torch.optim.SGD(model.encoder_q.parameters(), lr=args.lr, momentum=args.sgd_momentum, weight_decay=args.wd)
    knn_data = None
    if args.bank and args.test:
        knn_data = ref.read_shards(args.bank), ref.read_shards(args.test)
        classes = int(knn_data[0][1].max()) + 1
        knn = [ref.knn_accuracy(model.encoder_q, *knn_data, 200, 0.1, classes)]

    compared, n = len(go["losses"]), go["batch"]
    losses = []
    for i, (q, k, epoch) in enumerate(batches if knn_data else batches[:compared]):
        lr = args.lr * q.shape[0] / 256 * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
        if i < compared and abs(lr - go["lrs"][i]) > 1e-12:
            print(f"step {i + 1}: lr ours {go['lrs'][i]} reference {lr}")
        for g in opt.param_groups:
            g["lr"] = lr
        loss, _ = model(ref.normalize_uint8(q), ref.normalize_uint8(k), perm=torch.tensor(go["perms"][i], dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if i + 1 == compared:
            result = report(go, after, model, opt, losses, n)
        if knn_data and (i + 1 == len(batches) or batches[i + 1][2] != epoch):
            knn.append(ref.knn_accuracy(model.encoder_q, *knn_data, 200, 0.1, classes))
    if knn_data:
        print("reference from our initial state and key permutations, kNN at init and per epoch: "
              + " ".join(f"{a:.4f}" for a in knn))
        print("its loss at every 16th step: " + " ".join(f"{l:.4f}" for l in losses[15::16]))
        result["knn"] = knn
    return result


def report(go, after, model, opt, losses, n) -> dict:
    """Prints ours against the reference after the compared steps and returns the largest
    loss difference, key difference and relative tensor difference."""
    steps = len(losses)
    diffs = [a - b for a, b in zip(go["losses"], losses)]
    print(f"{steps} steps of batch {n}: loss of step 1 ours {go['losses'][0]:.6f} reference {losses[0]:.6f}; "
          f"step {steps} ours {go['losses'][-1]:.6f} reference {losses[-1]:.6f}; "
          f"max |loss diff| {max(abs(d) for d in diffs):.2e}")
    start = (steps - 1) * n % model.K
    keys_go = torch.tensor(go["keys"]).view(n, -1)
    keys_diff = float((keys_go - model.queue[:, start:start + n].T).abs().max())
    print(f"keys of step {steps} (max |diff|): {keys_diff:.2e}")
    print(f"queue (max |diff|): {float((torch.from_numpy(after['/queue/keys'].copy()) - model.queue.T).abs().max()):.2e}, "
          f"ptr ours {int(after['/queue/ptr'])} reference {model.queue_ptr}")
    print("max |ours - reference| / max |reference| per tensor after them:")
    worst = 0.0
    for name, a in after.items():
        mapped = torch_name(name)
        if not mapped:
            continue
        if mapped[0].startswith("opt"):
            param = dict(model.encoder_q.named_parameters())[mapped[1]]
            theirs = opt.state[param]["momentum_buffer"]  # gradient + wd * theta on step 1
            label = "SGD buffer " + mapped[1]
        else:
            theirs = tensors_of(model, mapped[0])[mapped[1]]
            label = f"{mapped[0]} {mapped[1]}"
        d = rel(to_torch_layout(name, a), theirs.detach())
        worst = max(worst, d)
        print(f"  {label:34s} {d:.2e}")
    print(f"worst relative difference {worst:.2e}", flush=True)
    return {"loss_diff": max(abs(d) for d in diffs), "keys_diff": keys_diff, "worst": worst,
            "ptr": (int(after["/queue/ptr"]), model.queue_ptr)}


if __name__ == "__main__":
    sys.exit(main())
