"""The MoCo v2 example's pieces, on the CPU with random views; needs torch and torchvision."""

import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

from helpers import require

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "train_moco.py")


def load_example():
    spec = importlib.util.spec_from_file_location("train_moco", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@require("torch", "torchvision")
class TrainMocoTest(unittest.TestCase):
    def test_split_batch_norm_uses_per_group_statistics(self):
        import torch

        moco = load_example()
        x = torch.randn(8, 3, 4, 4) * torch.arange(1, 9).view(8, 1, 1, 1)
        bn = moco.SplitBatchNorm(3, num_splits=2).train()
        got = bn(x)
        for group in (0, 1):  # sample n is in group n mod 2
            part = x[group::2]
            want = torch.nn.functional.batch_norm(part, None, None, training=True)
            self.assertLess((got[group::2] - want).abs().max().item(), 1e-4)

    def test_positive_logit_and_enqueued_keys(self):
        import math
        import torch

        moco = load_example()
        torch.manual_seed(0)
        model = moco.MoCo("resnet18", dim=16, K=64, m=0.99, T=0.2, mlp=True, bn_splits=1)
        before = model.queue.clone()
        q = torch.randn(16, 3, 32, 32)
        loss, logits = model(q, q.clone())
        self.assertEqual(tuple(logits.shape), (16, 65))
        # Same images, encoders equal at the start, whole-batch BN: the key shuffle must be
        # undone exactly, so each query's positive is itself (cosine 1, logit 1/T).
        self.assertGreater(logits[:, 0].min().item(), 0.999 / 0.2)
        self.assertTrue(math.isfinite(loss.item()))
        self.assertEqual(int(model.queue_ptr), 16)
        self.assertTrue(torch.equal(model.queue[:, 16:], before[:, 16:]))
        norms = model.queue[:, :16].norm(dim=0)
        self.assertLess((norms - 1).abs().max().item(), 1e-5)

    def test_synthetic_run(self):
        moco = load_example()
        moco.main(["--synthetic", "--steps", "2", "--arch", "resnet18", "--K", "64",
                   "--synthetic-batch", "16", "--synthetic-size", "32", "--log-every", "1"])

    def test_cosine_epochs_follow_the_global_batch(self):
        import contextlib
        import io
        import re

        moco = load_example()
        out = io.StringIO()
        # 48 images an epoch at a batch of 16: 3 steps an epoch, whatever 256 would give.
        with contextlib.redirect_stdout(out):
            moco.main(["--synthetic", "--steps", "4", "--arch", "resnet18", "--K", "64", "--epochs", "2",
                       "--epoch-images", "48", "--synthetic-batch", "16", "--synthetic-size", "32",
                       "--log-every", "1"])
        lrs = [float(x) for x in re.findall(r" lr (\S+) ", out.getvalue())]
        base = 0.03 * 16 / 256
        self.assertEqual(len(lrs), 4, out.getvalue())
        for got, want in zip(lrs, [base, base, base, base / 2]):  # epoch 1 of 2: cos(pi/2)
            self.assertAlmostEqual(got, want, places=6)

    def test_final_partial_batch_is_dropped(self):
        moco = load_example()
        full = moco.synthetic_batches
        taken = []

        def short_last(batch, size, steps):  # a stream without drop_last: 6 rows at the end
            yield from full(batch, size, 2)  # not the 10 steps --steps 0 asks of --synthetic: time
            yield from full(6, size, 1)
            taken.append("end")  # the stream was read to its end

        moco.synthetic_batches = short_last
        moco.main(["--synthetic", "--steps", "0", "--arch", "resnet18", "--K", "64",
                   "--synthetic-batch", "16", "--synthetic-size", "32", "--log-every", "100"])
        self.assertEqual(taken, ["end"])

    def test_ranks_stop_together(self):
        """Two CPU ranks (gloo) whose streams differ, in one pair of processes (torch is imported
        once): each scenario must end on both ranks, with the steps given."""
        scenarios = [
            # Batch i goes to rank i mod world: here rank 0 gets 3 batches, rank 1 gets 2.
            ("full(batch, size, 3 - rank)", "the rank with one batch more waited for the other forever",
             "done: 2 steps"),
            # A stream of exactly world batches, the last one short: rank 1's first batch is the
            # partial one. No rank may train on it (the ranks' batches would differ in size in
            # the key all-gathers), and none may train without the others.
            ("full(8 if rank == 0 else 6, size, 1)", "the ranks trained on batches of different sizes and hung",
             "done: 0 steps"),
        ]
        out = self.run_two_ranks([b for b, _, _ in scenarios])
        for n, (_, hang, want) in enumerate(scenarios):
            with self.subTest(scenario=n):
                part = out.get(n)
                self.assertIsNotNone(part, hang)
                self.assertIn(want, part)

    def run_two_ranks(self, scenarios):
        """Runs train_moco.py --synthetic as two CPU ranks (gloo) in a subprocess, so that a hang
        fails the test instead of hanging it: once per scenario, each an expression for rank r's
        batches (of full, the real synthetic_batches, batch, size and rank), each with its own
        process group. Returns rank 0's output of each scenario that ended, by number."""
        script = f"""
import importlib.util, os, socket, sys, torch.multiprocessing as mp

def run(rank, ports):
    spec = importlib.util.spec_from_file_location("train_moco", {EXAMPLE!r})
    moco = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(moco)
    full = moco.synthetic_batches
    for n, (port, scenario) in enumerate(zip(ports, {scenarios!r})):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          LOCAL_RANK=str(rank), WORLD_SIZE="2")
        moco.synthetic_batches = lambda batch, size, steps, scenario=scenario: eval(
            scenario, {{"full": full, "batch": batch, "size": size, "rank": rank}})
        moco.main(["--synthetic", "--arch", "resnet18", "--K", "64", "--synthetic-batch", "8",
                   "--synthetic-size", "32", "--log-every", "1"])
        if rank == 0:
            print(f"=== scenario {{n}} ended", flush=True)

if __name__ == "__main__":
    ports = []
    for _ in {scenarios!r}:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    mp.spawn(run, args=(ports,), nprocs=2)
"""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "two_ranks.py")
            with open(path, "w") as f:
                f.write(script)
            env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
            env["CUDA_VISIBLE_DEVICES"] = ""
            try:
                r = subprocess.run([sys.executable, path], env=env, capture_output=True, text=True, timeout=180)
                stdout, code, stderr = r.stdout, r.returncode, r.stderr
            except subprocess.TimeoutExpired as e:
                stdout, code, stderr = (e.stdout or b"").decode(), None, (e.stderr or b"").decode()
        parts, current = {}, []
        for line in stdout.splitlines():
            if line.startswith("=== scenario "):
                parts[int(line.split()[2])] = "\n".join(current)
                current = []
            else:
                current.append(line)
        if code is not None:
            self.assertEqual(code, 0, stderr[-3000:])
        return parts


if __name__ == "__main__":
    unittest.main()
