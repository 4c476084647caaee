"""Run by test_pipeline_run.py under torchrun (gloo, CPU): each rank reads its share of the
stream at ADDRESS through PipelineDataset inside a small training loop, then the ranks gather
what they saw and rank 0 writes it as JSON to OUT: {"indices": [[rank 0's], [rank 1's]],
"batches": [n0, n1]}.

    python -m torch.distributed.run --standalone --nproc_per_node 2 torchrun_ranks.py ADDRESS OUT
"""

import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pipeline_client import PipelineDataset, normalize  # noqa: E402


def main(address: str, out: str) -> None:
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    indices, batches = [], 0
    # Rank and world come from torch.distributed: nothing to pass.
    for batch in torch.utils.data.DataLoader(PipelineDataset(address), batch_size=None, num_workers=0):
        loss = torch.nn.functional.cross_entropy(model(normalize(batch["q"])), batch["label"])
        opt.zero_grad()
        loss.backward()  # no DDP: the ranks' batch counts may differ by one
        opt.step()
        indices += batch["index"].tolist()
        batches += 1
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, (indices, batches))
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump({"indices": [e[0] for e in everyone], "batches": [e[1] for e in everyone]}, f)
    # Both ranks leave the last collective before either tears gloo down: one rank aborted at
    # exit ("terminate called without an active exception") in 1 run of a few without it.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
