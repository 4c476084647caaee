"""Against the real Go producer: every byte checked, ranks disjoint and complete, over a Unix
socket, TCP and Flight. Needs pyarrow and PIPELINE_PRODUCER, a shell command that serves
sink/arrowsocket/batchtest batches at $BATCHTEST_SERVE, e.g. the arrowsocket test binary:

    go test -c -o bin/arrowsocket.test ./sink/arrowsocket
    PIPELINE_PRODUCER="bin/arrowsocket.test -test.run '^TestServeSynthetic$'" \\
        python3 -m unittest discover -s python/tests
"""

import os
import socket
import tempfile
import threading
import unittest

from helpers import expected_view, require

PRODUCER = os.environ.get("PIPELINE_PRODUCER", "")
ROWS, SIDE, BATCHES = 4, 16, 9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(PRODUCER, "set PIPELINE_PRODUCER to a command serving batchtest batches at $BATCHTEST_SERVE")
@require("numpy", "pyarrow")
class EndToEndTest(unittest.TestCase):
    def run_ranks(self, address, world):
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


if __name__ == "__main__":
    unittest.main()
