"""TLS and the token (docs/transport.md, Security): the client side alone, then against the
real Go producer, which writes its own certificates (BATCHTEST_TLS_DIR) and requires a token
(BATCHTEST_TOKEN_ENV). Intruders (plain, untrusting, no token, wrong token) are refused on the
socket and on Flight; the real consumer still gets every batch; the producer's summary
counts the refusals and never shows the token.
"""

import json
import os
import secrets
import socket
import ssl
import tempfile
import time
import unittest
import unittest.mock

from helpers import expected_view, require, require_producer
from pipeline_client import HandshakeRefused, StreamAborted, protocol, security

PRODUCER = os.environ.get("PIPELINE_PRODUCER", "")
ROWS, SIDE, BATCHES = 4, 8, 5


class ClientSideTest(unittest.TestCase):
    def test_tls_addresses(self):
        for text in ("tcp+tls://127.0.0.1:7000", "grpc+tls://[::1]:7001"):
            a = protocol.parse_address(text)
            self.assertTrue(a.tls)
            self.assertEqual(str(a), text)
        self.assertFalse(protocol.parse_address("grpc://h:1").tls)

    def test_hello_with_token(self):
        token = "t" * 20
        self.assertEqual(protocol.hello(0, 2, token), f"PIPELINE/1 rank=0 world=2 token={token}\n".encode())
        for bad in ("short", "has a space in it here", "x" * 257, "new\nline-inside-token"):
            with self.assertRaises(ValueError, msg=bad):
                protocol.hello(0, 1, bad)

    def test_credentials_from_environment_and_repr(self):
        token = secrets.token_hex(16)
        with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
            f.write(token + "\n")
            f.flush()
            env = {security.TOKEN_FILE_ENV: f.name, security.CA_FILE_ENV: "/x/ca.pem"}
            with unittest.mock.patch.dict(os.environ, env, clear=False):
                os.environ.pop(security.TOKEN_ENV, None)
                creds = security.resolve()
        self.assertEqual((creds.token, creds.ca_file), (token, "/x/ca.pem"))
        self.assertNotIn(token, repr(creds))
        self.assertEqual(security.resolve(token=token + "x").token, token + "x")  # an argument wins
        with self.assertRaisesRegex(ValueError, "a CA file is for tcp\\+tls://"):
            protocol.connect(protocol.parse_address("tcp://127.0.0.1:1"), 0, 1, 1, security.Credentials(ca_file="ca.pem"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not written within {timeout}s")
        time.sleep(0.05)


@require_producer(PRODUCER)
@require("numpy", "pyarrow")
class AgainstGoProducerTest(unittest.TestCase):
    def serve(self, scheme, d):
        """Starts the producer with TLS and a token; returns (Producer, address, CA file, token)."""
        from pipeline_client.producer import Producer

        token = secrets.token_urlsafe(24)
        address = f"{scheme}://127.0.0.1:{free_port()}"
        env = {"BATCHTEST_SERVE": address, "BATCHTEST_BATCHES": str(BATCHES), "BATCHTEST_WORLD": "1",
               "BATCHTEST_SHAPE": f"{ROWS}x{SIDE}x{SIDE}", "BATCHTEST_TLS_DIR": d,
               "BATCHTEST_TOKEN_ENV": "PIPELINE_TEST_TOKEN", "PIPELINE_TEST_TOKEN": token,
               "BATCHTEST_SUMMARY": os.path.join(d, "summary.json")}
        return Producer(PRODUCER, env=env, exit_timeout=60), address, os.path.join(d, "ca.pem"), token

    def read_all(self, address, ca_file, token):
        from pipeline_client.arrays import batch_arrays
        from pipeline_client.stream import open_batches

        got = []
        for batch in open_batches(address, 0, 1, timeout=30, token=token, ca_file=ca_file):
            arrays = batch_arrays(batch)
            for r, index in enumerate(arrays["index"].tolist()):
                for v, name in enumerate(("q", "k")):
                    self.assertTrue((arrays[name][r].ravel() == expected_view(index, v, SIDE * SIDE * 3)).all())
            got.append(int(arrays["index"][0]) // ROWS)
        self.assertEqual(got, list(range(BATCHES)))

    def check_summary(self, d, token, refused_tls):
        with open(os.path.join(d, "summary.json")) as f:
            text = f.read()
        self.assertNotIn(token, text)
        summary = json.loads(text)
        self.assertEqual((summary["tls"], summary["token_required"], summary["refused_token"]), (True, True, 2))
        self.assertGreaterEqual(summary["refused_tls"], refused_tls)
        self.assertEqual([r["batches_sent"] for r in summary["ranks"]], [BATCHES])

    def test_socket(self):
        from pipeline_client.stream import open_batches

        with tempfile.TemporaryDirectory() as d:
            producer, address, ca, token = self.serve("tcp+tls", d)
            with producer:
                wait_for(ca)
                plain = address.replace("tcp+tls://", "tcp://")
                with self.assertRaisesRegex(HandshakeRefused, "this producer serves TLS"):
                    protocol.connect(protocol.parse_address(plain), 0, 1, 30, security.Credentials(token=token))
                with self.assertRaises(ssl.SSLCertVerificationError):  # the system's roots do not know its CA
                    protocol.connect(protocol.parse_address(address), 0, 1, 30, security.Credentials(token=token))
                with self.assertRaisesRegex(HandshakeRefused, "requires a token"):
                    next(open_batches(address, 0, 1, timeout=30, ca_file=ca))
                with self.assertRaisesRegex(HandshakeRefused, "wrong token") as cm:
                    next(open_batches(address, 0, 1, timeout=30, ca_file=ca, token=token[::-1]))
                self.assertNotIn(token[::-1], str(cm.exception))
                self.read_all(address, ca, token)
            self.check_summary(d, token, refused_tls=2)

    @require("pyarrow.flight")
    def test_flight(self):
        import pyarrow.flight as flight

        from pipeline_client.stream import open_batches

        with tempfile.TemporaryDirectory() as d:
            producer, address, ca, token = self.serve("grpc+tls", d)
            with producer:
                wait_for(ca)
                with open(ca, "rb") as f:
                    roots = f.read()
                # pyarrow.flight directly: TLS root certs and the token as a header.
                header = [(b"authorization", b"Bearer " + token[::-1].encode())]
                client = flight.connect(address, tls_root_certs=roots)
                with self.assertRaisesRegex(flight.FlightUnauthenticatedError, "wrong token"):
                    client.do_get(flight.Ticket(b"rank=0/world=1"), flight.FlightCallOptions(headers=header)).read_chunk()
                client.close()
                # Through the client: no token, an untrusting one, a plain one.
                with self.assertRaisesRegex(HandshakeRefused, "requires a token"):
                    next(open_batches(address, 0, 1, timeout=30, ca_file=ca))
                with self.assertRaisesRegex(StreamAborted, "after 0 batches: .*certificate verify failed"):
                    next(open_batches(address, 0, 1, timeout=30, token=token))
                with self.assertRaisesRegex(StreamAborted, "after 0 batches: .*unavailable"):
                    next(open_batches(address.replace("grpc+tls://", "grpc://"), 0, 1, timeout=2, token=token))
                self.read_all(address, ca, token)
            self.check_summary(d, token, refused_tls=2)


if __name__ == "__main__":
    unittest.main()
