"""Exact resume of the PyTorch path: a rank's state against the batches' positions (no
dependencies), and end to end: resume_trainer.py, a training loop over torchdata's
StatefulDataLoader(PipelineDataset) fed by the real `pipeline run`, SIGKILLed mid-epoch and
restarted from its last checkpoint, trains on the same rows and pixels, and ends with the same
model, as an uninterrupted run: one and two ranks (gloo), socket and Flight, the
producer started by the dataset itself or by hand with --resume."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from helpers import REPO, require, require_pipeline
from test_pipeline_run import PIPELINE, Run

TRAINER = os.path.join(REPO, "python", "tests", "resume_trainer.py")
# 2 epochs of 50 samples in batches of 8, the last partial one dropped: 12 batches, 6 an epoch.
SETS = ["epochs=2", "batch.drop_last=true"]
STEPS = {1: 12, 2: 6}  # per rank


def meta(batch, offset, round_batches, round_offset):
    return {"pipeline.batch": str(batch), "pipeline.position": json.dumps({"epoch": 0, "offset": offset}),
            "pipeline.round_start": json.dumps({"position": {"epoch": 0, "offset": round_offset},
                                                "batches": round_batches})}


class RankStateTest(unittest.TestCase):
    """Rank 1 of 2, batches of 4 samples: batch b ends at 4b+4, its round starts at batch b - b%2."""

    def took_batches(self, *batches):
        from pipeline_client.resume import RankState

        s = RankState.fresh(1, 2)
        for b in batches:
            s.took(meta(b, 4 * b + 4, b - b % 2, 4 * (b - b % 2)))
        return s

    def test_state_round_trip_and_resume_file(self):
        from pipeline_client.resume import RankState, write_resume_file

        s = self.took_batches(1, 3)
        state = json.loads(json.dumps(s.state_dict()))  # plain JSON values: any checkpoint holds them
        self.assertEqual(state["next_batch"], 5)
        self.assertEqual(RankState.from_state_dict(state, 1, 2), s)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "resume.json")
            self.assertTrue(write_resume_file(state, path))
            with open(path) as f:
                self.assertEqual(json.load(f), {"position": {"epoch": 0, "offset": 8}, "batches": 2})
            self.assertFalse(write_resume_file(RankState.fresh(1, 2).state_dict(), path + ".fresh"))
            self.assertFalse(os.path.exists(path + ".fresh"))
        with self.assertRaisesRegex(ValueError, "rank 1 of 2's, this is rank 0 of 2"):
            RankState.from_state_dict(state, 0, 2)

    def test_resumed_stream_drops_what_was_taken(self):
        s = self.took_batches(1, 3)
        self.assertFalse(s.keep(meta(3, 16, 2, 8)))  # the round resent from its start
        self.assertTrue(s.keep(meta(5, 24, 4, 16)))
        self.assertTrue(s.keep(meta(7, 32, 6, 24)))

    def test_mismatches(self):
        from pipeline_client.resume import ResumeMismatch

        with self.assertRaisesRegex(ResumeMismatch, "needs batch 5 next, the producer sent 7.*5..6 would be lost"):
            self.took_batches(1, 3).keep(meta(7, 32, 6, 24))
        with self.assertRaisesRegex(ResumeMismatch, "batch 3 ends at .* now, at .* in the checkpoint"):
            self.took_batches(1, 3).keep(meta(3, 17, 2, 8))
        with self.assertRaisesRegex(ResumeMismatch, "got batch 4: the producer deals to another world size"):
            self.took_batches(1, 3).keep(meta(4, 20, 4, 16))
        with self.assertRaisesRegex(ResumeMismatch, "sends no positions"):
            self.took_batches(1).keep({})
        s = self.took_batches()
        self.assertTrue(s.keep({}))  # a fresh start reads any producer
        s.took({})
        with self.assertRaisesRegex(RuntimeError, "carry no positions"):
            s.state_dict()


def address_free(address, timeout=60):
    """Waits until nothing listens at address any more (a producer left by a killed trainer
    ends once it sees its consumers gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if address.startswith("unix://"):
            if not os.path.exists(address[len("unix://"):]):
                return
        else:
            host, port = address[len("grpc://"):].rsplit(":", 1)
            with socket.socket() as s:
                if s.connect_ex((host, int(port))) != 0:
                    return
        time.sleep(0.1)
    raise AssertionError(f"a producer still listens at {address} {timeout}s after its trainer was killed")


@require_pipeline(PIPELINE)
@require("numpy", "pyarrow", "pyarrow.flight", "torch", "torchdata")
class KillAndResumeTest(unittest.TestCase):
    references = {}

    def trainer(self, run, d, world, own=False, kill_after=0):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, TRAINER, run.address, d, "--ranks", str(world)]
        if own:
            cmd += ["--producer", json.dumps(run.producer.command)]
        if kill_after:
            cmd += ["--kill-after", str(kill_after)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)

    def outputs(self, d, world):
        out = []
        for rank in range(world):
            with open(os.path.join(d, f"out.rank{rank}.json")) as f:
                out.append(json.load(f))
        return out

    def reference(self, world):
        """An uninterrupted run's rows, per rank and step, and its model."""
        if world not in self.references:
            run = Run(self, "arrow-socket", world, sets=SETS)
            with run.producer:
                r = self.trainer(run, run.dir, world)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            out = self.outputs(run.dir, world)
            self.assertEqual([len(o["history"]) for o in out], [STEPS[world]] * world)
            # The stream in order: batch b is rank b % world's step b // world.
            seen = [row[0] for step in range(STEPS[world]) for o in out for row in o["history"][step]]
            self.assertEqual(len(seen), 96)
            self.assertEqual(len(set(seen[:48])), 48, "a sample twice in epoch 0")
            self.references[world] = out
        return self.references[world]

    def kill_and_resume(self, kind, world, own):
        from pipeline_client.producer import Producer

        want = self.reference(world)
        run = Run(self, kind, world, sets=SETS)
        d = run.dir
        # Rank 0 kills itself after step 3 (in epoch 0); the last checkpoint is step 2's.
        if own:
            r = self.trainer(run, d, world, own=True, kill_after=3)
        else:
            with run.producer:
                r = self.trainer(run, d, world, kill_after=3)
                code = run.producer.wait(timeout=60)
                run.producer.stopped = True  # it may fail (its consumer lost) or have sent everything
        self.assertNotEqual(r.returncode, 0, "the trainer was not killed")
        self.assertFalse(os.path.exists(os.path.join(d, "out.rank0.json")))
        address_free(run.address)
        if own:
            r = self.trainer(run, d, world, own=True)
        else:
            log = open(os.path.join(d, "resumed.log"), "w+")
            self.addCleanup(log.close)
            with Producer([*run.producer.command, "--resume", os.path.join(d, "resume.json")], stderr=log):
                r = self.trainer(run, d, world)
            log.seek(0)
            # Step 2's checkpoint: rank 0 took batch 2 (of 2 ranks) or 1 (alone), whose round starts there.
            self.assertIn(f"batch {world} of the stream next", log.read())
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        got = self.outputs(d, world)
        for rank in range(world):
            self.assertTrue(got[rank]["resumed"])
            self.assertEqual(len(got[rank]["history"]), STEPS[world], f"rank {rank}: steps")
            for step, (a, b) in enumerate(zip(got[rank]["history"], want[rank]["history"])):
                self.assertEqual(a, b, f"rank {rank} step {step + 1}: other rows or pixels than the uninterrupted run")
            self.assertEqual(got[rank]["model"], want[rank]["model"], f"rank {rank}: another model")

    def test_one_rank_socket_producer_by_hand(self):
        self.kill_and_resume("arrow-socket", 1, own=False)

    def test_one_rank_flight_producer_by_the_dataset(self):
        self.kill_and_resume("flight", 1, own=True)

    def test_two_ranks_socket_producer_by_the_dataset(self):
        self.kill_and_resume("arrow-socket", 2, own=True)

    def test_two_ranks_flight_producer_by_hand(self):
        self.kill_and_resume("flight", 2, own=False)


if __name__ == "__main__":
    unittest.main()
