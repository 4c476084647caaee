#!/usr/bin/env python3
"""MoCo v2 pre-training fed by the pipeline (docs/transport.md).

Minimal but complete: ResNet encoder with the MoCo v2 MLP head, momentum key encoder, a
K-entry queue of negatives, InfoNCE with temperature 0.2, SGD 0.03 / 0.9 / 1e-4 with a cosine
schedule per epoch, and Shuffle BN: across GPUs under torchrun (as in the reference), or on one
GPU with split batch norm (the reference's single-device substitute, see
shared/docs/moco-v2-reference.md section 3).

The pipeline delivers the two augmented views as uint8 HWC columns "q" and "k"; they are
copied to the GPU as uint8 (4x less than float) and normalised there.

One GPU, pipeline started beside it:
    pipeline run moco.yaml &      # sink: arrowsocket on unix:///tmp/p.sock
    python3 train_moco.py --address unix:///tmp/p.sock
Several GPUs (each rank reads its own share of the stream):
    torchrun --nproc_per_node 8 train_moco.py --address unix:///tmp/p.sock
Launching the producer from here:
    python3 train_moco.py --address unix:///tmp/p.sock --producer "pipeline run moco.yaml"
Checkpoints, and an exact resume after a crash (the same samples and views as if never stopped):
    python3 train_moco.py ... --checkpoint ckpt.pt --checkpoint-every 500 [--resume]
with --producer the resumed producer is started at the checkpoint's position; a producer
started by hand takes it from the file written beside the checkpoint:
    pipeline run moco.yaml --resume ckpt.pt.resume.json
No pipeline at all (random views, to check the training loop):
    python3 train_moco.py --synthetic --steps 20 --arch resnet18
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from contextlib import closing, nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pipeline_client import torch_io, write_resume_file  # noqa: E402


class SplitBatchNorm(nn.BatchNorm2d):
    """Batch norm with statistics per group of samples (sample n in group n mod splits), so one
    GPU imitates per-GPU BN; running statistics are averaged over groups. Eval mode is plain BN."""

    def __init__(self, num_features, num_splits, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, x):
        n, c, h, w = x.shape
        if not self.training or self.num_splits == 1:
            return super().forward(x)
        if n % self.num_splits:
            raise ValueError(f"batch {n} is not a multiple of bn splits {self.num_splits}")
        s = self.num_splits
        mean_split = self.running_mean.repeat(s)
        var_split = self.running_var.repeat(s)
        # [N, C, H, W] -> [N/S, S*C, H, W]: row n lands in group n mod S.
        out = F.batch_norm(x.reshape(-1, c * s, h, w), mean_split, var_split,
                           self.weight.repeat(s), self.bias.repeat(s), True, self.momentum, self.eps)
        self.running_mean.data.copy_(mean_split.view(s, c).mean(dim=0))
        self.running_var.data.copy_(var_split.view(s, c).mean(dim=0))
        return out.view(n, c, h, w)


def make_encoder(arch: str, dim: int, mlp: bool, bn_splits: int) -> nn.Module:
    import torchvision  # the example's only extra dependency

    norm = (lambda c: SplitBatchNorm(c, bn_splits)) if bn_splits > 1 else nn.BatchNorm2d
    net = getattr(torchvision.models, arch)(num_classes=dim, norm_layer=norm)
    if mlp:
        hidden = net.fc.weight.shape[1]
        net.fc = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True), net.fc)
    return net


class MoCo(nn.Module):
    def __init__(self, arch="resnet50", dim=128, K=65536, m=0.999, T=0.2, mlp=True, bn_splits=1):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = make_encoder(arch, dim, mlp, bn_splits)
        self.encoder_k = make_encoder(arch, dim, mlp, bn_splits)
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self):
        # Parameters only: the key encoder's BN buffers come from its own forward passes.
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.mul_(self.m).add_(pq.data, alpha=1 - self.m)

    @torch.no_grad()
    def _enqueue(self, keys):
        keys = gather(keys)
        n, ptr = keys.shape[0], int(self.queue_ptr)
        assert self.K % n == 0, f"queue size {self.K} must be a multiple of the global batch {n}"
        self.queue[:, ptr:ptr + n] = keys.T
        self.queue_ptr[0] = (ptr + n) % self.K

    @torch.no_grad()
    def _keys(self, im_k):
        """Keys with Shuffle BN: across ranks under DDP, else a permutation within the batch
        (which only matters with split BN)."""
        if dist.is_initialized() and dist.get_world_size() > 1:
            x = gather(im_k)
            perm = torch.randperm(x.shape[0], device=x.device)
            dist.broadcast(perm, src=0)
            n, r = im_k.shape[0], dist.get_rank()
            mine = perm.view(dist.get_world_size(), -1)[r]
            k_mixed = gather(F.normalize(self.encoder_k(x[mine]), dim=1))  # row j: sample perm[j]
            k_all = torch.empty_like(k_mixed)
            k_all[perm] = k_mixed
            return k_all[r * n:(r + 1) * n]
        perm = torch.randperm(im_k.shape[0], device=im_k.device)
        k = F.normalize(self.encoder_k(im_k[perm]), dim=1)
        return k[torch.argsort(perm)]

    def forward(self, im_q, im_k):
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update()
            k = self._keys(im_k)
        # The similarities in float32, also under --bf16: a bf16 cosine is off by up to ~0.004,
        # 0.02 once divided by the temperature.
        with torch.autocast(q.device.type, enabled=False):
            q32 = q.float()
            l_pos = torch.einsum("nc,nc->n", q32, k.float()).unsqueeze(-1)
            l_neg = torch.einsum("nc,ck->nk", q32, self.queue.clone().detach())
            logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        self._enqueue(k)
        return F.cross_entropy(logits, labels), logits


@torch.no_grad()
def gather(x):
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def synthetic_batches(batch, size, steps):
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        views = torch.randint(0, 256, (2, batch, size, size, 3), dtype=torch.uint8, generator=g)
        yield {"q": views[0], "k": views[1], "label": torch.zeros(batch, dtype=torch.int64)}


def save_checkpoint(path, model, opt, step, data_state):
    """Model, optimiser, step, RNG (the key shuffle draws from it) and the data position,
    replaced atomically: a crash never leaves half a checkpoint."""
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None, "data": data_state}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path, model, opt):
    """Restores what save_checkpoint saved; returns the step and the data position."""
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["data"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="unix:///tmp/p.sock")
    p.add_argument("--producer", help="command that starts the pipeline, run as a subprocess by rank 0 "
                   "(with --resume at the checkpoint's position when resuming)")
    p.add_argument("--synthetic", action="store_true", help="random views instead of the pipeline")
    p.add_argument("--synthetic-batch", type=int, default=32)
    p.add_argument("--synthetic-size", type=int, default=64)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--K", type=int, default=65536)
    p.add_argument("--m", type=float, default=0.999)
    p.add_argument("--T", type=float, default=0.2)
    p.add_argument("--no-mlp", dest="mlp", action="store_false")
    p.add_argument("--bn-splits", type=int, default=8, help="single GPU only: split BN groups")
    p.add_argument("--lr", type=float, default=0.03, help="for a global batch of 256, scaled linearly")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=200, help="length of the cosine schedule")
    p.add_argument("--epoch-images", type=int, default=1281167, help="images in one epoch (ImageNet-1k train)")
    p.add_argument("--steps-per-epoch", type=int, default=0,
                   help="steps in one epoch of the schedule (0: --epoch-images / the global batch, "
                        "5004 at 256)")
    p.add_argument("--steps", type=int, default=0,
                   help="stop after this many steps, counting those before a resume (0: the stream's "
                        "end); a producer not started by --producer then sees its consumer leave early "
                        "and fails its run")
    p.add_argument("--seed", type=int, default=0, help="for the model's initialisation and the key shuffle")
    p.add_argument("--checkpoint", help="save the training and data state here (PATH.rankR for rank R > 0 "
                   "under torchrun) every --checkpoint-every steps, and PATH.resume.json for "
                   "`pipeline run --resume`")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint, if it exists")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--log-every", type=int, default=10)
    args = p.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", 1)) > 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    end_group = None
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        # Ranks may hold one batch more than others (batch i goes to rank i mod world): they
        # agree on the CPU, each step, whether all of them have one.
        end_group = dist.new_group(backend="gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.manual_seed(args.seed)

    model = MoCo(args.arch, args.dim, args.K, args.m, args.T, args.mlp,
                 bn_splits=1 if distributed else args.bn_splits).to(device)
    model = model.to(memory_format=torch.channels_last)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.index is not None else None)
    # Weight decay on every query parameter, BN and biases included (the reference does).
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                          momentum=args.momentum, weight_decay=args.wd)

    if args.synthetic:
        batches = synthetic_batches(args.synthetic_batch, args.synthetic_size, args.steps or 10)
    else:
        from pipeline_client.dataset import PipelineDataset

        # Rank 0 starts the producer when the stream is first read, and stops it when leaving.
        batches = PipelineDataset(args.address, rank, world, producer=args.producer)
    ckpt = args.checkpoint and (args.checkpoint if rank == 0 else f"{args.checkpoint}.rank{rank}")
    step = 0
    if args.resume and ckpt and os.path.exists(ckpt):
        step, data_state = load_checkpoint(ckpt, model.module if distributed else model, opt)
        if data_state is not None:
            batches.load_state_dict(data_state)  # the stream resumes after the checkpoint's batch
        if rank == 0:
            print(f"resumed from {ckpt} at step {step}", flush=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else nullcontext()

    # Closing the stream (at the end, at --steps, on an error) stops a producer the dataset
    # started before it sees its consumer gone; one started by hand fails its run when left early.
    with closing(iter(batches)) as it:
        first, wait_s, t_start, lr_scale, steps_per_epoch = step, 0.0, time.perf_counter(), None, 0
        rows = None
        while not args.steps or step < args.steps:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                batch = None
            if batch is not None and rows is not None and batch["q"].shape[0] != rows:
                # The stream's final partial batch (a pipeline without batch.drop_last): dropped,
                # as the reference's drop_last does (K must stay a multiple of the batch). Read
                # on to the end: leaving the stream early would fail the producer's run.
                continue
            if distributed:  # a rank training alone would wait for the others forever
                # MIN of [rows, -rows]: the fewest and (negated) the most rows of any rank. No
                # batch on a rank ends the run; so do batches of different sizes (the short last
                # one in the first round, before `rows` is known): the model needs equal ones.
                n = batch["q"].shape[0] if batch is not None else 0
                more = torch.tensor([n, -n])
                dist.all_reduce(more, op=dist.ReduceOp.MIN, group=end_group)
                if more[0].item() == 0 or more[0].item() != -more[1].item():
                    for _ in it:  # read to the end: leaving early would fail the producer's run
                        pass
                    break
            if batch is None:
                break
            rows = batch["q"].shape[0]
            if step == first:  # the first batch waits for the producer to start: not counted
                t_start = time.perf_counter()
            else:
                wait_s += time.perf_counter() - t0
            batch = torch_io.to_device(batch, device)
            if lr_scale is None:  # linear scaling from the reference's batch of 256
                global_batch = batch["q"].shape[0] * world
                lr_scale = global_batch / 256
                # An epoch is a number of images: its steps depend on the global batch.
                steps_per_epoch = args.steps_per_epoch or max(args.epoch_images // global_batch, 1)
            epoch = step // steps_per_epoch
            lr = args.lr * lr_scale * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
            for g in opt.param_groups:
                g["lr"] = lr
            im_q, im_k = torch_io.normalize(batch["q"]), torch_io.normalize(batch["k"])
            with autocast:
                loss, logits = model(im_q, im_k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if ckpt and step % args.checkpoint_every == 0:
                data_state = None if args.synthetic else batches.state_dict()
                save_checkpoint(ckpt, model.module if distributed else model, opt, step, data_state)
                if rank == 0 and data_state is not None:
                    write_resume_file(data_state, args.checkpoint + ".resume.json")
            if step % args.log_every == 0 and rank == 0:
                acc = (logits.argmax(dim=1) == 0).float().mean().item()
                elapsed = time.perf_counter() - t_start
                print(f"step {step} loss {loss.item():.4f} top1 {acc:.3f} lr {lr:.4g} "
                      f"{(step - first) * batch['q'].shape[0] * world / elapsed:.0f} twin views/s "
                      f"data wait {100 * wait_s / elapsed:.1f}%", flush=True)
    if rank == 0:
        print(f"done: {step} steps, data wait {wait_s:.2f}s of {time.perf_counter() - t_start:.2f}s", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
