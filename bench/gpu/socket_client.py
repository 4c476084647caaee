"""GPU check: read batches from the pipeline's socket sink with the Python client, move them to
the GPU and normalise them there; print one JSON line with samples/s and what was read."""
import json, sys, time

import torch
from pipeline_client import PipelineDataset, normalize, to_device

address = sys.argv[1]
rows = batches = 0
shapes = {}
t0 = None
for batch in PipelineDataset(address):
    gpu = to_device(batch, "cuda")
    q, k = normalize(gpu["q"]), normalize(gpu["k"])
    torch.cuda.synchronize()
    if t0 is None:
        t0 = time.perf_counter()  # from the first batch on: the producer's start-up excluded
    else:
        rows += q.shape[0]
    batches += 1
    shapes = {"q": list(q.shape), "k": list(k.shape), "q_dtype": str(q.dtype)}
dt = time.perf_counter() - t0 if t0 else 0
print(json.dumps({"batches": batches, "rows_after_first": rows, "seconds": dt,
                  "samples_per_s": rows / dt if dt else 0, **shapes}))
if batches == 0:
    sys.exit("socket_client: the stream ended without a batch")
