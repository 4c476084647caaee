"""The wire protocol, against a fake producer; needs neither pyarrow nor torch."""

import io
import os
import socket
import tempfile
import threading
import unittest

import helpers  # noqa: F401  (puts pipeline_client on sys.path)
from pipeline_client import protocol
from pipeline_client.protocol import HandshakeRefused, StreamAborted


class AddressTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(str(protocol.parse_address("unix:///tmp/p.sock")), "unix:///tmp/p.sock")
        a = protocol.parse_address("tcp://127.0.0.1:7000")
        self.assertEqual((a.scheme, a.host, a.port), ("tcp", "127.0.0.1", 7000))
        self.assertEqual(protocol.parse_address("grpc://gpu-host:7001").scheme, "grpc")
        for bad in ("/tmp/p.sock", "udp://h:1", "tcp://host", "unix://"):
            with self.assertRaises(ValueError, msg=bad):
                protocol.parse_address(bad)

    def test_ipv6_round_trip(self):
        # The Go sinks print a wildcard listener as [::]:port; the Flight client is handed
        # str(address), which must keep the brackets to be a valid URI.
        for text in ("grpc://[::]:7001", "tcp://[::1]:7000"):
            a = protocol.parse_address(text)
            self.assertEqual(a.host, text[text.index("[") + 1:text.index("]")])
            self.assertEqual(str(a), text)
            self.assertEqual(protocol.parse_address(str(a)), a)

    def test_hello(self):
        self.assertEqual(protocol.hello(1, 4), b"PIPELINE/1 rank=1 world=4\n")
        with self.assertRaises(ValueError):
            protocol.hello(4, 4)


class TrailerTest(unittest.TestCase):
    def check(self, data, n):
        protocol.check_trailer(io.BytesIO(data), n)

    def test_clean_end(self):
        self.check(b"end ok batches=3\n", 3)

    def test_failures(self):
        cases = {
            b"end error augment: out of memory\n": "out of memory",
            b"": "no trailer",
            b"end ok batches=4\n": "sent 4 batches, 3 arrived",
            b"end ok batches=3": "no trailer",
            b"nonsense\n": "bad trailer",
        }
        for data, want in cases.items():
            with self.assertRaises(StreamAborted, msg=data) as cm:
                self.check(data, 3)
            self.assertIn(want, str(cm.exception))


class FakeProducer:
    """Accepts one connection on a Unix socket, records the hello and sends `answer`."""

    def __init__(self, answer: bytes):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "p.sock")
        self.answer = answer
        self.hello = None
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, _ = self.server.accept()
        with conn:
            self.hello = conn.makefile("rb").readline()
            conn.sendall(self.answer)

    def close(self):
        self.thread.join(5)
        self.server.close()
        self.dir.cleanup()


class ConnectTest(unittest.TestCase):
    def test_accepted(self):
        p = FakeProducer(b"ok\nSTREAM")
        try:
            sock, f = protocol.connect(protocol.parse_address("unix://" + p.path), 1, 2, timeout=5)
            with sock, f:
                self.assertEqual(f.read(6), b"STREAM")
            self.assertEqual(p.hello, b"PIPELINE/1 rank=1 world=2\n")
        finally:
            p.close()

    def test_refused(self):
        p = FakeProducer(b"error rank 1 is already served to 127.0.0.1:5000\n")
        try:
            with self.assertRaisesRegex(HandshakeRefused, "already served"):
                protocol.connect(protocol.parse_address("unix://" + p.path), 1, 2, timeout=5)
        finally:
            p.close()

    def test_waits_for_producer_then_gives_up(self):
        # The error names the address: a bare "[Errno 2] No such file or directory" from one
        # of eight torchrun ranks says nothing about what it tried to reach.
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex((FileNotFoundError, ConnectionRefusedError), f"unix://{d}/none.sock"):
                protocol.connect(protocol.parse_address(f"unix://{d}/none.sock"), 0, 1, timeout=0.3)

    def test_closed_without_answer(self):
        p = FakeProducer(b"")
        try:
            with self.assertRaisesRegex(HandshakeRefused, "unix://" + p.path + ".*no answer"):
                protocol.connect(protocol.parse_address("unix://" + p.path), 0, 1, timeout=5)
        finally:
            p.close()


if __name__ == "__main__":
    unittest.main()
