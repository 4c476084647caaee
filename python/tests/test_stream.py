"""Reading streams from fake producers written with pyarrow: the socket protocol's clean end and
every way it can end badly, and Flight. Needs pyarrow."""

import os
import socket
import tempfile
import threading
import unittest

from helpers import require


def make_batches(n):
    import pyarrow as pa

    return [pa.record_batch([pa.FixedSizeListArray.from_arrays(pa.array([i] * 12, pa.uint8()), 12),
                             pa.array([i], pa.int32()), pa.array([i], pa.int64())],
                            names=["q", "label", "index"]) for i in range(n)]


class FakeSocketProducer:
    """Serves one connection: handshake, the batches, then `ending`: "ok", "error", "no trailer"
    (end-of-stream marker, then close) or "cut" (close inside the last batch)."""

    def __init__(self, batches, ending="ok"):
        self.dir = tempfile.TemporaryDirectory()
        self.address = "unix://" + os.path.join(self.dir.name, "p.sock")
        self.batches, self.ending = batches, ending
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.address[len("unix://"):])
        self.server.listen(1)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stream_bytes(self):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.batches[0].schema) as w:
            for b in self.batches:
                w.write_batch(b)
        return sink.getvalue().to_pybytes()  # ends with the 8-byte end-of-stream marker

    def run(self):
        data = self.stream_bytes()
        conn, _ = self.server.accept()
        try:
            self.serve(conn, data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the consumer left early, as one refusing the schema does

    def serve(self, conn, data):
        with conn, conn.makefile("rb") as f:
            self.hello = f.readline()
            conn.sendall(b"ok\n")
            if self.ending == "cut":
                conn.sendall(data[:-8 - 40])
                return
            conn.sendall(data)
            if self.ending == "ok":
                conn.sendall(b"end ok batches=%d\n" % len(self.batches))
            elif self.ending == "error":
                conn.sendall(b"end error decode: disk on fire\n")

    def close(self):
        self.thread.join(5)
        self.server.close()
        self.dir.cleanup()


@require("pyarrow")
class SocketStreamTest(unittest.TestCase):
    def read(self, ending, rank=0, world=1):
        from pipeline_client.stream import open_batches

        p = FakeSocketProducer(make_batches(3), ending)
        got = []
        try:
            for b in open_batches(p.address, rank, world, timeout=5):
                got.append(b.column("index")[0].as_py())
        finally:
            p.close()
            self.read_so_far = got
        return got, p.hello

    def test_clean_end(self):
        got, hello = self.read("ok", 1, 2)
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(hello, b"PIPELINE/1 rank=1 world=2\n")

    def test_bad_endings_raise_after_the_batches(self):
        from pipeline_client import StreamAborted

        for ending, want, read in [("error", "disk on fire", [0, 1, 2]), ("no trailer", "no trailer", [0, 1, 2]),
                                   ("cut", "after 2 batches", [0, 1])]:
            with self.subTest(ending=ending):
                with self.assertRaisesRegex(StreamAborted, want):
                    self.read(ending)
                self.assertEqual(self.read_so_far, read)


@require("pyarrow", "pyarrow.flight")
class FlightStreamTest(unittest.TestCase):
    def serve(self, fail=False):
        import pyarrow as pa
        import pyarrow.flight as flight

        class Server(flight.FlightServerBase):
            tickets = []

            def do_get(self, context, ticket):
                self.tickets.append(ticket.ticket)
                if fail:
                    raise flight.FlightServerError("the producer failed: out of cheese")
                return flight.RecordBatchStream(pa.Table.from_batches(make_batches(3)))

        server = Server("grpc://127.0.0.1:0")
        self.addCleanup(server.shutdown)
        return server

    def test_reads_one_rank(self):
        from pipeline_client.stream import open_batches

        server = self.serve()
        got = [b.column("index")[0].as_py() for b in open_batches(f"grpc://127.0.0.1:{server.port}", 1, 2, timeout=5)]
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(server.tickets, [b"rank=1/world=2"])

    def test_server_error_is_stream_aborted(self):
        from pipeline_client import StreamAborted
        from pipeline_client.stream import open_batches

        server = self.serve(fail=True)
        with self.assertRaisesRegex(StreamAborted, "out of cheese"):
            list(open_batches(f"grpc://127.0.0.1:{server.port}", 0, 1, timeout=5))


if __name__ == "__main__":
    unittest.main()
