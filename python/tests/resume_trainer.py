"""Run by test_resume.py, alone or as --ranks N processes (gloo, CPU): a small data-parallel training
loop over torchdata's StatefulDataLoader(PipelineDataset) that checkpoints every --every steps
(model, optimiser, the loader's state and the rows trained on, per rank) and resumes from its
checkpoint when there is one; --kill-after N makes rank 0 SIGKILL itself after step N of a fresh
run, to stand for a crash. At the end each rank writes DIR/out.rank{R}.json: the rows it trained
on (sample index and a digest of its q and k pixels), per step, and a digest of the model.

    resume_trainer.py ADDRESS DIR [--ranks 2] [--producer JSON] [--every N] [--kill-after N]

--ranks forks the ranks from this process, which has imported torch once (torchrun would import
it in three processes: most of the test's time), and sets the variables torchrun sets; as with
torchrun, one rank that dies ends the others and the job fails.
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pipeline_client import PipelineDataset, normalize, write_resume_file  # noqa: E402


def rows(batch):
    """[index, digest of the row's q and k pixels] per row."""
    out = []
    for i, index in enumerate(batch["index"].tolist()):
        h = hashlib.sha256(batch["q"][i].numpy().tobytes())
        h.update(batch["k"][i].numpy().tobytes())
        out.append([index, h.hexdigest()[:16]])
    return out


def save(path, obj):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)  # a kill never leaves half a checkpoint


def launch(ranks):
    """Forks the ranks, waits for them; the first to fail (or be killed) ends the others."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    children = {}
    for rank in range(ranks):
        pid = os.fork()
        if pid == 0:
            os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(ranks),
                              MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            code = 1
            try:
                train()
                code = 0
            finally:
                os._exit(code)
        children[pid] = rank
    failed = False
    while children:
        pid, status = os.wait()
        del children[pid]
        if status != 0 and not failed:
            failed = True
            for other in children:
                os.kill(other, signal.SIGTERM)
    sys.exit(1 if failed else 0)


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("dir")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--producer", help="JSON list: the command rank 0's dataset starts the producer with")
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--kill-after", type=int, default=0)
    return p.parse_args()


def train():
    from torchdata.stateful_dataloader import StatefulDataLoader

    args = parse()
    distributed = int(os.environ.get("WORLD_SIZE", 1)) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 10))
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    producer_log = open(os.path.join(args.dir, "producer.log"), "a")
    ds = PipelineDataset(args.address, timeout=60, producer=json.loads(args.producer) if args.producer else None,
                         producer_stderr=producer_log)
    loader = StatefulDataLoader(ds, batch_size=None, num_workers=0)

    ckpt = os.path.join(args.dir, f"ckpt.rank{rank}.pt")
    history, step, resumed = [], 0, os.path.exists(ckpt)
    if resumed:
        c = torch.load(ckpt)
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        loader.load_state_dict(c["loader"])
        history, step = c["history"], c["step"]
    for batch in loader:
        x = torch.cat([normalize(batch["q"]), normalize(batch["k"])])
        loss = torch.nn.functional.cross_entropy(net(x), batch["label"].repeat(2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(rows(batch))
        step += 1
        if step % args.every == 0:
            state = loader.state_dict()
            save(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(), "loader": state,
                        "history": history, "step": step})
            if rank == 0:  # for a producer started by hand: pipeline run ... --resume DIR/resume.json
                write_resume_file(state["dataset_state"], os.path.join(args.dir, "resume.json"))
        if step == args.kill_after and rank == 0 and not resumed:
            os.kill(os.getpid(), signal.SIGKILL)
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values()))
    with open(os.path.join(args.dir, f"out.rank{rank}.json"), "w") as f:
        json.dump({"history": history, "model": digest.hexdigest(), "resumed": resumed}, f)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    n = parse().ranks
    launch(n) if n > 1 else train()
