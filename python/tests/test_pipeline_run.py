"""End to end on the CPU: the real `pipeline run` (bin/pipeline, built by make test, or
$PIPELINE_BIN) on the bundled testdata/imagenet-like shards (50 photos, 3 shards) into the
Python client inside PyTorch loops: the socket and the Flight sink, two ranks under torchrun,
a slow consumer, a consumer killed mid-stream, train_moco.py, and the errors bad input gets.
Views are 32x32 (64x64 for the slow consumer) so that the suite stays short on two cores."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from helpers import REPO, require, require_pipeline

PIPELINE = os.environ.get("PIPELINE_BIN") or os.path.join(REPO, "bin", "pipeline")
CONFIG = os.path.join(REPO, "examples", "train.yaml")
SAMPLES = 50  # in testdata/imagenet-like
SHARDS = os.path.join(REPO, "testdata", "imagenet-like", "train-{000000..000002}.tar")  # whatever the cwd
SMALL = [f"source.shards={SHARDS}", "views={recipe: mocov2, size: 32}", "epochs=1", "batch.size=8",
         "workers.augment=1"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """`pipeline run examples/train.yaml` with a socket or Flight sink, its summary and stderr in
    a temporary folder."""

    def __init__(self, test, kind="arrow-socket", world=1, sets=(), queue_bytes=None):
        from pipeline_client.producer import Producer, pipeline_run

        d = tempfile.TemporaryDirectory()
        test.addCleanup(d.cleanup)
        self.dir = d.name
        if kind == "flight":
            self.address = f"grpc://127.0.0.1:{free_port()}"
            path = self.address[len("grpc://"):]
        else:
            self.address = path = f"unix://{d.name}/p.sock"
        sink = f"sink={{kind: {kind}, path: '{path}', world_size: {world}"
        sink += f", queue_bytes: {queue_bytes}}}" if queue_bytes else "}"
        self.summary_path = os.path.join(d.name, "summary.json")
        self.stderr = open(os.path.join(d.name, "stderr"), "w+")
        test.addCleanup(self.stderr.close)
        cmd = pipeline_run(CONFIG, sink, *SMALL, *sets, summary_json=self.summary_path, binary=PIPELINE)
        self.producer = Producer(cmd, exit_timeout=60, stderr=self.stderr)

    def summary(self):
        with open(self.summary_path) as f:
            return json.load(f)

    def log(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()


def tiny_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, 10))


@require_pipeline(PIPELINE)
@require("numpy", "pyarrow", "pyarrow.flight", "torch")
class PipelineIntoTorchTest(unittest.TestCase):
    def train(self, kind):
        """A PyTorch loop over DataLoader(PipelineDataset): every sample of the run once, as
        uint8 twin views, and the model learns from them."""
        import torch
        from pipeline_client import PipelineDataset, normalize

        run = Run(self, kind)
        model = tiny_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        before = [p.detach().clone() for p in model.parameters()]
        seen, steps = [], 0
        with run.producer:
            loader = torch.utils.data.DataLoader(PipelineDataset(run.address, 0, 1, timeout=30),
                                                 batch_size=None, num_workers=0)
            for batch in loader:
                self.assertEqual(batch["q"].dtype, torch.uint8)
                self.assertEqual(tuple(batch["q"].shape[1:]), (32, 32, 3))
                self.assertEqual(batch["k"].shape, batch["q"].shape)
                self.assertFalse(torch.equal(batch["q"], batch["k"]), "q and k are the same views")
                x = torch.cat([normalize(batch["q"]), normalize(batch["k"])])
                loss = torch.nn.functional.cross_entropy(model(x), batch["label"].repeat(2))
                self.assertTrue(torch.isfinite(loss))
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += batch["index"].tolist()
                self.assertTrue(((batch["label"] >= 0) & (batch["label"] < 10)).all())
                steps += 1
        self.assertEqual(len(seen), SAMPLES)
        self.assertEqual(len(set(seen)), SAMPLES, "a sample came twice")
        s = run.summary()
        self.assertEqual((s["emitted"], s["batches"], s["sink"]["batches"]), (SAMPLES, steps, steps))
        self.assertEqual(s["sink"]["ranks"][0]["batches_sent"], steps)
        self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, model.parameters())))

    def test_socket_sink(self):
        self.train("arrow-socket")

    def test_flight_sink(self):
        self.train("flight")

    def test_two_ranks_under_torchrun(self):
        """torchrun, gloo on the CPU: each rank its own disjoint share, batch i on rank i % 2,
        every sample once in all."""
        run = Run(self, world=2)
        out = os.path.join(run.dir, "ranks.json")
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(REPO, "python", "tests", "torchrun_ranks.py"), run.address, out]
        with run.producer:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        with open(out) as f:
            got = json.load(f)
        a, b = (set(x) for x in got["indices"])
        self.assertEqual(len(a) + len(b), SAMPLES)
        self.assertFalse(a & b, "a sample went to both ranks")
        batches = -(-SAMPLES // 8)  # 7, the last one of 2 rows
        self.assertEqual(got["batches"], [(batches + 1) // 2, batches // 2])
        sent = [r["batches_sent"] for r in run.summary()["sink"]["ranks"]]
        self.assertEqual(sent, got["batches"])

    def test_slow_consumer_slows_the_producer_in_bounded_memory(self):
        """A consumer taking 60 ms a batch: the producer waits in Write for most of the run,
        instead of running ahead and holding the stream: its accounted memory (batches queued
        for the consumer included) peaks at a small part of what it sent."""
        from pipeline_client import PipelineDataset

        run = Run(self, sets=["views={recipe: mocov2, size: 64}", "epochs=8"], queue_bytes=400000)
        nap, n, stream_bytes = 0.06, 0, 0
        with run.producer:
            for batch in PipelineDataset(run.address, 0, 1, prefetch=1, timeout=30):
                time.sleep(nap)
                n += 1
                stream_bytes += batch["q"].numel() + batch["k"].numel()
        s = run.summary()
        self.assertEqual(s["emitted"], 8 * SAMPLES)
        self.assertEqual(n, s["batches"])
        slept = n * nap
        # The producer ends once the last batches are queued for the consumer: those the queue,
        # the kernel's socket buffer and the client's prefetch hold, 8 at most here.
        self.assertGreaterEqual(s["seconds"], slept - 8 * nap, "the producer ran ahead of its consumer")
        self.assertGreater(s["sink"]["write_blocked_s"], 0.5 * slept, "the producer was not held back")
        self.assertLess(s["memory_peak"], stream_bytes / 4, f"peak {s['memory_peak']} of a {stream_bytes}-byte stream")
        self.assertLessEqual(s["memory_peak"], s["memory_budget"])

    def test_consumer_killed_mid_stream(self):
        for kind in ("arrow-socket", "flight"):
            with self.subTest(kind=kind):
                self.kill_rank_0(kind)

    def kill_rank_0(self, kind):
        """Rank 0 reads 2 batches, then is SIGKILLed. The producer fails its run naming the lost
        rank; rank 1 reads what it was sent, then gets StreamAborted with that cause; nothing
        hangs."""
        from pipeline_client import StreamAborted
        from pipeline_client.stream import open_batches

        # Rank 0's share (25 batches of 442 KB) must outgrow what the kernel's and gRPC's buffers
        # take while it sleeps: a rank that dies after its last batch went into them is not noticed.
        run = Run(self, kind, world=2, sets=["views={recipe: mocov2, size: 96}", "epochs=8"], queue_bytes=100000)
        reader = ("import sys, time\nfrom pipeline_client.stream import open_batches\n"
                  f"for i, b in enumerate(open_batches({run.address!r}, 0, 2, timeout=30)):\n"
                  "    print('batch', i, flush=True)\n"
                  "    if i == 1:\n"
                  "        time.sleep(600)\n")
        env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "python")}
        rank1 = {"batches": 0, "error": None}

        def read_rank_1():
            try:
                for _ in open_batches(run.address, 1, 2, timeout=30):
                    rank1["batches"] += 1
            except Exception as e:  # checked below
                rank1["error"] = e

        with run.producer:
            consumer = subprocess.Popen([sys.executable, "-c", reader], env=env, stdout=subprocess.PIPE, text=True)
            t = threading.Thread(target=read_rank_1)
            t.start()
            try:
                self.assertEqual(consumer.stdout.readline(), "batch 0\n")
                self.assertEqual(consumer.stdout.readline(), "batch 1\n")
                # Rank 1 must be connected and reading before rank 0 dies; a rank that connects
                # only after the failure gets the aborted stream at once, with nothing to read.
                deadline = time.monotonic() + 30
                while rank1["batches"] < 1 and rank1["error"] is None and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                consumer.send_signal(signal.SIGKILL)
                consumer.wait()
                consumer.stdout.close()
            t.join(60)
            self.assertFalse(t.is_alive(), "rank 1 still waits after rank 0 was killed")
            code = run.producer.wait(timeout=60)
            run.producer.stopped = True  # its failure is the point: checked here
        self.assertNotEqual(code, 0, "the producer ended cleanly after losing a consumer")
        log = run.log()
        self.assertRegex(log, r"rank 0 (consumer|client) .*lost after \d+ batches", log[-2000:])
        self.assertIsInstance(rank1["error"], StreamAborted, repr(rank1["error"]))
        self.assertRegex(str(rank1["error"]), "rank 0 .*lost")
        self.assertGreaterEqual(rank1["batches"], 1)


@require_pipeline(PIPELINE)
@require("pyarrow", "torch", "torchvision")
class TrainMocoFromSocketTest(unittest.TestCase):
    def test_trains_on_the_whole_stream_and_resumes_exactly(self):
        """train_moco.py --producer 'pipeline run ...': in this process (torch is imported once),
        the producer started by the example and checked by it. Then stopped after step 3 with
        --checkpoint-every 2, and resumed from step 2's checkpoint (its producer started with
        --resume): steps 3 to 6 have the uninterrupted run's losses, to the last printed digit
        (the same rows, views, model and key shuffle)."""
        import contextlib
        import io

        from test_train_moco import load_example

        run = Run(self)
        ckpt = os.path.join(run.dir, "ckpt.pt")

        def train(*args):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                load_example().main(["--address", run.address, "--producer", shlex.join(run.producer.command),
                                     "--arch", "resnet18", "--K", "64", "--bn-splits", "2", "--log-every", "1",
                                     "--epochs", "1", "--epoch-images", str(SAMPLES), *args])
            losses = {int(line.split()[1]): line.split()[3] for line in out.getvalue().splitlines()
                      if line.startswith("step ")}
            return out.getvalue(), losses

        log, losses = train()
        # 50 samples in batches of 8: 6 full ones trained on, the last of 2 rows dropped.
        self.assertIn("done: 6 steps", log)
        self.assertEqual(sorted(losses), [1, 2, 3, 4, 5, 6], log)
        self.assertTrue(all(0 < float(x) < 100 for x in losses.values()), losses)
        self.assertEqual(run.summary()["sink"]["batches"], 7)

        log, first = train("--steps", "3", "--checkpoint", ckpt, "--checkpoint-every", "2")
        self.assertIn("done: 3 steps", log)
        self.assertEqual(first, {k: losses[k] for k in (1, 2, 3)}, "the same seed trains otherwise")
        with open(ckpt + ".resume.json") as f:  # step 2's batch, batch 1, is its own round
            self.assertEqual(json.load(f), {"position": {"epoch": 0, "offset": 8}, "batches": 1})
        log, rest = train("--checkpoint", ckpt, "--resume")
        self.assertIn(f"resumed from {ckpt} at step 2", log)
        self.assertIn("done: 6 steps", log)
        self.assertEqual(rest, {k: losses[k] for k in (3, 4, 5, 6)}, log)


@require_pipeline(PIPELINE)
@require("pyarrow", "torch")
class BadInputTest(unittest.TestCase):
    def test_wrong_address_names_it(self):
        from pipeline_client import PipelineDataset

        with tempfile.TemporaryDirectory() as d:
            for address in (f"unix://{d}/nobody.sock", f"tcp://127.0.0.1:{free_port()}",
                            f"grpc://127.0.0.1:{free_port()}"):
                with self.subTest(address=address):
                    with self.assertRaisesRegex(OSError, f"no producer at {address} after 0.3s"):
                        next(iter(PipelineDataset(address, 0, 1, timeout=0.3)))
        with self.assertRaisesRegex(ValueError, "want unix:///path"):
            next(iter(PipelineDataset("/tmp/p.sock", 0, 1)))

    def test_normalised_float_batches(self):
        """batch.normalize: true makes float32 views: refused, saying which setting to change;
        leaving the stream then fails the producer's run, which says why."""
        from pipeline_client import PipelineDataset

        run = Run(self, sets=["batch.normalize=true"])
        with run.producer:
            with self.assertRaisesRegex(ValueError, "normalised float32.*set batch.normalize: false"):
                next(iter(PipelineDataset(run.address, 0, 1, timeout=30)))
            code = run.producer.wait(timeout=60)
            run.producer.stopped = True
        self.assertNotEqual(code, 0)
        self.assertIn("rank 0 consumer", run.log())

    def test_other_schema_version(self):
        """A producer of another version (its schema metadata says 2, written by pyarrow behind
        the socket protocol): refused with both versions named."""
        from pipeline_client import PipelineDataset
        from test_stream import FakeSocketProducer, make_batches

        batches = [b.replace_schema_metadata({"pipeline.schema_version": "2"}) for b in make_batches(3)]
        p = FakeSocketProducer(batches, "ok")
        self.addCleanup(p.close)
        self.assertEqual(batches[0].schema.metadata, {b"pipeline.schema_version": b"2"})
        with self.assertRaisesRegex(ValueError, "schema version 2, this client reads 1"):
            next(iter(PipelineDataset(p.address, 0, 1, timeout=5)))


if __name__ == "__main__":
    unittest.main()
