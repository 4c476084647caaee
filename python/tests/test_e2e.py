"""Against the real Go producer: every byte checked, ranks disjoint and complete, over a Unix
socket, TCP and Flight. Needs pyarrow and PIPELINE_PRODUCER, a shell command that serves
sink/arrowsocket/batchtest batches at $BATCHTEST_SERVE, e.g. the arrowsocket test binary:

    CGO_ENABLED=0 go test -c -o bin/arrowsocket.test ./sink/arrowsocket
    PIPELINE_PRODUCER="bin/arrowsocket.test -test.run '^TestServeSynthetic$'" \\
        python3 -m unittest discover -s python/tests
"""

import os
import socket
import tempfile
import threading
import unittest

from helpers import expected_view, require, require_producer

PRODUCER = os.environ.get("PIPELINE_PRODUCER", "")
ROWS, SIDE, BATCHES = 4, 16, 9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@require_producer(PRODUCER)
@require("numpy", "pyarrow")
class EndToEndTest(unittest.TestCase):
    def run_ranks(self, address, world):
        from pipeline_client import HandshakeRefused
        from pipeline_client.arrays import batch_arrays
        from pipeline_client.producer import Producer
        from pipeline_client.stream import open_batches

        got = [[] for _ in range(world)]
        errors = []

        def read(rank):
            try:
                for batch in open_batches(address, rank, world, timeout=30):
                    arrays = batch_arrays(batch)
                    for r, index in enumerate(arrays["index"].tolist()):
                        for v, name in enumerate(("q", "k")):
                            self.assertTrue((arrays[name][r].ravel() == expected_view(index, v, SIDE * SIDE * 3)).all(),
                                            f"rank {rank}: sample {index} view {name} differs")
                        self.assertEqual(arrays["label"][r], index % 1000)
                    got[rank].append(int(arrays["index"][0]) // ROWS)
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        env = {"BATCHTEST_SERVE": address, "BATCHTEST_BATCHES": str(BATCHES),
               "BATCHTEST_SHAPE": f"{ROWS}x{SIDE}x{SIDE}", "BATCHTEST_WORLD": str(world)}
        with Producer(PRODUCER, env=env, exit_timeout=60):
            with self.assertRaisesRegex(HandshakeRefused, f"world size {world + 1} does not match"):
                next(open_batches(address, 0, world + 1, timeout=30))
            threads = [threading.Thread(target=read, args=(r,)) for r in range(world)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        for rank in range(world):
            self.assertEqual(got[rank], list(range(rank, BATCHES, world)), f"rank {rank}")

    def test_unix_socket(self):
        with tempfile.TemporaryDirectory() as d:
            self.run_ranks(f"unix://{d}/p.sock", 1)

    def test_tcp_two_ranks(self):
        self.run_ranks(f"tcp://127.0.0.1:{free_port()}", 2)

    @require("pyarrow.flight")
    def test_flight_two_ranks(self):
        self.run_ranks(f"grpc://127.0.0.1:{free_port()}", 2)


@require_producer(PRODUCER)
class ProtocolAgainstGoTest(unittest.TestCase):
    """The handshake, refusals and the trailer against the Go producer, without pyarrow: the
    Arrow stream in between is only checked to end with the end-of-stream marker."""

    def test_stream_framing_and_refusal(self):
        from pipeline_client import HandshakeRefused, protocol
        from pipeline_client.producer import Producer

        with tempfile.TemporaryDirectory() as d:
            address = protocol.parse_address(f"unix://{d}/p.sock")
            env = {"BATCHTEST_SERVE": str(address), "BATCHTEST_BATCHES": "5", "BATCHTEST_SHAPE": "2x4x4",
                   "BATCHTEST_WORLD": "2"}
            with Producer(PRODUCER, env=env, exit_timeout=60):
                with self.assertRaisesRegex(HandshakeRefused, "world size 3 does not match the producer's 2"):
                    protocol.connect(address, 0, 3, timeout=30)
                streams = []
                for rank in (0, 1):
                    sock, f = protocol.connect(address, rank, 2, timeout=30)
                    streams.append((sock, f))
                for rank, (sock, f) in enumerate(streams):
                    with sock, f:
                        data = f.read()
                    want = b"\xff\xff\xff\xff\x00\x00\x00\x00end ok batches=%d\n" % (3 if rank == 0 else 2)
                    self.assertTrue(data.endswith(want), f"rank {rank} stream ends with {data[-40:]!r}")


if __name__ == "__main__":
    unittest.main()
